"""The module's migrations after they moved into the feature packages (#18): a database the
old layout (``synapse_module/schema/<area>.py``) made opens with the new registry
(``synapse_module/migrations.py``) without a step run twice and without a row lost.

``tests/data/schema_before_features.json`` is the old layout's every area and step, as
its code had them when it was moved (the same area names, versions and statements). The
database is a real Synapse's (SQLite or PostgreSQL, as the harness chooses): the old
layout's steps run there through the module's own migration code (``store._migrate_txn``,
over ``bench.content_db.Cursor``, a DB-API cursor in the shape of Synapse's transaction),
then Synapse starts with the module as it is now and serves what the old database holds.
"""

import json
import sqlite3
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from bench.content_db import Cursor
from synapse_module.migrations import AREAS
from synapse_module.roster import store as roster_store
from synapse_module.roster.rules import SchoolPolicy
from synapse_module.store import Step, _migrate_txn
from tests.harness import RunningHomeserver, running_homeserver

RECORDED = Path(__file__).parent / "data" / "schema_before_features.json"


def old_layout() -> dict[str, list[Step]]:
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    return {
        area: [Step(s["version"], s["description"], s["statements"]) for s in steps]
        for area, steps in recorded.items()
    }


def connect(hs: RunningHomeserver) -> Any:
    """A connection to the homeserver's own database."""
    if hs.hs.postgres is not None:
        import psycopg2

        return psycopg2.connect(**hs.hs.postgres.connect_args())
    return sqlite3.connect(hs.hs.directory / "homeserver.db")


def run(hs: RunningHomeserver, func: Callable[..., Any], *args: Any) -> Any:
    """``func(txn, *args)`` in one committed transaction, as ``run_db_interaction`` does."""
    conn = connect(hs)
    try:
        cursor = conn.cursor()
        result = func(Cursor(cursor, postgres=hs.hs.postgres is not None), *args)
        conn.commit()
        return result
    finally:
        conn.close()


def versions_txn(txn: Cursor) -> dict[str, int]:
    txn.execute("SELECT area, version FROM parta_schema")
    return {str(a): int(v) for a, v in txn.fetchall()}


def test_every_area_keeps_its_name_and_its_steps_in_order() -> None:
    old = old_layout()
    assert len(old) == 10
    # The same areas in the same relative order; new areas only after the old ones.
    assert [a for a in AREAS if a in old] == list(old)
    for area, steps in old.items():
        now = AREAS[area]
        assert len(now) >= len(steps), area
        for before, after in zip(steps, now, strict=False):
            assert before.version == after.version
            assert before.description == after.description
            assert list(before.statements) == [
                textwrap.dedent(s).strip() for s in after.statements
            ], f"{area} step {before.version} changed: a database past it would not get it"


def test_a_database_from_the_old_layout_opens_with_the_new_code(tmp_path: Path) -> None:
    # Synapse's own tables first (some steps read them), without the module.
    with running_homeserver(tmp_path / "hs", load_module=False) as hs:
        hs.stop()
        # What the old layout's code did on its first start: every step of every area.
        applied = run(hs, _migrate_txn, old_layout())
        assert len(applied) == sum(len(s) for s in old_layout().values())
        school = roster_store.School(
            school_id="sch_old",
            name="Школа № 7",
            short_name=None,
            address=None,
            contacts={},
            logo_mxc=None,
            timezone="Europe/Moscow",
            unit_id=None,
            external_id="org-7",
            policy=SchoolPolicy(),
            created_ts=1,
        )
        run(hs, roster_store.insert_school_txn, school, {}, "@op:localhost")
        before = run(hs, versions_txn)
        assert before == {a: len(s) for a, s in old_layout().items()}

        # The new code opens it: only steps the old layout lacked would run (none today).
        hs.hs = attrs.evolve(hs.hs, load_module=True)
        hs.hs.write_config()
        hs.restart()
        operator = hs.register("op", admin=True)
        found = hs.request(
            "GET", "/_synapse/client/parta/v1/schools/sch_old", None, operator.access_token
        )
        assert found["name"] == "Школа № 7"
        assert found["external_id"] == "org-7"
        assert run(hs, versions_txn) == {a: len(s) for a, s in AREAS.items()}
        # The module migrated in its own transaction already: nothing left to do.
        assert run(hs, _migrate_txn, dict(AREAS)) == []
