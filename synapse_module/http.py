"""The module's REST API under ``/_synapse/client/parta/v1/``.

One leaf resource is registered at the base path; it routes by method and path
pattern so that new endpoints are one line in :attr:`ApiResource.routes`.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from synapse.module_api import DirectServeJsonResource, SynapseRequest
from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message

logger = logging.getLogger(__name__)

BASE_PATH = "/_synapse/client/parta/v1"

Handler = Callable[..., Awaitable[tuple[int, Any]]]

_NOT_FOUND = Message(
    ru="Нет такого адреса в API Parta: {path}",
    en="No such endpoint in the Parta API: {path}",
)
_BAD_METHOD = Message(
    ru="Метод {method} не поддерживается для {path}",
    en="Method {method} is not supported for {path}",
)


class ApiResource(DirectServeJsonResource):
    """Routes ``(method, path regex)`` to async handlers that get the path groups."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{BASE_PATH}{pattern}$"), handler))

    async def _async_render(self, request: SynapseRequest) -> tuple[int, Any]:
        method = request.method.decode("ascii")
        if method == "HEAD":
            method = "GET"
        path = request.path.decode("utf-8", errors="replace")
        path_matched = False
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if route_method == method:
                return await handler(request, *match.groups())
        if path_matched:
            raise SynapseError(
                405, _BAD_METHOD.format(method=method, path=path), Codes.UNRECOGNIZED
            )
        raise SynapseError(404, _NOT_FOUND.format(path=path), Codes.UNRECOGNIZED)
