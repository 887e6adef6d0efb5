"""Every column of the module's tables that names a person is handled by the erasure:
deleted with the person's rows (``ERASE_ROWS``), replaced by the marker where others
still need the row (``MARK_ROWS``), handled by its own statement in the erasure's
store, or kept for a reason written here. A new table naming people fails this test
until the erasure knows it (a table added without it would leave an erased child's ID
behind: docs/privacy.md, "Erasure").

The same for the columns of text or JSON the module writes about people (an import's
files and plan, the audit's details, a broadcast's speakers): each is taken out of by its
own statement, goes with the person's row, or is kept for a reason. What people wrote
themselves (a message, an article's body) is theirs and is not read for names.
The import's own: its files and plan are rewritten and checked here against a real
roster (tests/test_privacy_imports.py checks it against a real Synapse)."""

import base64
import json
import re

from parta_common.oneroster import read_files
from parta_common.roster_plan import plan_school
from synapse_module.imports.rules import (
    ErasedPerson,
    ImportBlobs,
    decode_files,
    erase_from_import,
    plan_json,
)
from synapse_module.migrations import AREAS
from synapse_module.privacy.rules import ERASE_ROWS, ERASED, MARK_ROWS
from tests.data.make_sample_school import make_school

# Column names that hold a person's Matrix ID.
PERSON_COLUMNS = {
    "user_id",
    "sender",
    "author",
    "editor",
    "actor",
    "student",
    "child_id",
    "child_user_id",
    "parent_user_id",
    "homeroom_user_id",
    "created_by",
    "recorded_by",
    "changed_by",
    "decided_by",
    "requested_by",
    "set_by",
    "target",
    "speakers",
}

# Handled by their own statements in privacy/store.py's erase_rows_txn.
OWN_STATEMENTS = {
    ("parta_classes", "homeroom_user_id"),  # set to NULL
    ("parta_broadcasts", "speakers"),  # the person taken out of the JSON list
    # Marked, but per school not the request carried out for themself until they are told.
    ("parta_erasure_requests", "requested_by"),
    # erase_from_imports_txn: their rows of the files, their plan entries, the error.
    ("parta_imports", "files"),
    ("parta_imports", "plan"),
    ("parta_imports", "error"),
}

# Columns of text or JSON the module writes, which can carry names, IDs or e-mails.
BLOB_COLUMNS = {"details", "plan", "files", "result", "error", "speakers", "content"}
BLOB_COLUMNS |= {"display_name", "contacts"}

# A blob that is about the person of its row: it goes with the row (an ERASE_ROWS entry).
GOES_WITH_THE_ROW = {
    ("parta_room_sessions", "display_name"): ("parta_room_sessions", "user_id"),
    ("parta_import_people", "display_name"): ("parta_import_people", "user_id"),
    ("parta_held_messages", "content"): ("parta_held_messages", "sender"),
}

# Kept on purpose, with the reason.
KEPT = {
    ("parta_audit", "actor"): "the audit log is the record of who did what; never edited",
    ("parta_audit", "target"): "the audit log is the record of who did what; never edited",
    ("parta_erasures", "user_id"): "the erasure's own journal; replaced by a hash when done",
    ("parta_audit", "details"): "the audit log is the record of who did what; never edited",
    ("parta_imports", "result"): "counts only: classes and accounts made, members set, …",
    ("parta_job_runs", "result"): "a job's one-line result: counts, or the error's type",
    ("parta_homework", "files"): "the teacher's attachments; the homework's sender is marked",
    ("parta_schools", "contacts"): "the school's public contacts, as its administrators wrote",
}


def person_columns(names: set[str] = PERSON_COLUMNS) -> set[tuple[str, str]]:
    """(table, column) for every column naming a person (of ``names``) in the tables as
    the migrations leave them, run in order (tables dropped and renamed on the way)."""
    tables: dict[str, set[str]] = {}
    for steps in AREAS.values():
        for step in steps:
            for sql in step.statements:
                for table, body in re.findall(
                    r"CREATE TABLE(?: IF NOT EXISTS)?\s+(\w+)\s*\((.*)\)", sql, re.S | re.I
                ):
                    tables[table] = {w[0] for w in (x.split() for x in body.split(",")) if w}
                for table, column in re.findall(
                    r"ALTER TABLE\s+(\w+)\s+ADD COLUMN\s+(\w+)", sql, re.I
                ):
                    tables[table].add(column)
                for old, new in re.findall(r"ALTER TABLE\s+(\w+)\s+RENAME TO\s+(\w+)", sql, re.I):
                    tables[new] = tables.pop(old)
                for table in re.findall(r"DROP TABLE(?: IF EXISTS)?\s+(\w+)", sql, re.I):
                    tables.pop(table, None)
    return {(t, c) for t, columns in tables.items() for c in columns if c in names}


def test_the_registry_has_tables_naming_people() -> None:
    columns = person_columns()
    # The parse sees the tables it must: a broken regex would pass the next test empty.
    assert ("parta_school_roles", "user_id") in columns
    assert ("parta_confirm_reminders", "child_id") in columns
    # Made as parta_confirmations_by_child, renamed over the first table of that name.
    assert ("parta_confirmations", "child_id") in columns
    assert not any(table == "parta_confirmations_by_child" for table, _ in columns)
    assert len(columns) > 40


def test_every_column_naming_a_person_is_erased_marked_or_kept_for_a_reason() -> None:
    handled = set(ERASE_ROWS) | set(MARK_ROWS) | OWN_STATEMENTS | set(KEPT)
    assert sorted(person_columns() - handled) == []


def test_the_lists_name_only_real_columns() -> None:
    columns = person_columns() | person_columns(BLOB_COLUMNS)
    listed = set(ERASE_ROWS) | set(MARK_ROWS) | OWN_STATEMENTS | set(KEPT)
    assert sorted(listed - columns) == []


def test_every_blob_that_can_name_a_person_is_erased_or_kept_for_a_reason() -> None:
    blobs = person_columns(BLOB_COLUMNS)
    assert {("parta_imports", "plan"), ("parta_audit", "details")} <= blobs
    assert set(GOES_WITH_THE_ROW.values()) <= set(ERASE_ROWS)
    handled = OWN_STATEMENTS | set(KEPT) | set(GOES_WITH_THE_ROW)
    assert sorted(blobs - handled) == []
    assert sorted(set(GOES_WITH_THE_ROW) - blobs) == []


def _b64(files: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}


def test_an_import_keeps_nothing_of_an_erased_person_and_still_reads() -> None:
    """A roster's files and plan (a pupil added, moved, renamed, removed) without the
    pupil: no name, username, e-mail or OneRoster ID; the counts and everyone else stay;
    the files read as a roster without them, their parents' links still valid."""
    files = make_school(students=30, seed=5, prefix="er-", grades=range(1, 3))
    roster = read_files({k: v.encode() for k, v in files.items()})
    pupil = next(p for p in roster.people.values() if p.role.value == "student" and p.agent_ids)
    lines = files["users.csv"].splitlines()
    header = lines[0].split(",")
    at = next(i for i, line in enumerate(lines) if line.startswith(pupil.source_id + ","))
    cells = lines[at].split(",")
    cells[header.index("email")] = "pupil-mail@example.org"
    lines[at] = ",".join(cells)
    files["users.csv"] = "\n".join(lines) + "\n"
    roster = read_files({k: v.encode() for k, v in files.items()})
    plan = plan_school(roster, "sch-1", "s1", {}, {}, {}, {})
    stored = plan_json(plan, roster)
    user_id = "@pupil:example.org"
    # What a later plan says about them: moved, renamed, and gone.
    move = {"source_id": pupil.source_id, "display_name": pupil.display_name, "from": [], "to": []}
    stored["move"] = [move, {"display_name": pupil.display_name, "from": ["1А"], "to": ["2А"]}]
    stored["remove"] = [{"user_id": user_id, "display_name": pupil.display_name}]
    stored["rename"] = [{"user_id": user_id, "from": pupil.display_name, "to": "Новое Имя"}]
    error = {"errcode": "M_UNKNOWN", "error": f"{user_id}: no"}
    blobs = ImportBlobs(_b64(files), stored, error)
    person = ErasedPerson(user_id, frozenset({pupil.source_id}), frozenset({pupil.display_name}))

    erased = erase_from_import(blobs, person, ERASED)
    assert erased is not None
    decoded = decode_files(erased.files)
    assert not isinstance(decoded, tuple)
    text = json.dumps([erased.plan, erased.error], ensure_ascii=False)
    text += "".join(d.decode() for d in decoded.values())
    for trace in (
        pupil.source_id,
        pupil.username,
        pupil.display_name,
        "pupil-mail@example.org",
        user_id,
        "Новое Имя",
    ):
        # The whole value (er-stu-1 is not er-stu-13's start).
        assert not re.search(rf"(?<![\w.-]){re.escape(trace)}(?![\w.-])", text), trace
    assert pupil.display_name in json.dumps(stored, ensure_ascii=False)
    users = [line.split(",") for line in decoded["users.csv"].decode().splitlines()]
    names = [header.index(c) for c in ("givenName", "familyName", "middleName")]
    theirs = [pupil.given_name, pupil.family_name, pupil.middle_name]
    assert not [u for u in users if [u[i] for i in names] == theirs]
    assert sum(1 for u in users if u[header.index("givenName")] == ERASED) == 1
    assert erased.plan["counts"] == stored["counts"]
    assert len(erased.plan["add"]) == len(stored["add"])
    assert {"display_name": ERASED, "source_id": ERASED} in [
        {k: e[k] for k in ("display_name", "source_id")} for e in erased.plan["add"]
    ]
    assert erased.plan["rename"] == [{"user_id": ERASED, "from": ERASED, "to": ERASED}]
    assert [m["display_name"] for m in erased.plan["move"]] == [ERASED, ERASED]
    assert erased.plan["move"][1]["to"] == ["2А"]
    again = read_files(decoded)
    assert set(again.people) == set(roster.people) - {pupil.source_id}
    assert again.classes == roster.classes
    parents = [roster.people[a] for a in pupil.agent_ids]
    assert all(again.people[p.source_id].display_name == p.display_name for p in parents)
    # Erased again (the step run twice after a crash): nothing left to change.
    assert erase_from_import(erased, person, ERASED) is None
