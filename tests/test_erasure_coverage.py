"""Every column of the module's tables that names a person is handled by the erasure:
deleted with the person's rows (``ERASE_ROWS``), replaced by the marker where others
still need the row (``MARK_ROWS``), handled by its own statement in the erasure's
store, or kept for a reason written here. A new table naming people fails this test
until the erasure knows it (a table added without it would leave an erased child's ID
behind: docs/privacy.md, "Erasure")."""

import re

from synapse_module.migrations import AREAS
from synapse_module.privacy.rules import ERASE_ROWS, MARK_ROWS

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
}

# Kept on purpose, with the reason.
KEPT = {
    ("parta_audit", "actor"): "the audit log is the record of who did what; never edited",
    ("parta_audit", "target"): "the audit log is the record of who did what; never edited",
    ("parta_erasures", "user_id"): "the erasure's own journal; replaced by a hash when done",
}


def person_columns() -> set[tuple[str, str]]:
    """(table, column) for every column naming a person in the tables as the
    migrations leave them, run in order (tables dropped and renamed on the way)."""
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
    return {(t, c) for t, columns in tables.items() for c in columns if c in PERSON_COLUMNS}


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
    columns = person_columns()
    listed = set(ERASE_ROWS) | set(MARK_ROWS) | OWN_STATEMENTS | set(KEPT)
    assert sorted(listed - columns) == []
