"""The JSON Schema of every Parta event type, in one place all processes import.

Each schema is a JSON file next to this module, named after what it describes: a block
(``org.parta.document``, ``org.parta.article``, ``org.parta.poll``), a whole message
that carries a block (``org.parta.document.message``, ``org.parta.article.message``) or
an event type's content (``org.matrix.msc3381.poll.start`` …, and the stable
``m.poll.start`` … the same rules apply to). ``docs/event-types.md``
publishes them. Schemas may ``$ref`` each other by file name.
"""

import functools
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Final

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import referencing

BASE_URI: Final = "https://parta.example/schemas/"

NAMES: Final = (
    "org.parta.document",
    "org.parta.document.message",
    "org.parta.article",
    "org.parta.article.message",
    "org.parta.homework.message",
    "org.parta.poll",
    "org.matrix.msc3381.poll.start",
    "org.matrix.msc3381.poll.response",
    "org.matrix.msc3381.poll.end",
    "m.poll.start",
    "m.poll.response",
    "m.poll.end",
)


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """The schema called ``name`` (one of :data:`NAMES`), as a dict."""
    if name not in NAMES:
        raise KeyError(f"no Parta schema called {name!r}; known: {', '.join(NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _registry() -> referencing.Registry[Any]:
    resources_ = [
        (f"{BASE_URI}{name}.json", referencing.Resource.from_contents(schema(name)))
        for name in NAMES
    ]
    return referencing.Registry().with_resources(resources_)


def _is_object(_checker: object, instance: object) -> bool:
    return isinstance(instance, Mapping)


def _is_array(_checker: object, instance: object) -> bool:
    return isinstance(instance, Sequence) and not isinstance(instance, (str, bytes))


# Event content inside Synapse is an immutable Mapping, not a dict: validate it in place
# (no copy on the hot path) by accepting any Mapping / Sequence as JSON object / array.
_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"object": _is_object, "array": _is_array}
    ),
)


@functools.cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A compiled validator for ``name`` that resolves ``$ref`` to the other schemas."""
    compiled: jsonschema.protocols.Validator = _Validator(schema(name), registry=_registry())
    return compiled


def problem(name: str, value: Any) -> str | None:
    """``None`` if ``value`` is valid; otherwise ``"<path>: <what is wrong>"``."""
    error = jsonschema.exceptions.best_match(validator(name).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(content)"
    return f"{where}: {error.message}"
