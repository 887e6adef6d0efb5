"""The roster import's plan, pure: what must change so a school matches OneRoster files.

One planner for every way in: the bot's and the CLI's import (``bridge/roster_sync.py``)
and the module's import API that the console uses (``synapse_module/imports/``). Each
reads the current state its own way (the bot through the module's API, the module from
its tables) and hands it here as plain values; the plan and the order people are added
in come from this module only.
"""

import datetime
import re
import secrets
from collections.abc import Iterable
from typing import Any

import attrs

from parta_common.oneroster import HomeroomClass, Membership, Person, Roster
from parta_common.roles import Role

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_LOCALPART_BAD = re.compile(r"[^a-z0-9._=\-]")


@attrs.frozen
class MemberChange:
    source_id: str
    display_name: str
    before: Membership | None
    after: Membership


@attrs.frozen
class SchoolPlan:
    source_id: str
    name: str
    school_id: str | None
    create_classes: tuple[str, ...]
    class_ids: dict[str, str]
    create_accounts: tuple[str, ...]
    set_members: tuple[MemberChange, ...]
    remove_members: tuple[tuple[str, str], ...]  # (user_id, display name)
    # (source_id, user_id, name before, name now): a new surname, a corrected spelling.
    renames: tuple[tuple[str, str, str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.school_id is None
            or self.create_classes
            or self.create_accounts
            or self.set_members
            or self.remove_members
            or self.renames
        )

    @property
    def new_members(self) -> tuple[MemberChange, ...]:
        return tuple(c for c in self.set_members if c.before is None)

    @property
    def moves(self) -> tuple[MemberChange, ...]:
        """People already there whose classes change."""
        return tuple(
            c for c in self.set_members if c.before and c.before.classes != c.after.classes
        )

    @property
    def other_changes(self) -> int:
        """People already there whose roles or children change (not their classes)."""
        return len(self.set_members) - len(self.new_members) - len(self.moves)


def plan_school(
    roster: Roster,
    org_id: str,
    school_id: str | None,
    class_ids: dict[str, str],
    known: dict[str, str],
    names: dict[str, str],
    current: dict[str, Membership],
) -> SchoolPlan:
    """What must change in one school (``org_id`` in the files, ``school_id`` in the
    module, ``None`` when it is still to be made).

    ``class_ids``: OneRoster class ID → the module's, for classes already imported;
    ``known``: OneRoster person ID → Matrix user ID of accounts already made;
    ``names``: the display names those accounts were made with;
    ``current``: what the module holds now for those people, in OneRoster IDs.
    """
    wanted = roster.memberships(org_id)
    return SchoolPlan(
        source_id=org_id,
        name=roster.schools[org_id].name,
        school_id=school_id,
        create_classes=tuple(
            c.source_id
            for c in roster.classes.values()
            if c.school_id == org_id and c.source_id not in class_ids
        ),
        class_ids=dict(class_ids),
        create_accounts=tuple(pid for pid in wanted if pid not in known),
        set_members=tuple(changes(roster, wanted, current)),
        remove_members=tuple(
            (known[sid], roster.people[sid].display_name if sid in roster.people else sid)
            for sid in current
            if sid not in wanted
        ),
        renames=tuple(
            (sid, known[sid], names[sid], roster.people[sid].display_name)
            for sid in wanted
            if sid in known
            and names.get(sid) is not None
            and names[sid] != roster.people[sid].display_name
        ),
    )


def batch_entry(
    change: MemberChange,
    ids: dict[str, str],
    class_ids: dict[str, str],
    account: dict[str, str] | None,
) -> dict[str, Any]:
    """One entry of ``POST .../members/batch`` for a change of the plan (``account``:
    the new account's display name and sign-in code, when it is to be made)."""
    after = change.after
    entry: dict[str, Any] = {
        "user_id": ids[change.source_id],
        "roles": sorted(r.value for r in after.roles),
        "classes": sorted(class_ids[c] for c in after.classes),
        "children": sorted(ids[c] for c in after.children if c in ids),
        "homeroom_of": sorted(class_ids[c] for c in after.homeroom_of),
    }
    if account is not None:
        entry["account"] = account
    return entry


def class_body(cls: HomeroomClass, year: str) -> dict[str, Any]:
    """The body of ``POST .../classes`` for a class of the files."""
    return {
        "grade": cls.grade,
        "letter": cls.letter,
        "year": year,
        "title": cls.title,
        "external_id": cls.source_id,
    }


def with_resends(
    roster: Roster, org_id: str, planned: Iterable[MemberChange], claimed: Iterable[str]
) -> list[MemberChange]:
    """The plan's member changes, plus the people named (``claimed``) before a restart
    whom the module took without the importer hearing it: sent again (the module knows
    their code and makes nothing twice). Staff first, parents last."""
    out = list(planned)
    changing = {c.source_id for c in out}
    wanted = roster.memberships(org_id)
    out += [
        MemberChange(sid, roster.people[sid].display_name, None, wanted[sid])
        for sid in claimed
        if sid in wanted and sid not in changing
    ]
    out.sort(key=lambda c: wave(c.after))
    return out


def changes(
    roster: Roster, wanted: dict[str, Membership], current: dict[str, Membership]
) -> list[MemberChange]:
    """Who must be set, staff first and parents last (the module checks children exist)."""
    out = []
    for pid, after in wanted.items():
        before = current.get(pid)
        if before != after:
            out.append(MemberChange(pid, roster.people[pid].display_name, before, after))
    out.sort(key=lambda c: wave(c.after))
    return out


def wave(m: Membership) -> int:
    """0 staff, 1 students, 2 parents: the order people can be added in."""
    if m.roles & {Role.ADMINISTRATOR, Role.TEACHER, Role.COORDINATOR}:
        return 0
    if Role.STUDENT in m.roles:
        return 1
    return 2


def username_for(person: Person) -> str:
    """The account name a new person gets (their OneRoster username, else their ID)."""
    base = _LOCALPART_BAD.sub("", person.username.lower()) if person.username else ""
    if not base:
        base = "u-" + _LOCALPART_BAD.sub("-", person.source_id.lower())
    return base


def sign_in_code() -> str:
    """A new printed sign-in code: 12 letters and digits that cannot be misread."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def class_titles(roster: Roster) -> dict[str, set[str]]:
    """OneRoster person ID → titles of the classes they are enrolled in."""
    titles_of: dict[str, set[str]] = {}
    for e in roster.enrollments:
        if e.class_id in roster.classes:
            titles_of.setdefault(e.user_id, set()).add(roster.classes[e.class_id].title)
    return titles_of


def children_of(roster: Roster) -> dict[str, frozenset[str]]:
    """OneRoster parent ID → their children's IDs, over every school in the files."""
    out: dict[str, frozenset[str]] = {}
    for org in roster.schools:
        for pid, m in roster.memberships(org).items():
            if m.children:
                out[pid] = out.get(pid, frozenset()) | m.children
    return out


def card_classes(
    source_id: str, titles_of: dict[str, set[str]], children: dict[str, frozenset[str]]
) -> str:
    """The classes printed on a person's sign-in card: a parent's name their children's
    (codes are handed out by class)."""
    titles = set(titles_of.get(source_id, ()))
    for child in children.get(source_id, ()):
        titles |= titles_of.get(child, set())
    return ", ".join(sorted(titles))


def school_year(today: datetime.date | None = None) -> str:
    """«2026/27» from September, the previous year's until then."""
    today = today or datetime.date.today()
    start = today.year if today.month >= 9 else today.year - 1
    return f"{start}/{(start + 1) % 100:02d}"
