"""Query parameters of the module's API: one parser, bounded and typed.

Every listing and export reads its query through these functions, so a wrong value is
always ``400 M_INVALID_PARAM`` naming the parameter (in Russian and English), never a
500 from the database: numbers are bounded to what a 64-bit column holds, strings have
a length limit and no NUL character (PostgreSQL refuses NUL in text), and a paging
cursor is checked against the type of the column it pages on.
"""

import base64
import json
from typing import Any, Final

from synapse.module_api import SynapseRequest
from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message

from .errors import matrix_error

BAD_PARAM: Final = Message("query.bad_param")
# Bounds of a number column (PostgreSQL BIGINT; SQLite INTEGER is the same 64 bits).
BIGINT_MAX: Final = 2**63 - 1
# Longest string parameter (IDs, search text, tags, names).
MAX_STRING: Final = 1000


def bad_param(name: str, detail: str) -> SynapseError:
    return matrix_error(400, Codes.INVALID_PARAM, BAD_PARAM, name=name, detail=detail)


def query_strings(request: SynapseRequest, name: str, max_length: int = MAX_STRING) -> list[str]:
    """Every value of ``name`` in the query string, each checked."""
    args: dict[bytes, list[bytes]] = request.args or {}
    values = []
    for raw in args.get(name.encode("ascii"), []):
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_param(name, "not UTF-8 text") from None
        check_string(name, value, max_length)
        values.append(value)
    return values


def check_string(name: str, value: str, max_length: int = MAX_STRING) -> str:
    if len(value) > max_length:
        raise bad_param(name, f"longer than {max_length} characters")
    if "\x00" in value:
        raise bad_param(name, "contains a NUL character")
    return value


def query_string(
    request: SynapseRequest, name: str, default: str | None = None, max_length: int = MAX_STRING
) -> str | None:
    """The last value of ``name`` (or ``default`` when absent or empty)."""
    values = query_strings(request, name, max_length)
    return values[-1] if values and values[-1] != "" else default


def query_choice(request: SynapseRequest, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = query_string(request, name, default) or default
    if value not in allowed:
        raise bad_param(name, f"one of {', '.join(allowed)}")
    return value


def parse_int(name: str, raw: str, low: int, high: int) -> int:
    """A decimal integer within ``[low, high]`` (ASCII digits, optional minus sign)."""
    digits = raw[1:] if raw.startswith("-") else raw
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise bad_param(name, f"not an integer between {low} and {high}")
    value = int(raw)
    if not low <= value <= high:
        raise bad_param(name, f"must be between {low} and {high}")
    return value


def query_int(
    request: SynapseRequest, name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = query_string(request, name)
    if raw is None:
        return default
    return parse_int(name, raw, low, high)


def query_limit(request: SynapseRequest, default: int = 50, high: int = 200) -> int:
    value = query_int(request, "limit", default, 1, high)
    assert value is not None  # default is an int
    return value


def encode_cursor(value: object, key: str) -> str:
    """An opaque paging token: the last row's sort value and its ID."""
    raw = json.dumps([value, key], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, numeric: bool) -> tuple[Any, str] | None:
    """The cursor's ``(value, key)``; ``None`` unless it is one this API could have given
    for a column of that kind (a bounded integer, or a bounded string)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, key = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, str) or not key or len(key) > MAX_STRING or "\x00" in key:
        return None
    if numeric:
        # (bool is an int in Python, not in a number column.)
        if type(value) is not int or not -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
            return None
    elif not isinstance(value, str) or len(value) > MAX_STRING or "\x00" in value:
        return None
    return value, key


def query_cursor(request: SynapseRequest, numeric: bool) -> tuple[Any, str] | None:
    """``from``: a ``next_batch`` token of this listing, for a number or a text column."""
    raw = query_string(request, "from", max_length=4 * MAX_STRING)
    if raw is None:
        return None
    cursor = decode_cursor(raw, numeric)
    if cursor is None:
        raise bad_param("from", "not a token from next_batch")
    return cursor
