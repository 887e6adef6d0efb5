"""Pure decisions of the module's roster import: which files, which school in them, what
the plan says to a person, and what each batch entry is. The plan itself is
``parta_common.roster_plan`` — the same planner the bot's and the CLI's import use."""

import base64
import binascii
import csv
import io
import secrets
from collections.abc import Collection
from typing import Any, Final

import attrs

from parta_common.messages import Message
from parta_common.oneroster import (
    OPTIONAL_FILES,
    REQUIRED_FILES,
    Roster,
    RosterErrors,
    read_files,
    zip_files,
)
from parta_common.roster_plan import MemberChange, SchoolPlan, wave

from .texts import BAD_BASE64, NO_SCHOOL_IN_FILES, SCHOOL_NOT_IN_FILES, SEVERAL_SCHOOLS

# Names shown per list in the plan (the counts are always whole).
PLAN_NAMES: Final = 200
ACCEPTED_FILES: Final = REQUIRED_FILES + OPTIONAL_FILES


def decode_files(sent: dict[str, str]) -> dict[str, bytes] | tuple[Message, dict[str, str]]:
    """The CSV files of a request (name → base64): a ZIP is opened, other names are
    ignored; a refusal as (message, params) when a file is not base64."""
    files: dict[str, bytes] = {}
    for name, data in sorted(sent.items()):
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return BAD_BASE64, {"name": name}
        if name.lower().endswith(".zip"):
            files.update(zip_files(raw))
        elif name in ACCEPTED_FILES:
            files[name] = raw
    return files


def read_roster(files: dict[str, bytes]) -> Roster:
    """:func:`parta_common.oneroster.read_files`; :class:`RosterErrors` on any problem."""
    return read_files(files)


def pick_org(roster: Roster, external_id: str | None) -> str | tuple[Message, dict[str, str]]:
    """Which school of the files is this school: the one whose ``sourcedId`` is the
    school's ``external_id``, else the only one there is."""
    if external_id:
        if external_id in roster.schools:
            return external_id
        return SCHOOL_NOT_IN_FILES, {"external_id": external_id}
    if not roster.schools:
        return NO_SCHOOL_IN_FILES, {}
    if len(roster.schools) > 1:
        return SEVERAL_SCHOOLS, {"count": str(len(roster.schools))}
    return next(iter(roster.schools))


def plan_json(plan: SchoolPlan, roster: Roster) -> dict[str, Any]:
    """The plan as the console shows it before it is applied: counts, and the names."""

    def titles(classes: frozenset[str]) -> list[str]:
        return sorted(roster.classes[c].title for c in classes if c in roster.classes)

    def person(c: MemberChange) -> dict[str, Any]:
        return {
            "source_id": c.source_id,
            "display_name": c.display_name,
            "roles": sorted(r.value for r in c.after.roles),
            "classes": titles(c.after.classes),
        }

    new = sorted(plan.new_members, key=lambda c: (wave(c.after), c.display_name))
    return {
        "school": plan.name,
        "source_id": plan.source_id,
        "empty": plan.empty,
        "counts": {
            "create_classes": len(plan.create_classes),
            "create_accounts": len(plan.create_accounts),
            "add": len(new),
            "move": len(plan.moves),
            "change": plan.other_changes,
            "remove": len(plan.remove_members),
            "rename": len(plan.renames),
        },
        "create_classes": sorted(roster.classes[c].title for c in plan.create_classes),
        "add": [person(c) for c in new[:PLAN_NAMES]],
        "move": [
            {
                "source_id": c.source_id,
                "display_name": c.display_name,
                "from": titles(c.before.classes if c.before else frozenset()),
                "to": titles(c.after.classes),
            }
            for c in plan.moves[:PLAN_NAMES]
        ],
        "remove": [
            {"user_id": uid, "display_name": name} for uid, name in plan.remove_members[:PLAN_NAMES]
        ],
        "rename": [
            {"user_id": uid, "from": before, "to": now}
            for _sid, uid, before, now in plan.renames[:PLAN_NAMES]
        ],
    }


def total_steps(plan: SchoolPlan) -> int:
    """What the progress bar counts: classes, people set, renames, leavers."""
    return (
        len(plan.create_classes)
        + len(plan.set_members)
        + len(plan.renames)
        + len(plan.remove_members)
    )


def problems_text(errors: RosterErrors, limit: int = 20) -> str:
    """The files' problems in one line for the error text (all of them are in the
    answer's ``problems``)."""
    shown = errors.problems[:limit]
    more = len(errors.problems) - len(shown)
    return "; ".join(shown) + (f"; … (+{more})" if more > 0 else "")


# -- erasure ------------------------------------------------------------------------
#
# An import keeps what it was given and what it planned: the files (every person's
# row: names, username, e-mail, OneRoster ID, parents), the plan (names, IDs) and maybe
# an error naming one. The erasure of a person (synapse_module.privacy) takes them out
# of each: the plan keeps its counts and their entry in the marked form, the files keep
# every other row and a disabled row of theirs under a new ID, so the import still reads
# (its codes page, applying a planned or failed one again) and knows nothing of them.

# users.csv columns kept in an erased person's row: what the row is, not who.
_KEPT_USER_COLUMNS: Final = frozenset(
    {"status", "dateLastModified", "orgSourcedIds", "role", "roles", "grades", "primaryOrg"}
)


@attrs.frozen
class ErasedPerson:
    """Who an erasure takes out of a school's imports: their Matrix ID, their OneRoster
    IDs in the school's files, and the names the imports knew them by."""

    user_id: str
    source_ids: frozenset[str]
    names: frozenset[str]


@attrs.frozen
class ImportBlobs:
    """The parts of an import that may name people, as stored (decoded JSON)."""

    files: dict[str, str]
    plan: dict[str, Any]
    error: dict[str, Any] | None


def names_in_plan(plan: dict[str, Any], person: ErasedPerson) -> set[str]:
    """The names the plan gives the person (their entries found by ID), so an entry
    that carries only a name (a move in a plan made before moves had IDs) is found too."""
    found: set[str] = set()
    for entry in plan.get("add", []) + plan.get("move", []):
        if entry.get("source_id") in person.source_ids:
            found.add(str(entry.get("display_name", "")))
    for entry in plan.get("remove", []):
        if entry.get("user_id") == person.user_id:
            found.add(str(entry.get("display_name", "")))
    for entry in plan.get("rename", []):
        if entry.get("user_id") == person.user_id:
            found.update((str(entry.get("from", "")), str(entry.get("to", ""))))
    return found - {""}


def erase_from_import(blobs: ImportBlobs, person: ErasedPerson, marker: str) -> ImportBlobs | None:
    """The import without the person (``None``: it does not name them)."""
    plan = erase_from_plan(blobs.plan, person, marker)
    files = erase_from_files(blobs.files, person.source_ids, marker)
    error = _replace_text(blobs.error, _needles(person), marker) if blobs.error else None
    erased = ImportBlobs(files, plan, error)
    return None if erased == blobs else erased


def erase_from_plan(plan: dict[str, Any], person: ErasedPerson, marker: str) -> dict[str, Any]:
    """Each entry of the person: every field naming them is ``marker`` (the classes and
    roles stay); the counts stay as they were."""
    names = person.names

    def theirs(entry: dict[str, Any], by_user: bool) -> bool:
        if by_user:
            return entry.get("user_id") == person.user_id
        if "source_id" in entry:
            return entry["source_id"] in person.source_ids
        return entry.get("display_name") in names

    def marked(entry: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        return {k: marker if k in fields else v for k, v in entry.items()}

    out = dict(plan)
    naming = ("source_id", "user_id", "display_name", "from", "to")
    for key, by_user in (("add", False), ("move", False), ("remove", True), ("rename", True)):
        if key in plan:
            # A move's from/to are classes; a rename's are names.
            fields = naming if key == "rename" else naming[:3]
            out[key] = [marked(e, fields) if theirs(e, by_user) else e for e in plan[key]]
    return out


def erase_from_files(
    sent: dict[str, str], source_ids: Collection[str], marker: str
) -> dict[str, str]:
    """The files as sent (name → base64) without the person: their users.csv row
    disabled with only what it is left (role, school, grades) and their names in the
    marked form; their own rows of other files (demographics) emptied; each of their
    OneRoster IDs, wherever it stands (enrollments, parents' ``agentSourcedIds``),
    replaced by a new one that means nothing. A ZIP is stored as the CSV files in it;
    a file the import never reads is dropped. Unchanged when no file names them."""
    files = decode_files(sent)
    if isinstance(files, tuple) or not source_ids:
        return sent
    if not any(sid.encode() in data for data in files.values() for sid in source_ids):
        return sent
    new_ids = {sid: f"{marker}-{secrets.token_hex(6)}" for sid in source_ids}
    return {
        name: base64.b64encode(_erase_from_csv(name, data, new_ids, marker)).decode()
        for name, data in files.items()
    }


def _erase_from_csv(name: str, data: bytes, new_ids: dict[str, str], marker: str) -> bytes:
    try:
        text = data.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        return data  # refused when the import was made: never read, kept as it was
    if not rows:
        return data
    header = [h.strip() for h in rows[0]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows[0])
    for values in rows[1:]:
        row = dict(zip(header, values, strict=False))
        own = row.get("sourcedId", "").strip() in new_ids
        if own and name == "users.csv":
            values = [_erased_user_cell(h, v, marker) for h, v in zip(header, values, strict=False)]
        elif own and name != "enrollments.csv":
            values = ["" for _ in values]  # their demographics, profile: nothing kept
        writer.writerow([_new_ids_in(v, new_ids) for v in values])
    return out.getvalue().encode("utf-8")


def _erased_user_cell(column: str, value: str, marker: str) -> str:
    if column == "sourcedId" or column in _KEPT_USER_COLUMNS:
        return value
    if column == "enabledUser":
        return "false"  # read as gone: the roster skips them, a reference to them stays valid
    if column in ("givenName", "familyName"):
        return marker
    return ""  # username, e-mail, phone, identifier, middle name, parents, password


def _new_ids_in(value: str, new_ids: dict[str, str]) -> str:
    """A cell with the person's ID (alone or in a comma-separated list) gets the new one."""
    parts = value.split(",")
    if not any(p.strip() in new_ids for p in parts):
        return value
    return ",".join(new_ids.get(p.strip(), p) for p in parts)


def _needles(person: ErasedPerson) -> set[str]:
    return {person.user_id, *person.source_ids, *person.names} - {""}


def _replace_text(value: Any, needles: set[str], marker: str) -> Any:
    """Every string in a JSON value with each needle in it replaced by ``marker``."""
    if isinstance(value, str):
        for needle in sorted(needles, key=len, reverse=True):
            value = value.replace(needle, marker)
        return value
    if isinstance(value, list):
        return [_replace_text(v, needles, marker) for v in value]
    if isinstance(value, dict):
        return {k: _replace_text(v, needles, marker) for k, v in value.items()}
    return value
