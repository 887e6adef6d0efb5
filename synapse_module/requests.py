"""Request schemas: each feature keeps the JSON Schemas of its request bodies in a
``requests.json`` file in its package (name → schema). The validator (``http.json_body``)
and the OpenAPI document (``served_openapi``) both read that one file."""

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def request_schemas(package: str) -> dict[str, dict[str, Any]]:
    """The request schemas of ``package`` (a feature package), by their OpenAPI name."""
    text = resources.files(package).joinpath("requests.json").read_text(encoding="utf-8")
    loaded: dict[str, dict[str, Any]] = json.loads(text)
    return loaded
