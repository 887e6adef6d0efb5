"""Pure decisions of the module's roster import: which files, which school in them, what
the plan says to a person, and what each batch entry is. The plan itself is
``parta_common.roster_plan`` — the same planner the bot's and the CLI's import use."""

import base64
import binascii
from typing import Any, Final

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
