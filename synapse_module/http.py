"""The module's REST API under ``/_synapse/client/parta/v1/``.

One leaf resource is registered at the base path; it routes by method and path
pattern so that new endpoints are one line in :attr:`ApiResource.routes`.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import jsonschema.exceptions
from synapse.module_api import (
    DirectServeJsonResource,
    ModuleApi,
    SynapseRequest,
    parse_json_object_from_request,
)
from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message

logger = logging.getLogger(__name__)

BASE_PATH = "/_synapse/client/parta/v1"

# A handler answers (status, JSON body), or None when it wrote the response itself.
Handler = Callable[..., Awaitable[tuple[int, Any] | None]]

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

    async def _async_render(self, request: SynapseRequest) -> tuple[int, Any] | None:
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


_BAD_BODY = Message(
    ru="Неверный запрос: {detail}",
    en="Bad request: {detail}",
)


async def requester_id(api: ModuleApi, request: SynapseRequest) -> str:
    """The Matrix user ID behind the request's access token (401 without one)."""
    requester = await api.get_user_by_req(request)
    return requester.user.to_string()


def json_body(request: SynapseRequest, schema: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object, checked against a JSON Schema (400 ``M_BAD_JSON``)."""
    body = parse_json_object_from_request(request)
    check_json(body, schema)
    return body


def check_json(value: object, schema: dict[str, Any]) -> None:
    """400 ``M_BAD_JSON`` naming the first wrong field, in Russian and English."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path) or "(body)"
    raise SynapseError(400, _BAD_BODY.format(detail=f"{where}: {error.message}"), Codes.BAD_JSON)
