"""Matrix errors the module answers with: Russian / English text, and the catalogue id."""

import errno
import sqlite3

from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message

DISK_FULL = Message("http.disk_full")
# PostgreSQL's SQLSTATE for "disk full" (class 53, insufficient resources).
_PG_DISK_FULL = "53100"
_PG_UNIQUE_VIOLATION = "23505"


def disk_full(error: BaseException) -> bool:
    """``error`` (or what caused it) says the disk is full: SQLite's ``SQLITE_FULL``,
    PostgreSQL's 53100, or ``ENOSPC`` from writing a file."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if isinstance(seen, sqlite3.OperationalError) and "disk is full" in str(seen):
            return True
        if getattr(seen, "pgcode", None) == _PG_DISK_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def unique_violation(error: BaseException) -> bool:
    """``error`` is a unique key refusing a row another transaction wrote meanwhile:
    SQLite's ``UNIQUE constraint failed``, PostgreSQL's 23505."""
    if isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error):
        return True
    return getattr(error, "pgcode", None) == _PG_UNIQUE_VIOLATION


def disk_full_error() -> SynapseError:
    """507 ``M_RESOURCE_LIMIT_EXCEEDED``: nothing was written; try again once there is space."""
    return matrix_error(507, Codes.RESOURCE_LIMIT_EXCEEDED, DISK_FULL)


def matrix_error(status: int, errcode: str, message: Message, /, **params: object) -> SynapseError:
    """The text for plain clients ("русский / English") and its catalogue id for the rest."""
    return SynapseError(
        status, message.format(**params), errcode, additional_fields=message.fields(**params)
    )


def forbidden(message: Message, /, **kwargs: object) -> SynapseError:
    return matrix_error(403, Codes.FORBIDDEN, message, **kwargs)


def bad_json(message: Message, /, **kwargs: object) -> SynapseError:
    return matrix_error(400, Codes.BAD_JSON, message, **kwargs)


def not_found(message: Message, /, **kwargs: object) -> SynapseError:
    return matrix_error(404, Codes.NOT_FOUND, message, **kwargs)


def conflict(message: Message, /, **kwargs: object) -> SynapseError:
    """409 ``M_BAD_STATE``: the thing's state forbids this (ended, published, taken).

    The one other 409 is ``M_USER_IN_USE``, an account name someone else holds."""
    return matrix_error(409, Codes.BAD_STATE, message, **kwargs)
