"""A database for the content benchmarks: the module's real tables and SQL, outside Synapse.

SQLite always; PostgreSQL too when the test server answers (``PARTA_TEST_DB`` as in the
test harness). Synapse rewrites ``?`` placeholders for PostgreSQL; this cursor does too.
"""

import contextlib
import secrets
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from synapse_module.content.schema import STEPS


class Cursor:
    """Just enough of Synapse's ``LoggingTransaction`` for the module's SQL (the content
    benchmarks; tests/test_migrations.py). ``call_after`` callbacks are kept, not run."""

    def __init__(self, raw: Any, postgres: bool):
        self._raw = raw
        self._postgres = postgres
        self.after: list[Callable[[], object]] = []

    def call_after(self, callback: Callable[[], object]) -> None:
        self.after.append(callback)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        if self._postgres:
            sql = sql.replace("%", "%%").replace("?", "%s")
        self._raw.execute(sql, tuple(args))

    def fetchone(self) -> Any:
        return self._raw.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._raw.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    @property
    def description(self) -> Any:
        return self._raw.description


def _create(cur: Cursor) -> None:
    for step in STEPS:
        for statement in step.statements:
            cur.execute(statement)


@contextlib.contextmanager
def sqlite_db() -> Iterator[tuple[Any, Cursor]]:
    with tempfile.TemporaryDirectory() as d:
        conn = sqlite3.connect(Path(d) / "bench.db")
        cur = Cursor(conn.cursor(), postgres=False)
        _create(cur)
        conn.commit()
        try:
            yield conn, cur
        finally:
            conn.close()


@contextlib.contextmanager
def postgres_db() -> Iterator[tuple[Any, Cursor]]:
    import psycopg2

    from tests.harness import create_database, drop_database

    name = f"parta_bench_{secrets.token_hex(3)}"
    pg = create_database(name)
    conn = psycopg2.connect(**pg.connect_args())
    try:
        cur = Cursor(conn.cursor(), postgres=True)
        _create(cur)
        conn.commit()
        yield conn, cur
    finally:
        conn.close()
        drop_database(name)


def backends() -> list[str]:
    from tests.harness import choose_backend

    return ["sqlite", "postgres"] if choose_backend() == "postgres" else ["sqlite"]


def open_db(backend: str) -> contextlib.AbstractContextManager[tuple[Any, Cursor]]:
    return postgres_db() if backend == "postgres" else sqlite_db()
