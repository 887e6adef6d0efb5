"""One pattern for configuration in all three processes.

A configuration is a frozen ``attrs`` class. :func:`build` turns the raw mapping read
from YAML into it: unknown keys are rejected, every value is checked against the
field's type (``str``, ``int``, ``float``, ``bool``, ``datetime.date`` as YYYY-MM-DD,
``list[...]``, ``dict[str, ...]``, ``X | None``, an ``enum`` or a nested config class),
``CHANGE_ME`` placeholders left in are refused, and a field's ``validator`` runs as usual.
Every problem is a :class:`ConfigProblem` that names the key path and, when given, the
file.
"""

import datetime
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
import yaml

T = TypeVar("T")

PLACEHOLDER = "CHANGE_ME"


class ConfigProblem(ValueError):
    """A configuration value is missing, unknown or wrong."""

    def __init__(self, msg: str, path: Sequence[str] = (), source: str | None = None):
        self.msg = msg
        self.path = tuple(path)
        self.source = source
        where = ".".join(self.path) or "<root>"
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{where}: {msg}")


def build(cls: type[T], raw: object, path: Sequence[str] = (), source: str | None = None) -> T:
    """Build the config class ``cls`` from ``raw``, or raise :class:`ConfigProblem`."""
    try:
        return _build_class(cls, raw, tuple(path))
    except ConfigProblem as e:
        raise ConfigProblem(e.msg, e.path, source) from None


def load_yaml(cls: type[T], file: Path, section: str | None = None) -> T:
    """Read ``file`` (optionally one top-level ``section`` of it) into ``cls``."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigProblem(f"cannot read configuration: {e}", (), str(file)) from None
    path: tuple[str, ...] = ()
    if section is not None:
        if not isinstance(data, Mapping) or section not in data:
            raise ConfigProblem("section is missing", (section,), str(file))
        data = data[section]
        path = (section,)
    return build(cls, data if data is not None else {}, path, str(file))


def _build_class(cls: type[T], raw: object, path: tuple[str, ...]) -> T:
    if not isinstance(raw, Mapping):
        raise ConfigProblem(f"expected a mapping, got {_kind(raw)}", path)
    fields = {f.name: f for f in attrs.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(str(k) for k in raw if k not in fields)
    if unknown:
        raise ConfigProblem(
            f"unknown key(s): {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}", path
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in raw:
            if field.default is attrs.NOTHING:
                raise ConfigProblem("required key is missing", (*path, name))
            continue
        kwargs[name] = _convert(hints[name], raw[name], (*path, name))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        # attrs validators name the attribute; keep the path to the class.
        raise ConfigProblem(str(e), path) from None


def _convert(tp: Any, value: object, path: tuple[str, ...]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, path)
        raise ConfigProblem("unsupported union type in config class", path)
    if value is None:
        raise ConfigProblem("a value is required here (got null)", path)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigProblem(
                f"expected one of {', '.join(map(repr, args))}, got {value!r}", path
            )
        return value
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, list):
            raise ConfigProblem(f"expected a list, got {_kind(value)}", path)
        item_tp = args[0] if args else Any
        return tuple(_convert(item_tp, v, (*path, str(i))) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigProblem(f"expected a mapping, got {_kind(value)}", path)
        key_tp, val_tp = args if args else (str, Any)
        return {
            _convert(key_tp, k, (*path, str(k))): _convert(val_tp, v, (*path, str(k)))
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if isinstance(tp, type) and attrs.has(tp):
        return _build_class(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise ConfigProblem(f"expected one of {allowed}, got {value!r}", path) from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigProblem(f"expected true or false, got {_kind(value)}", path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigProblem(f"expected an integer, got {_kind(value)}", path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigProblem(f"expected a number, got {_kind(value)}", path)
        return float(value)
    if tp is datetime.date:
        return _date(value, path)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigProblem(f"expected a string, got {_kind(value)}", path)
        if PLACEHOLDER in value:
            raise ConfigProblem(f"replace the placeholder {PLACEHOLDER} with a real value", path)
        return value
    raise ConfigProblem(f"unsupported type {tp!r} in config class", path)


def _date(value: object, path: tuple[str, ...]) -> datetime.date:
    """A date: YAML's own (``2026-05-27`` unquoted) or an ISO string (quoted)."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigProblem(f"expected a date (YYYY-MM-DD), got {_kind(value)}", path)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
