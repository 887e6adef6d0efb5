"""Every module API answer the suite sees, checked against ``openapi.yaml``.

Tests reach the module through two clients: :meth:`RunningHomeserver.request` (urllib,
used by ``roster_helpers.api``) and aiohttp sessions (``RunningHomeserver.http``, the
content and broadcast helpers, matrix-nio underneath). Both record here: the harness's
``request`` directly, aiohttp through a trace config that ``conftest.py`` adds to every
session. At the end of the session, :func:`mismatches` holds each recorded answer against
the operation's response for that status; ``conftest.py`` fails the run listing them.
"""

import inspect
import json
import re
import sys
import urllib.parse
from collections.abc import Iterable
from typing import Any

import aiohttp
import attrs
import jsonschema
import jsonschema.exceptions
import referencing
import referencing.jsonschema

from synapse_module.http import BASE_PATH

METHODS = ("get", "put", "post", "delete", "patch")


@attrs.frozen
class Seen:
    method: str
    path: str  # under BASE_PATH, without the query
    status: int
    body: Any  # parsed JSON, or None for another content type
    media_type: str = "application/json"


RECORDED: list[Seen] = []


def record(
    method: str, url: str, status: int, body: Any, media_type: str = "application/json"
) -> None:
    """Keep one answer if it came from the module API."""
    path = urllib.parse.urlsplit(url).path
    if not path.startswith(BASE_PATH + "/"):
        return
    RECORDED.append(Seen(method.upper(), path.removeprefix(BASE_PATH), status, body, media_type))


async def _on_request_end(
    session: aiohttp.ClientSession,
    context: Any,
    params: aiohttp.TraceRequestEndParams,
) -> None:
    if not params.url.path.startswith(BASE_PATH + "/"):
        return
    response = params.response
    body = None
    if response.content_type == "application/json":
        # read() keeps the bytes, so the test's own .json() / .read() still get them.
        raw = await response.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
    record(params.method, str(params.url), response.status, body, response.content_type)


def trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_request_end.append(_on_request_end)
    return config


def served_document() -> dict[str, Any]:
    """The OpenAPI document as the module serves it (request schemas filled in)."""
    from synapse_module import served_openapi

    return served_openapi()


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


def operation_for(doc: dict[str, Any], method: str, path: str) -> tuple[str, Any] | None:
    """The path template and operation that answer ``method path``; literal paths win."""
    candidates = []
    for template, item in doc["paths"].items():
        if method.lower() in item and _template_regex(template).match(path):
            candidates.append((template.count("{"), template, item[method.lower()]))
    if not candidates:
        return None
    _, template, operation = min(candidates, key=lambda c: c[0])
    return template, operation


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _resolve(doc: dict[str, Any], node: Any, pointer: str) -> tuple[Any, str]:
    """Follow local ``$ref`` s; the node and its JSON pointer in ``doc``."""
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = doc
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def response_schema(doc: dict[str, Any], response: Any, pointer: str) -> tuple[str | None, str]:
    """(content type, JSON pointer of its schema, or "" without one) of a response."""
    response, pointer = _resolve(doc, response, pointer)
    content = response.get("content") or {}
    for media_type in sorted(content, key=lambda m: m != "application/json"):
        entry = content[media_type] or {}
        if "schema" in entry:
            return media_type, f"{pointer}/content/{_escape(media_type)}/schema"
        return media_type, ""
    return None, ""


def _unknown_endpoint(s: Seen) -> bool:
    """The router's answer for a path or method the API does not have (the document's
    description: 404 or 405 ``M_UNRECOGNIZED``)."""
    return (
        s.status in (404, 405)
        and isinstance(s.body, dict)
        and s.body.get("errcode") == "M_UNRECOGNIZED"
    )


def mismatches(doc: dict[str, Any], seen: Iterable[Seen]) -> list[str]:
    """Each recorded answer that ``doc`` does not describe, once per kind of problem."""
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        "urn:parta-openapi", referencing.jsonschema.DRAFT202012.create_resource(doc)
    )
    problems: dict[str, str] = {}
    for s in seen:
        found = operation_for(doc, s.method, s.path)
        if found is None:
            if _unknown_endpoint(s):
                continue
            problems.setdefault(f"{s.method} {s.path}", f"{s.method} {s.path}: no operation")
            continue
        template, operation = found
        where = f"{s.method} {template} {s.status}"
        responses = operation.get("responses", {})
        response = responses.get(str(s.status), responses.get("default"))
        if response is None:
            problems.setdefault(where, f"{where}: status not documented")
            continue
        status = str(s.status) if str(s.status) in responses else "default"
        pointer = f"/paths/{_escape(template)}/{s.method.lower()}/responses/{status}"
        if s.media_type != "application/json":
            content = _resolve(doc, response, pointer)[0].get("content") or {}
            if s.media_type not in content:
                problems.setdefault(where, f"{where}: {s.media_type} not documented")
            continue
        media_type, schema_at = response_schema(doc, response, pointer)
        if media_type is None:
            problems.setdefault(where, f"{where}: response has no content")
            continue
        if media_type != "application/json":
            continue
        if not schema_at:
            problems.setdefault(where, f"{where}: response has no schema")
            continue
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"urn:parta-openapi#{schema_at}"}, registry=registry
        )
        error = jsonschema.exceptions.best_match(validator.iter_errors(s.body))
        if error is not None:
            at = "/".join(str(p) for p in error.absolute_path) or "(body)"
            problems.setdefault(where, f"{where}: {at}: {error.message}")
    return sorted(problems.values())


# What a handler's own code raises, and the status the document must list for it.
_RAISES = {
    "json_body(": "400",
    "forbidden(": "403",
    "not_found(": "404",
    "conflict(": "409",
}


def _is_matrix_error(doc: dict[str, Any], response: Any, pointer: str) -> bool:
    media_type, schema_at = response_schema(doc, response, pointer)
    if media_type != "application/json" or not schema_at:
        return False
    schema: Any = doc
    for part in schema_at.strip("/").split("/"):
        schema = schema[part.replace("~1", "/").replace("~0", "~")]
    return "#/components/schemas/MatrixError" in json.dumps(schema)


def _shape(path: str) -> str:
    """A path template or a served route's regex, as ``/a/{}/b``."""
    return re.sub(r"\{[^}]+\}|\(\[\^/\]\+\)", "{}", path).replace("\\.", ".")


def route_problems(doc: dict[str, Any]) -> list[str]:
    """Served routes the document does not fully describe: no operation, no success body,
    no request schema for a handler that reads one, or an error its handler raises (or
    the 401 every authenticated route can answer) missing, or an error without the
    Matrix error schema."""
    from synapse_module import PartaModule

    operations = {
        (method.upper(), _shape(template)): (template, method, item[method])
        for template, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
    problems = []
    for method, pattern, owner, name in PartaModule.routes_for_docs():
        path_regex = pattern.pattern.removeprefix(f"^{BASE_PATH}").removesuffix("$")
        key = (method, _shape(path_regex))
        if key not in operations:
            problems.append(f"{method} {path_regex}: no operation")
            continue
        template, lower, operation = operations[key]
        where = f"{method} {template}"
        responses: dict[str, Any] = operation.get("responses", {})
        base = f"/paths/{_escape(template)}/{lower}/responses"
        ok = [c for c in responses if c.startswith("2")]
        bodies = [response_schema(doc, responses[c], f"{base}/{c}") for c in ok]
        if not bodies or any(
            media is None or (media == "application/json" and not at) for media, at in bodies
        ):
            problems.append(f"{where}: no success response with a body and its schema")
        secured = operation.get("security", doc.get("security")) != []
        if secured and "401" not in responses:
            problems.append(f"{where}: 401 not documented")
        if secured and "403" not in responses:
            # requester_id refuses a bot acting for a person without their command.
            problems.append(f"{where}: 403 not documented (X-Parta-On-Behalf-Of)")
        source = inspect.getsource(getattr(owner, name))
        for call, status in _RAISES.items():
            if call in source and status not in responses:
                problems.append(f"{where}: {status} not documented ({name} calls {call}...))")
        # The schema a handler validates its body with: directly, or through the
        # opening helper of its feature (roster ``_open_body``, broadcasts ``_open``).
        used = re.search(
            r"(?:json_body\(request,|_open_body\(\s*request, \w+,|_open\(request, \w+,)"
            r"\s*([A-Z_]+)",
            source,
        )
        if used is not None:
            # The document's request schema is the very one the handler validates with.
            handler_module = getattr(owner, name).__module__  # the module that defines it
            validates_with = vars(sys.modules[handler_module])[used.group(1)]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            schema = _resolve(doc, body["schema"], "")[0] if body and "schema" in body else None
            if schema is not validates_with:
                problems.append(f"{where}: request schema is not {used.group(1)}")
        for code, response in responses.items():
            if code[0] in "45" and not _is_matrix_error(doc, response, f"{base}/{code}"):
                problems.append(f"{where}: {code} is not a Matrix error")
    return problems
