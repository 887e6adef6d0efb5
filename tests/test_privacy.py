"""Privacy (issue 12): the audit log's hash chain, its check and a school's export."""

import asyncio
import contextlib
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from synapse_module.audit import GENESIS, Entry, entry_hash
from synapse_module.privacy.rules import Break, first_break
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import School, api, api_error, build_school

ROOT = Path(__file__).resolve().parent.parent

# -- the chain rule, as a table --------------------------------------------------


def _chain(n: int) -> list[Entry]:
    entries: list[Entry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        fields = (seq, prev, f"aud_{seq}", 1000 + seq, "@a:x", "school.update", "s1", None, "{}")
        digest = entry_hash(*fields)
        entries.append(Entry(*fields, hash=digest))
        prev = digest
    return entries


def _edited(entries: list[Entry], seq: int) -> list[Entry]:
    return [attrs.evolve(e, actor="@b:x") if e.seq == seq else e for e in entries]


def _rehashed(entries: list[Entry], seq: int) -> list[Entry]:
    """Entry ``seq`` edited and its own hash recomputed (the next entry's link breaks)."""
    out = []
    for e in entries:
        if e.seq == seq:
            e = attrs.evolve(e, actor="@b:x")
            e = attrs.evolve(e, hash=e.expected_hash())
        out.append(e)
    return out


CHAIN = _chain(5)
HEAD = (5, CHAIN[-1].hash)


@pytest.mark.parametrize(
    ("case", "entries", "head", "expected"),
    [
        ("whole", CHAIN, HEAD, None),
        ("empty", [], (0, GENESIS), None),
        ("first edited", _edited(CHAIN, 1), HEAD, Break(1, "aud_1", "edited")),
        ("middle edited", _edited(CHAIN, 3), HEAD, Break(3, "aud_3", "edited")),
        ("edited and rehashed", _rehashed(CHAIN, 2), HEAD, Break(3, "aud_3", "relinked")),
        ("middle removed", CHAIN[:2] + CHAIN[3:], HEAD, Break(3, None, "missing")),
        ("first removed", CHAIN[1:], HEAD, Break(1, None, "missing")),
        ("last removed", CHAIN[:4], HEAD, Break(5, None, "truncated")),
        ("head rewound", CHAIN, (4, CHAIN[3].hash), Break(5, "aud_5", "relinked")),
        ("head hash changed", CHAIN, (5, "0" * 64), Break(5, "aud_5", "relinked")),
    ],
)
def test_first_break(
    case: str, entries: list[Entry], head: tuple[int, str], expected: Break | None
) -> None:
    assert first_break(entries, head) == expected, case


# -- against the real Synapse ------------------------------------------------------


@pytest.fixture(scope="module")
def operator(synapse: RunningHomeserver) -> User:
    return synapse.register("operator", admin=True)


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver, operator: User) -> School:
    return build_school(synapse, operator)


def database(hs: RunningHomeserver) -> str:
    pg = hs.hs.postgres
    if pg is None:
        return str(hs.hs.directory / "homeserver.db")
    password = f":{pg.password}" if pg.password else ""
    return f"postgresql://{pg.user}{password}@{pg.host}:{pg.port}/{pg.database}"


def cli_verify(hs: RunningHomeserver) -> tuple[int, dict[str, Any]]:
    """``python -m synapse_module.privacy.verify`` as CI and the operator run it."""
    run = subprocess.run(
        [sys.executable, "-m", "synapse_module.privacy.verify", "--database", database(hs)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(run.stdout)


def both_verify(hs: RunningHomeserver, operator: User) -> dict[str, Any]:
    """The admin API's report (it chains what is not chained yet first) and the CLI's,
    which must agree."""
    report: dict[str, Any] = api(hs, "GET", "/audit/verify", operator)
    code, cli_report = cli_verify(hs)
    assert cli_report == report
    assert code == (0 if report["ok"] else 1)
    return report


def school_entries(hs: RunningHomeserver, school: School) -> list[dict[str, Any]]:
    answer = api(hs, "GET", f"/schools/{school.school_id}/audit", school.admin)
    entries: list[dict[str, Any]] = answer["entries"]
    return entries


@contextlib.contextmanager
def removed(hs: RunningHomeserver, seq: int) -> Iterator[None]:
    """Entry ``seq`` deleted by hand (kept aside, and put back afterwards: the suite's
    homeserver is shared)."""
    hs.sql("CREATE TABLE parta_audit_aside AS SELECT * FROM parta_audit WHERE seq = ?", (seq,))
    hs.sql("DELETE FROM parta_audit WHERE seq = ?", (seq,))
    try:
        yield
    finally:
        hs.sql("INSERT INTO parta_audit SELECT * FROM parta_audit_aside")
        hs.sql("DROP TABLE parta_audit_aside")


@contextlib.contextmanager
def edited(hs: RunningHomeserver, seq: int, actor: str) -> Iterator[None]:
    """Entry ``seq``'s actor changed by hand through SQL, and changed back afterwards."""
    hs.sql("UPDATE parta_audit SET actor = ? WHERE seq = ?", ("@someone_else:test", seq))
    try:
        yield
    finally:
        hs.sql("UPDATE parta_audit SET actor = ? WHERE seq = ?", (actor, seq))


def test_verify_passes_then_names_an_edited_or_removed_entry(
    synapse: RunningHomeserver, operator: User, school: School
) -> None:
    report = both_verify(synapse, operator)
    assert report["ok"], report
    assert report["entries"] >= 10  # the school, its classes, its members
    assert report["not_chained_yet"] == 0

    entry = school_entries(synapse, school)[2]  # one of the school's, mid-chain
    seq = entry["seq"]

    with edited(synapse, seq, entry["actor"]):
        report = both_verify(synapse, operator)
        assert not report["ok"]
        assert report["first_broken"]["seq"] == seq
        assert report["first_broken"]["audit_id"] == entry["audit_id"]
        assert report["first_broken"]["reason"] == "edited"
    assert both_verify(synapse, operator)["ok"]

    with removed(synapse, seq):
        report = both_verify(synapse, operator)
        assert not report["ok"]
        assert report["first_broken"]["seq"] == seq
        assert report["first_broken"]["reason"] == "missing"
    assert both_verify(synapse, operator)["ok"]

    last = both_verify(synapse, operator)["entries"]
    with removed(synapse, last):
        report = both_verify(synapse, operator)
        assert report["first_broken"]["seq"] == last
        assert report["first_broken"]["reason"] == "truncated"
    assert both_verify(synapse, operator)["ok"]


def test_only_the_operator_checks_the_chain(synapse: RunningHomeserver, school: School) -> None:
    err = api_error(synapse, "GET", "/audit/verify", school.admin)
    assert err.status == 403
    assert err.body["errcode"] == "M_FORBIDDEN"
    assert "оператор" in err.body["error"] and "operator" in err.body["error"]


async def test_concurrent_writers_keep_the_chain_linear(
    synapse: RunningHomeserver, operator: User, school: School
) -> None:
    """Twelve exports at once: each appends an entry and chains what is pending, at once."""
    before = both_verify(synapse, operator)["entries"]
    path = f"schools/{school.school_id}/audit"
    async with synapse.http(school.admin) as http:

        async def export() -> int:
            async with http.get(path) as r:
                return r.status

        statuses = await asyncio.gather(*(export() for _ in range(12)))
    assert statuses == [200] * 12
    report = both_verify(synapse, operator)
    assert report["ok"], report
    assert report["entries"] == before + 12
    assert report["not_chained_yet"] == 0


def test_a_school_exports_its_audit_for_an_inspector(
    synapse: RunningHomeserver, operator: User, school: School
) -> None:
    sid = school.school_id
    entries = school_entries(synapse, school)
    assert entries and all(e["school_id"] == sid for e in entries)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert {"school.create", "class.create", "member.put"} <= {e["action"] for e in entries}
    # The export is itself recorded, by whom, before the entries are read.
    assert entries[-1]["action"] == "audit.export"
    assert entries[-1]["actor"] == school.admin.user_id
    assert entries[-1]["details"] == {"format": "json"}


async def test_the_audit_export_as_csv_and_who_may_read_it(
    synapse: RunningHomeserver, operator: User, school: School
) -> None:
    sid = school.school_id
    async with (
        synapse.http(operator) as http,
        http.get(f"schools/{sid}/audit", params={"format": "csv"}) as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/csv")
        text = (await r.read()).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert rows and {row["school_id"] for row in rows} == {sid}
    assert rows[-1]["action"] == "audit.export"
    assert rows[-1]["actor"] == operator.user_id
    assert json.loads(rows[-1]["details"]) == {"format": "csv"}

    for who in (school.teacher, school.students[0], school.parent):
        err = api_error(synapse, "GET", f"/schools/{sid}/audit", who)
        assert err.status == 403, who.user_id
    err = api_error(synapse, "GET", f"/schools/{sid}/audit?format=xml", school.admin)
    assert err.status == 400 and err.body["errcode"]
    err = api_error(synapse, "GET", "/schools/no_such_school/audit", school.admin)
    assert err.status == 404
    # Refusals are not recorded as reads; the last entry is still the operator's CSV.
    assert school_entries(synapse, school)[-2]["details"] == {"format": "csv"}
