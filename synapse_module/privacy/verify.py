"""Check the audit log's hash chain from outside the homeserver (CI, the operator).

    python -m synapse_module.privacy.verify --database postgresql://user@host/synapse
    python -m synapse_module.privacy.verify --database /data/homeserver.db

Prints the report as JSON; exit status 0 when the chain is whole, 1 when it names the
first broken entry, 2 when the database cannot be read. When retention removed the
chain's oldest entries, the check starts at the anchor (the last entry removed, recorded
by an ``audit.trim`` entry that must still be in the chain).
"""

import argparse
import json
import sqlite3
import sys
import urllib.parse
from typing import Any, cast

from ..audit import chain_txn
from .rules import verify_report


class _Cursor:
    """A DB-API cursor as the transaction functions expect it (``?`` placeholders)."""

    def __init__(self, cursor: Any, placeholder: str):
        self._cursor = cursor
        self._placeholder = placeholder

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        self._cursor.execute(sql.replace("?", self._placeholder), args)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> Any:
        return self._cursor.fetchall()

    @property
    def description(self) -> Any:
        return self._cursor.description


def _connect(database: str) -> tuple[Any, str]:
    if urllib.parse.urlsplit(database).scheme in ("postgres", "postgresql"):
        import psycopg2

        return psycopg2.connect(database), "%s"
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True), "?"


def verify_database(database: str) -> dict[str, Any]:
    conn, placeholder = _connect(database)
    try:
        cursor = _Cursor(conn.cursor(), placeholder)
        entries, head, pending, anchor = chain_txn(cast(Any, cursor))
    finally:
        conn.close()
    return verify_report(entries, head, pending, anchor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database",
        required=True,
        help="postgresql://user[:password]@host[:port]/db, or the SQLite file's path",
    )
    args = parser.parse_args(argv)
    try:
        report = verify_database(args.database)
    except Exception as e:  # any failure to read: exit 2, said plainly
        print(f"cannot read the audit log: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
