"""The module's REST API under ``/_synapse/client/parta/v1/``.

One leaf resource is registered at the base path; it routes by method and path
pattern so that new endpoints are one line in :attr:`ApiResource.routes`.
"""

import json
import logging
import re
import traceback
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Final

import jsonschema
import jsonschema.exceptions
from synapse.module_api import (
    DirectServeHtmlResource,
    DirectServeJsonResource,
    ModuleApi,
    SynapseRequest,
    respond_with_html,
)
from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message

from .errors import disk_full, disk_full_error, matrix_error
from .query import bad_param

logger = logging.getLogger(__name__)

BASE_PATH = "/_synapse/client/parta/v1"

# A handler answers (code, JSON), or None when it wrote the response itself (a file).
Handler = Callable[..., Awaitable[tuple[int, Any] | None]]

_NOT_FOUND = Message("http.not_found")
_BAD_METHOD = Message("http.bad_method")


def route_pattern(pattern: str) -> re.Pattern[str]:
    """The full-path regex of a route given under :data:`BASE_PATH`."""
    return re.compile(f"^{BASE_PATH}{pattern}$")


def path_params(match: re.Match[str]) -> list[str]:
    """The route's path parameters, each percent-decoded exactly once.

    As Synapse's own servlets do: the pattern matches the raw path (so an encoded ``/``,
    ``%2F``, stays inside its parameter), then each group is decoded. Handlers get the
    decoded value (``@ann:school.ru``, ``!room:school.ru``) and never decode again.
    """
    return [urllib.parse.unquote(group) for group in match.groups()]


class ApiResource(DirectServeJsonResource):
    """Routes ``(method, path regex)`` to async handlers that get the path groups."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, route_pattern(pattern), handler))

    async def _async_render(self, request: SynapseRequest) -> tuple[int, Any] | None:
        method = request.method.decode("ascii")
        if method == "HEAD":
            method = "GET"
        path = request.path.decode("utf-8", errors="replace")
        if "\x00" in urllib.parse.unquote(path):
            # IDs in the path reach SQL; PostgreSQL refuses NUL in text (a 500 otherwise).
            raise bad_param("path", "contains a NUL character")
        path_matched = False
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if route_method == method:
                try:
                    return await handler(request, *path_params(match))
                except SynapseError:
                    raise
                except Exception as e:
                    # A full disk is the operator's to fix, not a bug: say so (not 500).
                    if disk_full(e):
                        raise disk_full_error() from e
                    raise
        if path_matched:
            raise matrix_error(405, Codes.UNRECOGNIZED, _BAD_METHOD, method=method, path=path)
        raise matrix_error(404, Codes.UNRECOGNIZED, _NOT_FOUND, path=path)


_BAD_BODY = Message("http.bad_body")
_BAD_TIME = Message("http.bad_time")
# A time of day as the request schemas ask for it (quiet hours, schedules): a wrong one is
# named in words a school administrator reads, not by the pattern.
TIME_PATTERN: Final = "^([01][0-9]|2[0-3]):[0-5][0-9]$"


# Resolves a trusted bot's request on a person's behalf (synapse_module/delegation/).
OnBehalfResolver = Callable[[str, SynapseRequest], Awaitable[str]]
_on_behalf: "weakref.WeakKeyDictionary[ModuleApi, OnBehalfResolver]" = weakref.WeakKeyDictionary()


def set_on_behalf_resolver(api: ModuleApi, resolver: OnBehalfResolver) -> None:
    _on_behalf[api] = resolver


async def requester_id(api: ModuleApi, request: SynapseRequest) -> str:
    """The Matrix user ID the request acts for (401 without an access token).

    That is the token's owner, or — for the school bot naming a person and their
    command — that person, once :mod:`synapse_module.delegation` believes it (403
    otherwise).
    """
    return (await caller_and_person(api, request))[1]


async def caller_and_person(api: ModuleApi, request: SynapseRequest) -> tuple[str, str]:
    """The token's owner and the person the request acts for (see :func:`requester_id`).

    Synapse tries a token it does not know as a guest macaroon, and pymacaroons raises
    on some malformed ones (``Bearer [``: ``struct.error``, ``IndexError``...), which
    Synapse answers with a 500. Such a token is simply unknown: 401 ``M_UNKNOWN_TOKEN``.
    Any other failure (the database, say) stays what it is."""
    try:
        requester = await api.get_user_by_req(request)
    except SynapseError:
        raise
    except Exception as e:
        if not raised_in_macaroon_parser(e):
            raise
        raise SynapseError(401, "Invalid access token passed.", Codes.UNKNOWN_TOKEN) from e
    caller: str = requester.user.to_string()
    resolver = _on_behalf.get(api)
    if resolver is None:
        return caller, caller
    return caller, await resolver(caller, request)


def raised_in_macaroon_parser(error: BaseException) -> bool:
    """The exception came out of pymacaroons (a token that is not a macaroon at all)."""
    return any(
        "pymacaroons" in frame.filename.replace("\\", "/").split("/")
        for frame in traceback.extract_tb(error.__traceback__)
    )


_NOT_JSON = Message("http.not_json")
_NOT_OBJECT = Message("http.not_object")


# An action's body: nothing, or an empty object.
EMPTY_BODY: Final[dict[str, Any]] = {"type": "object", "additionalProperties": False}


def json_body(request: SynapseRequest, schema: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object, checked against a JSON Schema.

    As the Matrix spec has it: a body that does not parse is 400 ``M_NOT_JSON``; JSON of
    the wrong shape (not an object, a wrong field) is 400 ``M_BAD_JSON``.
    """
    raw = request.content.read() if request.content is not None else b""
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise matrix_error(400, Codes.NOT_JSON, _NOT_JSON) from None
    if not isinstance(body, dict):
        raise matrix_error(400, Codes.BAD_JSON, _NOT_OBJECT)
    check_json(body, schema)
    return body


def check_json(value: object, schema: dict[str, Any]) -> None:
    """400 ``M_BAD_JSON`` naming the first wrong field, in Russian and English."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        nul = _nul_at(value, ())
        if nul is None:
            return
        # PostgreSQL cannot store U+0000 in text: refuse it here, naming the field, rather
        # than fail in a transaction later.
        where = "/".join(nul) or "(body)"
        raise matrix_error(400, Codes.BAD_JSON, _BAD_BODY, detail=f"{where}: contains U+0000")
    where = "/".join(str(p) for p in error.absolute_path) or "(body)"
    if error.validator == "pattern" and error.validator_value == TIME_PATTERN:
        raise matrix_error(400, Codes.BAD_JSON, _BAD_TIME, field=where, value=str(error.instance))
    raise matrix_error(400, Codes.BAD_JSON, _BAD_BODY, detail=f"{where}: {error.message}")


def _nul_at(value: object, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """Where in a JSON value a string (or a key) holds U+0000, if anywhere."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return (*path, key.replace("\x00", "\\0"))
            found = _nul_at(item, (*path, key))
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_at(item, (*path, str(i)))
            if found is not None:
                return found
    return None


class StaticPage(DirectServeHtmlResource):
    """One HTML page of the module's package, served for every path below it but its
    scripts: ``scripts`` maps a last path segment (``texts.js``) to a file beside the page."""

    isLeaf = True

    def __init__(self, filename: str, scripts: dict[str, str] | None = None):
        super().__init__()
        self._html = _static(filename)
        self._scripts = {
            name.encode("ascii"): _static(file).encode("utf-8")
            for name, file in (scripts or {}).items()
        }

    async def _async_render_GET(self, request: SynapseRequest) -> None:
        script = self._scripts.get(request.path.rsplit(b"/", 1)[-1])
        if script is not None:
            # Twisted's Request methods are untyped.
            raw: Any = request
            raw.setResponseCode(200)
            raw.setHeader(b"Content-Type", b"text/javascript; charset=utf-8")
            raw.setHeader(b"Content-Length", str(len(script)).encode("ascii"))
            raw.write(script)
            raw.finish()
            return
        request.responseHeaders.setRawHeaders(
            b"Content-Security-Policy",
            [
                b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
                b"style-src 'unsafe-inline'; frame-ancestors 'none'"
            ],
        )
        respond_with_html(request, 200, self._html)


class StaticBundle(DirectServeHtmlResource):
    """A folder of the module's package (``static/<folder>``) served as a page bundle:
    ``index.html`` at the root, the other files by name (plain ES modules and CSS, no
    build step). Only the files in the folder, read once; anything else is a 404."""

    isLeaf = True
    _TYPES: Final = {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
    }

    def __init__(self, folder: str, prefix: str):
        super().__init__()
        self._prefix = prefix.rstrip("/")
        root = resources.files(__package__).joinpath("static", folder)
        self._files: dict[str, tuple[bytes, str]] = {}
        for entry in root.iterdir():
            kind = self._TYPES.get("." + entry.name.rpartition(".")[2])
            if entry.is_file() and kind is not None:
                self._files[entry.name] = (entry.read_bytes(), kind)

    async def _async_render_GET(self, synapse_request: SynapseRequest) -> None:
        request: Any = synapse_request  # Twisted's Request methods are untyped
        path = synapse_request.path.decode("utf-8", errors="replace")
        if path == self._prefix:
            # Relative module paths resolve against the folder, so it ends in "/".
            request.redirect((self._prefix + "/").encode("ascii"))
            request.finish()
            return
        name = path[len(self._prefix) :].lstrip("/") or "index.html"
        found = self._files.get(name)
        request.setHeader(
            b"Content-Security-Policy",
            b"default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'; "
            b"base-uri 'none'; form-action 'self'",
        )
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        if found is None:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            request.write(b"Not found")
            request.finish()
            return
        data, kind = found
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", kind.encode("ascii"))
        request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-cache")
        request.write(data)
        request.finish()


def _static(filename: str) -> str:
    return resources.files(__package__).joinpath("static", filename).read_text(encoding="utf-8")


def send_file(synapse_request: SynapseRequest, data: bytes, content_type: str, name: str) -> None:
    """Answer with a file download (CSV exports); the handler then returns None."""
    # Twisted's Request methods are untyped.
    request: Any = synapse_request
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", content_type.encode("ascii"))
    request.setHeader(b"Content-Disposition", f'attachment; filename="{name}"'.encode("ascii"))
    request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))
    request.setHeader(b"Access-Control-Allow-Origin", b"*")
    request.setHeader(b"Access-Control-Expose-Headers", b"Content-Disposition")
    request.setHeader(b"Cache-Control", b"no-store")
    request.write(data)
    request.finish()
