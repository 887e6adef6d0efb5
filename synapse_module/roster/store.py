"""SQL for the roster: plain transaction functions, run through ``Store.run``.

Same SQL on SQLite and PostgreSQL: ``?`` placeholders, ``ON CONFLICT``, booleans as
``BOOLEAN`` (SQLite stores 0/1; read back through ``bool()``).

Longer than 600 lines because every statement on the roster's tables is here: no other
file reads them (``tests/test_layout.py``), other features ask ``RosterCore``.
"""

import json
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
from synapse.module_api import LoggingTransaction

from parta_common.roles import Role

from .. import audit
from ..store import rows_as_dicts
from .rules import Person, RoomKind, SchoolPolicy, SchoolRoom, Standing, unit_chain, units_read


def in_chunks(user_ids: Iterable[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """``user_ids`` sorted, in chunks for ``IN (…)``: (chunk, its ``?, ?, …`` marks)."""
    ids = sorted(set(user_ids))
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        yield chunk, ",".join("?" * len(chunk))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


@attrs.frozen
class School:
    school_id: str
    name: str
    short_name: str | None
    address: str | None
    contacts: dict[str, Any]
    logo_mxc: str | None
    timezone: str
    unit_id: str | None
    external_id: str | None
    policy: SchoolPolicy
    created_ts: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "School":
        return cls(
            school_id=row["school_id"],
            name=row["name"],
            short_name=row["short_name"],
            address=row["address"],
            contacts=json.loads(row["contacts"]),
            logo_mxc=row["logo_mxc"],
            timezone=row["timezone"],
            unit_id=row["unit_id"],
            external_id=row["external_id"],
            policy=SchoolPolicy.from_json(json.loads(row["policy"])),
            created_ts=int(row["created_ts"]),
        )


@attrs.frozen
class SchoolClass:
    class_id: str
    school_id: str
    grade: int
    letter: str
    year: str
    title: str
    homeroom_user_id: str | None
    external_id: str | None
    archived: bool
    created_ts: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "SchoolClass":
        return cls(
            class_id=row["class_id"],
            school_id=row["school_id"],
            grade=int(row["grade"]),
            letter=row["letter"],
            year=row["year"],
            title=row["title"],
            homeroom_user_id=row["homeroom_user_id"],
            external_id=row["external_id"],
            archived=bool(row["archived"]),
            created_ts=int(row["created_ts"]),
        )


@attrs.frozen
class Invite:
    code: str
    school_id: str
    role: Role
    class_id: str | None
    child_user_id: str | None
    created_by: str
    created_ts: int
    expires_ts: int
    max_uses: int
    uses: int
    revoked: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Invite":
        return cls(
            code=row["code"],
            school_id=row["school_id"],
            role=Role(row["role"]),
            class_id=row["class_id"],
            child_user_id=row["child_user_id"],
            created_by=row["created_by"],
            created_ts=int(row["created_ts"]),
            expires_ts=int(row["expires_ts"]),
            max_uses=int(row["max_uses"]),
            uses=int(row["uses"]),
            revoked=bool(row["revoked"]),
        )


# -- reads --------------------------------------------------------------------


_ROOM_SELECT = (
    "SELECT r.room_id, r.kind, r.school_id, r.class_id, r.unit_id, c.archived"
    " FROM parta_rooms r LEFT JOIN parta_classes c ON c.class_id = r.class_id"
)


def _room(row: tuple[Any, ...]) -> SchoolRoom:
    return SchoolRoom(
        room_id=row[0],
        kind=RoomKind(row[1]),
        school_id=row[2],
        class_id=row[3],
        unit_id=row[4],
        archived=bool(row[5]) if row[5] is not None else False,
    )


def get_room_txn(txn: LoggingTransaction, room_id: str) -> SchoolRoom | None:
    txn.execute(f"{_ROOM_SELECT} WHERE r.room_id = ?", (room_id,))
    row = txn.fetchone()
    return None if row is None else _room(row)


def school_rooms_txn(txn: LoggingTransaction, school_id: str) -> list[SchoolRoom]:
    txn.execute(f"{_ROOM_SELECT} WHERE r.school_id = ?", (school_id,))
    return [_room(r) for r in txn.fetchall()]


def get_person_txn(txn: LoggingTransaction, user_id: str) -> Person:
    return get_people_txn(txn, [user_id])[user_id]


def get_people_txn(txn: LoggingTransaction, user_ids: Iterable[str]) -> dict[str, Person]:
    """Everyone's standing in every school, for many people in a few queries."""
    ids = sorted(set(user_ids))
    roles: dict[tuple[str, str], set[Role]] = defaultdict(set)
    classes: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(
        lambda: {"teaches": set(), "learns_in": set(), "homeroom_of": set()}
    )
    children: dict[tuple[str, str], set[str]] = defaultdict(set)
    children_classes: dict[tuple[str, str], set[str]] = defaultdict(set)
    coordinates: dict[str, set[str]] = defaultdict(set)
    admin_units: dict[str, set[str]] = defaultdict(set)
    for chunk, marks in in_chunks(ids):
        txn.execute(
            f"SELECT school_id, user_id, role FROM parta_school_roles WHERE user_id IN ({marks})",
            chunk,
        )
        for school_id, user_id, role in txn.fetchall():
            roles[(user_id, school_id)].add(Role(role))
        txn.execute(
            "SELECT c.school_id, m.user_id, m.role, m.class_id FROM parta_class_members m"
            f" JOIN parta_classes c ON c.class_id = m.class_id WHERE m.user_id IN ({marks})",
            chunk,
        )
        for school_id, user_id, role, class_id in txn.fetchall():
            key = "learns_in" if role == "student" else "teaches"
            classes[(user_id, school_id)][key].add(class_id)
        txn.execute(
            "SELECT school_id, homeroom_user_id, class_id FROM parta_classes"
            f" WHERE homeroom_user_id IN ({marks})",
            chunk,
        )
        for school_id, user_id, class_id in txn.fetchall():
            classes[(user_id, school_id)]["homeroom_of"].add(class_id)
        txn.execute(
            "SELECT g.school_id, g.parent_user_id, g.child_user_id, m.class_id"
            " FROM parta_guardians g LEFT JOIN parta_class_members m"
            " ON m.user_id = g.child_user_id AND m.role = 'student'"
            f" WHERE g.parent_user_id IN ({marks})",
            chunk,
        )
        for school_id, parent, child, class_id in txn.fetchall():
            children[(parent, school_id)].add(child)
            if class_id is not None:
                children_classes[(parent, school_id)].add(class_id)
        txn.execute(
            f"SELECT unit_id, user_id FROM parta_unit_coordinators WHERE user_id IN ({marks})",
            chunk,
        )
        for unit_id, user_id in txn.fetchall():
            coordinates[user_id].add(unit_id)
        txn.execute(
            "SELECT r.user_id, s.unit_id FROM parta_school_roles r"
            " JOIN parta_schools s ON s.school_id = r.school_id"
            f" WHERE r.role = 'administrator' AND s.unit_id IS NOT NULL AND r.user_id IN ({marks})",
            chunk,
        )
        for user_id, unit_id in txn.fetchall():
            admin_units[user_id].add(unit_id)

    schools: dict[str, dict[str, Standing]] = defaultdict(dict)
    keys = set(roles) | set(classes) | set(children)
    for user_id, school_id in keys:
        c = classes.get((user_id, school_id), {})
        schools[user_id][school_id] = Standing(
            school_id=school_id,
            roles=frozenset(roles.get((user_id, school_id), ())),
            teaches=frozenset(c.get("teaches", set())),
            learns_in=frozenset(c.get("learns_in", set())),
            homeroom_of=frozenset(c.get("homeroom_of", set())),
            children=frozenset(children.get((user_id, school_id), ())),
            children_classes=frozenset(children_classes.get((user_id, school_id), ())),
        )
    # The unit tree is small (a region's municipalities): read it only when needed.
    parents = unit_parents_txn(txn) if coordinates or admin_units else {}
    return {
        u: Person(
            u,
            dict(schools.get(u, {})),
            frozenset(coordinates.get(u, ())),
            units_read(parents, coordinates.get(u, ()), admin_units.get(u, ())),
        )
        for u in ids
    }


def school_user_ids_txn(
    txn: LoggingTransaction, school_id: str, roles: Iterable[Role] | None = None
) -> list[str]:
    if roles is None:
        txn.execute(
            "SELECT DISTINCT user_id FROM parta_school_roles WHERE school_id = ?", (school_id,)
        )
    else:
        wanted = [r.value for r in roles]
        marks = ",".join("?" * len(wanted))
        txn.execute(
            "SELECT DISTINCT user_id FROM parta_school_roles"
            f" WHERE school_id = ? AND role IN ({marks})",
            (school_id, *wanted),
        )
    return sorted(r[0] for r in txn.fetchall())


def get_school_txn(txn: LoggingTransaction, school_id: str) -> School | None:
    txn.execute("SELECT * FROM parta_schools WHERE school_id = ?", (school_id,))
    rows = rows_as_dicts(txn)
    return School.from_row(rows[0]) if rows else None


def get_school_by_external_txn(txn: LoggingTransaction, external_id: str) -> School | None:
    txn.execute("SELECT * FROM parta_schools WHERE external_id = ?", (external_id,))
    rows = rows_as_dicts(txn)
    return School.from_row(rows[0]) if rows else None


def list_schools_txn(txn: LoggingTransaction, school_ids: list[str] | None) -> list[School]:
    if school_ids is None:
        txn.execute("SELECT * FROM parta_schools ORDER BY name")
    elif not school_ids:
        return []
    else:
        marks = ",".join("?" * len(school_ids))
        txn.execute(
            f"SELECT * FROM parta_schools WHERE school_id IN ({marks}) ORDER BY name",
            school_ids,
        )
    return [School.from_row(r) for r in rows_as_dicts(txn)]


def get_class_txn(txn: LoggingTransaction, class_id: str) -> SchoolClass | None:
    txn.execute("SELECT * FROM parta_classes WHERE class_id = ?", (class_id,))
    rows = rows_as_dicts(txn)
    return SchoolClass.from_row(rows[0]) if rows else None


def list_classes_txn(
    txn: LoggingTransaction, school_id: str, year: str | None, include_archived: bool
) -> list[SchoolClass]:
    sql = "SELECT * FROM parta_classes WHERE school_id = ?"
    args: list[Any] = [school_id]
    if year is not None:
        sql += " AND year = ?"
        args.append(year)
    if not include_archived:
        sql += " AND archived = ?"
        args.append(False)
    txn.execute(sql + " ORDER BY year, grade, letter", args)
    return [SchoolClass.from_row(r) for r in rows_as_dicts(txn)]


def class_members_txn(txn: LoggingTransaction, class_id: str) -> list[tuple[str, str]]:
    txn.execute(
        "SELECT user_id, role FROM parta_class_members WHERE class_id = ? ORDER BY role, user_id",
        (class_id,),
    )
    return [(r[0], r[1]) for r in txn.fetchall()]


def rooms_of_class_txn(txn: LoggingTransaction, class_id: str) -> dict[str, str]:
    txn.execute("SELECT kind, room_id FROM parta_rooms WHERE class_id = ?", (class_id,))
    return {r[0]: r[1] for r in txn.fetchall()}


def rooms_of_school_txn(txn: LoggingTransaction, school_id: str) -> dict[str, str]:
    txn.execute(
        "SELECT kind, room_id FROM parta_rooms WHERE school_id = ? AND class_id IS NULL",
        (school_id,),
    )
    return {r[0]: r[1] for r in txn.fetchall()}


def get_invite_txn(txn: LoggingTransaction, code: str) -> Invite | None:
    txn.execute("SELECT * FROM parta_invites WHERE code = ?", (code,))
    rows = rows_as_dicts(txn)
    return Invite.from_row(rows[0]) if rows else None


def list_invites_txn(
    txn: LoggingTransaction, school_id: str, created_by: str | None
) -> list[Invite]:
    if created_by is None:
        txn.execute(
            "SELECT * FROM parta_invites WHERE school_id = ? ORDER BY created_ts DESC",
            (school_id,),
        )
    else:
        txn.execute(
            "SELECT * FROM parta_invites WHERE school_id = ? AND created_by = ?"
            " ORDER BY created_ts DESC",
            (school_id, created_by),
        )
    return [Invite.from_row(r) for r in rows_as_dicts(txn)]


# -- writes -------------------------------------------------------------------


def audit_txn(
    txn: LoggingTransaction,
    ts: int,
    actor: str,
    action: str,
    school_id: str | None,
    target: str | None,
    details: dict[str, Any],
) -> None:
    """Append to the audit log (hash-chained; the one writer is :mod:`synapse_module.audit`)."""
    audit.append_txn(txn, ts, actor, action, school_id, target, details)


def insert_school_txn(
    txn: LoggingTransaction, school: School, rooms: dict[RoomKind, str], actor: str
) -> None:
    txn.execute(
        "INSERT INTO parta_schools (school_id, name, short_name, address, contacts, logo_mxc,"
        " timezone, unit_id, external_id, policy, created_ts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            school.school_id,
            school.name,
            school.short_name,
            school.address,
            json.dumps(school.contacts, ensure_ascii=False),
            school.logo_mxc,
            school.timezone,
            school.unit_id,
            school.external_id,
            json.dumps(school.policy.to_json()),
            school.created_ts,
        ),
    )
    for kind, room_id in rooms.items():
        txn.execute(
            "INSERT INTO parta_rooms (room_id, school_id, class_id, unit_id, kind)"
            " VALUES (?, ?, NULL, NULL, ?)",
            (room_id, school.school_id, kind.value),
        )
    audit_txn(
        txn,
        school.created_ts,
        actor,
        "school.create",
        school.school_id,
        None,
        {"name": school.name},
    )


_SCHOOL_COLUMNS = ("name", "short_name", "address", "contacts", "logo_mxc", "timezone", "policy")


def update_school_txn(
    txn: LoggingTransaction, school: School, changed: frozenset[str], actor: str, ts: int
) -> None:
    """Write only the ``changed`` columns of ``school``: two administrators editing
    different fields at once both keep their edit. Run READ COMMITTED, so concurrent
    edits of the one row queue on its lock instead of failing to serialize."""
    values = {
        "name": school.name,
        "short_name": school.short_name,
        "address": school.address,
        "contacts": json.dumps(school.contacts, ensure_ascii=False),
        "logo_mxc": school.logo_mxc,
        "timezone": school.timezone,
        "policy": json.dumps(school.policy.to_json()),
    }
    columns = [c for c in _SCHOOL_COLUMNS if c in changed]
    if columns:
        txn.execute(
            f"UPDATE parta_schools SET {', '.join(f'{c} = ?' for c in columns)}"
            " WHERE school_id = ?",
            (*(values[c] for c in columns), school.school_id),
        )
    audit_txn(txn, ts, actor, "school.update", school.school_id, None, {"fields": columns})


def insert_class_txn(
    txn: LoggingTransaction, cls: SchoolClass, rooms: dict[RoomKind, str], actor: str
) -> None:
    txn.execute(
        "INSERT INTO parta_classes (class_id, school_id, grade, letter, year, title,"
        " homeroom_user_id, external_id, archived, created_ts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            cls.class_id,
            cls.school_id,
            cls.grade,
            cls.letter,
            cls.year,
            cls.title,
            cls.homeroom_user_id,
            cls.external_id,
            False,
            cls.created_ts,
        ),
    )
    for kind, room_id in rooms.items():
        txn.execute(
            "INSERT INTO parta_rooms (room_id, school_id, class_id, unit_id, kind)"
            " VALUES (?, ?, ?, NULL, ?)",
            (room_id, cls.school_id, cls.class_id, kind.value),
        )
    audit_txn(
        txn,
        cls.created_ts,
        actor,
        "class.create",
        cls.school_id,
        cls.class_id,
        {"title": cls.title},
    )


def archive_class_txn(
    txn: LoggingTransaction, school_id: str, class_id: str, actor: str, ts: int
) -> None:
    txn.execute("UPDATE parta_classes SET archived = ? WHERE class_id = ?", (True, class_id))
    audit_txn(txn, ts, actor, "class.archive", school_id, class_id, {})


def put_member_txn(
    txn: LoggingTransaction,
    school_id: str,
    user_id: str,
    roles: Iterable[Role],
    classes: dict[str, Role],
    children: Iterable[str],
    homeroom_of: Iterable[str],
    actor: str,
    ts: int,
) -> None:
    """Replace what ``user_id`` is in this school: roles, classes, children, homerooms."""
    txn.execute(
        "DELETE FROM parta_school_roles WHERE school_id = ? AND user_id = ?", (school_id, user_id)
    )
    for role in sorted(set(roles)):
        txn.execute(
            "INSERT INTO parta_school_roles (school_id, user_id, role) VALUES (?, ?, ?)",
            (school_id, user_id, role.value),
        )
    txn.execute(
        "DELETE FROM parta_class_members WHERE user_id = ? AND class_id IN"
        " (SELECT class_id FROM parta_classes WHERE school_id = ?)",
        (user_id, school_id),
    )
    for class_id, role in sorted(classes.items()):
        txn.execute(
            "INSERT INTO parta_class_members (class_id, user_id, role) VALUES (?, ?, ?)",
            (class_id, user_id, role.value),
        )
    txn.execute(
        "DELETE FROM parta_guardians WHERE school_id = ? AND parent_user_id = ?",
        (school_id, user_id),
    )
    for child in sorted(set(children)):
        txn.execute(
            "INSERT INTO parta_guardians (school_id, parent_user_id, child_user_id)"
            " VALUES (?, ?, ?)",
            (school_id, user_id, child),
        )
    txn.execute(
        "UPDATE parta_classes SET homeroom_user_id = NULL"
        " WHERE school_id = ? AND homeroom_user_id = ?",
        (school_id, user_id),
    )
    for class_id in sorted(set(homeroom_of)):
        txn.execute(
            "UPDATE parta_classes SET homeroom_user_id = ? WHERE class_id = ? AND school_id = ?",
            (user_id, class_id, school_id),
        )
    audit_txn(
        txn,
        ts,
        actor,
        "member.put",
        school_id,
        user_id,
        {
            "roles": sorted(r.value for r in roles),
            "classes": {k: v.value for k, v in sorted(classes.items())},
            "children": sorted(children),
            "homeroom_of": sorted(homeroom_of),
        },
    )


def remove_member_txn(
    txn: LoggingTransaction, school_id: str, user_id: str, actor: str, ts: int
) -> None:
    put_member_txn(txn, school_id, user_id, [], {}, [], [], actor, ts)
    # Their children lose this guardian too; as a child, their guardians lose them.
    txn.execute(
        "DELETE FROM parta_guardians WHERE school_id = ? AND child_user_id = ?",
        (school_id, user_id),
    )
    audit_txn(txn, ts, actor, "member.remove", school_id, user_id, {})


def parents_of_txn(txn: LoggingTransaction, school_id: str, child: str) -> list[str]:
    txn.execute(
        "SELECT parent_user_id FROM parta_guardians WHERE school_id = ? AND child_user_id = ?",
        (school_id, child),
    )
    return [r[0] for r in txn.fetchall()]


def insert_invite_txn(txn: LoggingTransaction, invite: Invite) -> None:
    txn.execute(
        "INSERT INTO parta_invites (code, school_id, role, class_id, child_user_id, created_by,"
        " created_ts, expires_ts, max_uses, uses, revoked)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            invite.code,
            invite.school_id,
            invite.role.value,
            invite.class_id,
            invite.child_user_id,
            invite.created_by,
            invite.created_ts,
            invite.expires_ts,
            invite.max_uses,
            0,
            False,
        ),
    )
    audit_txn(
        txn,
        invite.created_ts,
        invite.created_by,
        "invite.create",
        invite.school_id,
        invite.code[:4] + "…",
        {"role": invite.role.value, "class_id": invite.class_id},
    )


def revoke_invite_txn(txn: LoggingTransaction, code: str, actor: str, ts: int) -> None:
    txn.execute("UPDATE parta_invites SET revoked = ? WHERE code = ?", (True, code))
    audit_txn(txn, ts, actor, "invite.revoke", None, code[:4] + "…", {})


def claim_invite_txn(txn: LoggingTransaction, code: str, user_id: str, now: int) -> str | None:
    """Take one use of ``code`` for ``user_id``; the reason (a key) when it can't be."""
    txn.execute("SELECT * FROM parta_invites WHERE code = ?", (code,))
    rows = rows_as_dicts(txn)
    if not rows:
        return "unknown"
    invite = Invite.from_row(rows[0])
    txn.execute("SELECT 1 FROM parta_invite_uses WHERE code = ? AND user_id = ?", (code, user_id))
    if txn.fetchone() is not None:
        return None  # redeeming twice is harmless and uses nothing
    if invite.revoked:
        return "revoked"
    if invite.expires_ts <= now:
        return "expired"
    # A guarded update, so two people racing for the last use cannot both win.
    txn.execute(
        "UPDATE parta_invites SET uses = uses + 1 WHERE code = ? AND uses < max_uses",
        (code,),
    )
    if txn.rowcount != 1:
        return "used_up"
    txn.execute(
        "INSERT INTO parta_invite_uses (code, user_id, ts) VALUES (?, ?, ?)", (code, user_id, now)
    )
    return None


def set_password_txn(txn: LoggingTransaction, user_id: str, password_hash: str) -> None:
    txn.execute(
        "INSERT INTO parta_passwords (user_id, password_hash) VALUES (?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash",
        (user_id, password_hash),
    )


def get_password_txn(txn: LoggingTransaction, user_id: str) -> str | None:
    txn.execute("SELECT password_hash FROM parta_passwords WHERE user_id = ?", (user_id,))
    row = txn.fetchone()
    return str(row[0]) if row else None


def put_sign_in_code_txn(
    txn: LoggingTransaction, user_id: str, code_hash: str, actor: str, now: int, expires: int
) -> bool:
    """Record the code of an account an import makes; False if the account is already
    recorded with another code (someone else's import, or a different person)."""
    txn.execute("SELECT code_hash FROM parta_sign_in_codes WHERE user_id = ?", (user_id,))
    row = txn.fetchone()
    if row is not None:
        return str(row[0]) == code_hash
    txn.execute(
        "INSERT INTO parta_sign_in_codes"
        " (user_id, code_hash, created_by, created_ts, expires_ts, signed_in_ts)"
        " VALUES (?, ?, ?, ?, ?, NULL)",
        (user_id, code_hash, actor, now, expires),
    )
    return True


def forget_sign_in_code_txn(txn: LoggingTransaction, user_id: str, code_hash: str) -> None:
    """Take back a code recorded for an account that could not be made (the name was
    taken meanwhile): nothing is left of the attempt."""
    txn.execute(
        "DELETE FROM parta_sign_in_codes WHERE user_id = ? AND code_hash = ?",
        (user_id, code_hash),
    )


def import_accounts_txn(
    txn: LoggingTransaction, user_ids: Iterable[str]
) -> tuple[dict[str, str], set[str]]:
    """For an import's new people, in a few queries: the code hashes already recorded
    (user → hash) and which accounts Synapse already has."""
    codes: dict[str, str] = {}
    existing: set[str] = set()
    for chunk, marks in in_chunks(user_ids):
        txn.execute(
            f"SELECT user_id, code_hash FROM parta_sign_in_codes WHERE user_id IN ({marks})",
            chunk,
        )
        codes.update((str(u), str(h)) for u, h in txn.fetchall())
        txn.execute(f"SELECT name FROM users WHERE name IN ({marks})", chunk)
        existing.update(str(u) for (u,) in txn.fetchall())
    return codes, existing


def put_sign_in_codes_txn(
    txn: LoggingTransaction,
    accounts: Iterable[tuple[str, str]],
    actor: str,
    now: int,
    expires: int,
) -> list[str]:
    """:func:`put_sign_in_code_txn` for many (user, code hash) at once; the users
    already recorded with another code."""
    return [
        user_id
        for user_id, code_hash in accounts
        if not put_sign_in_code_txn(txn, user_id, code_hash, actor, now, expires)
    ]


def replace_sign_in_code_txn(
    txn: LoggingTransaction,
    user_id: str,
    code_hash: str,
    actor: str,
    school_id: str | None,
    now: int,
    expires: int,
    details: dict[str, Any],
) -> None:
    """The account's code replaced (the old one stops working), audited; ``school_id``
    ``None`` for a unit's coordinator (``details`` names the unit)."""
    txn.execute(
        "UPDATE parta_sign_in_codes SET code_hash = ?, created_by = ?, created_ts = ?,"
        " expires_ts = ? WHERE user_id = ?",
        (code_hash, actor, now, expires, user_id),
    )
    audit_txn(txn, now, actor, "new_sign_in_code", school_id, user_id, details)


def get_sign_in_code_txn(
    txn: LoggingTransaction, user_id: str
) -> tuple[str, int, int | None] | None:
    """(code hash, expiry, first sign-in) of an imported account, or None."""
    txn.execute(
        "SELECT code_hash, expires_ts, signed_in_ts FROM parta_sign_in_codes WHERE user_id = ?",
        (user_id,),
    )
    row = txn.fetchone()
    return None if row is None else (str(row[0]), int(row[1]), row[2])


def made_by_parta_txn(txn: LoggingTransaction, user_id: str) -> bool:
    """Whether Parta made the account, for the schools: an import or a school or unit by
    name made it with a sign-in code (``parta_sign_in_codes``, recorded before the account
    is), or the invitation page registered it (``parta_passwords``). Both rows are the
    account's (privacy's ``ACCOUNT_ROWS``): they go only with the account, so they still
    say it when the last school erases the person. An account made any other way (the
    person's own registration, Synapse's admin API, an appservice) has neither."""
    txn.execute("SELECT 1 FROM parta_sign_in_codes WHERE user_id = ?", (user_id,))
    if txn.fetchone() is not None:
        return True
    txn.execute("SELECT 1 FROM parta_passwords WHERE user_id = ?", (user_id,))
    return txn.fetchone() is not None


def own_password_txn(txn: LoggingTransaction, user_id: str) -> bool:
    """Whether the person has set a password of their own (Synapse's or the module's)."""
    txn.execute("SELECT password_hash FROM users WHERE name = ?", (user_id,))
    row = txn.fetchone()
    if row is not None and row[0]:
        return True
    txn.execute("SELECT 1 FROM parta_passwords WHERE user_id = ?", (user_id,))
    return txn.fetchone() is not None


def not_signed_in_txn(txn: LoggingTransaction, user_ids: Iterable[str]) -> set[str]:
    """Of ``user_ids``, the imported accounts nobody has signed in to yet."""
    out: set[str] = set()
    for chunk, marks in in_chunks(user_ids):
        txn.execute(
            "SELECT user_id FROM parta_sign_in_codes"
            f" WHERE signed_in_ts IS NULL AND user_id IN ({marks})",
            chunk,
        )
        out.update(str(r[0]) for r in txn.fetchall())
    return out


def display_names_txn(txn: LoggingTransaction, user_ids: Iterable[str]) -> dict[str, str]:
    """Synapse's profile names of local people (``profiles``), for the members list."""
    ids = list(user_ids)
    out: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        txn.execute(
            f"SELECT full_user_id, displayname FROM profiles WHERE full_user_id IN ({marks})",
            chunk,
        )
        out.update((str(r[0]), str(r[1])) for r in txn.fetchall() if r[1])
    return out


def mark_signed_in_txn(txn: LoggingTransaction, user_id: str, now: int) -> None:
    """The person's rooms are all joined: from now on the roster moves them directly."""
    txn.execute(
        "UPDATE parta_sign_in_codes SET signed_in_ts = ?"
        " WHERE user_id = ? AND signed_in_ts IS NULL",
        (now, user_id),
    )


def start_sign_in_txn(txn: LoggingTransaction, user_id: str, now: int) -> bool:
    """Journal a first sign-in whose rooms are to be joined; False if there is nothing
    to join (not an imported account, or its rooms are joined already)."""
    txn.execute(
        "UPDATE parta_sign_in_codes SET first_sign_in_ts = ?"
        " WHERE user_id = ? AND signed_in_ts IS NULL AND first_sign_in_ts IS NULL",
        (now, user_id),
    )
    txn.execute(
        "SELECT 1 FROM parta_sign_in_codes WHERE user_id = ? AND signed_in_ts IS NULL",
        (user_id,),
    )
    return txn.fetchone() is not None


def unfinished_sign_ins_txn(txn: LoggingTransaction) -> list[str]:
    """People who signed in but whose rooms were not all joined (a restart came between),
    oldest first."""
    txn.execute(
        "SELECT user_id FROM parta_sign_in_codes"
        " WHERE signed_in_ts IS NULL AND first_sign_in_ts IS NOT NULL"
        " ORDER BY first_sign_in_ts, user_id"
    )
    return [str(r[0]) for r in txn.fetchall()]


def insert_unit_txn(
    txn: LoggingTransaction,
    unit_id: str,
    kind: str,
    name: str,
    parent_id: str | None,
    rooms: dict[RoomKind, str],
    ts: int,
    actor: str,
) -> None:
    """A unit and its rooms (its coordinators' space and announcement room)."""
    txn.execute(
        "INSERT INTO parta_units (unit_id, kind, name, parent_id, space_room_id, created_ts)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (unit_id, kind, name, parent_id, rooms[RoomKind.UNIT_SPACE], ts),
    )
    insert_unit_rooms_txn(txn, unit_id, rooms)
    audit_txn(txn, ts, actor, "unit.create", None, unit_id, {"name": name, "kind": kind})


def insert_unit_rooms_txn(
    txn: LoggingTransaction, unit_id: str, rooms: dict[RoomKind, str]
) -> None:
    txn.executemany(
        "INSERT INTO parta_rooms (room_id, school_id, class_id, unit_id, kind)"
        " VALUES (?, NULL, NULL, ?, ?)",
        [(room_id, unit_id, kind.value) for kind, room_id in rooms.items()],
    )


def get_unit_txn(txn: LoggingTransaction, unit_id: str) -> dict[str, Any] | None:
    txn.execute("SELECT * FROM parta_units WHERE unit_id = ?", (unit_id,))
    rows = rows_as_dicts(txn)
    return rows[0] if rows else None


def list_units_txn(txn: LoggingTransaction, unit_ids: Iterable[str] | None) -> list[dict[str, Any]]:
    """Units (all of them when ``unit_ids`` is None) with their coordinators, rooms and
    schools, by kind (regions first) and name."""
    if unit_ids is None:
        txn.execute("SELECT * FROM parta_units")
        units = rows_as_dicts(txn)
    else:
        ids = sorted(set(unit_ids))
        units = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            txn.execute(f"SELECT * FROM parta_units WHERE unit_id IN ({marks})", chunk)
            units.extend(rows_as_dicts(txn))
    by_id = {u["unit_id"]: {**u, "coordinators": [], "schools": [], "rooms": {}} for u in units}
    if not by_id:
        return []
    marks = ",".join("?" * len(by_id))
    keys = list(by_id)
    txn.execute(
        f"SELECT unit_id, user_id FROM parta_unit_coordinators WHERE unit_id IN ({marks})"
        " ORDER BY user_id",
        keys,
    )
    for unit_id, user_id in txn.fetchall():
        by_id[unit_id]["coordinators"].append(user_id)
    txn.execute(
        f"SELECT unit_id, school_id, name FROM parta_schools WHERE unit_id IN ({marks})"
        " ORDER BY name, school_id",
        keys,
    )
    for unit_id, school_id, name in txn.fetchall():
        by_id[unit_id]["schools"].append({"school_id": school_id, "name": name})
    txn.execute(f"SELECT unit_id, kind, room_id FROM parta_rooms WHERE unit_id IN ({marks})", keys)
    for unit_id, kind, room_id in txn.fetchall():
        by_id[unit_id]["rooms"][kind] = room_id
    order = {"region": 0, "municipality": 1}
    return sorted(by_id.values(), key=lambda u: (order.get(u["kind"], 2), u["name"], u["unit_id"]))


def unit_place_txn(
    txn: LoggingTransaction, unit_id: str
) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """The unit's row and its chain (itself, then the units above it), or None."""
    unit = get_unit_txn(txn, unit_id)
    if unit is None:
        return None
    return unit, unit_chain(unit_parents_txn(txn), unit_id)


def unit_parents_txn(txn: LoggingTransaction) -> dict[str, str | None]:
    """Every unit's parent: the whole tree (a few hundred rows for a region)."""
    txn.execute("SELECT unit_id, parent_id FROM parta_units")
    return {str(r[0]): (str(r[1]) if r[1] is not None else None) for r in txn.fetchall()}


def unit_rooms_txn(txn: LoggingTransaction, unit_ids: Iterable[str]) -> list[SchoolRoom]:
    ids = sorted(set(unit_ids))
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    txn.execute(f"{_ROOM_SELECT} WHERE r.unit_id IN ({marks})", ids)
    return [_room(r) for r in txn.fetchall()]


def unit_coordinators_txn(txn: LoggingTransaction, unit_id: str) -> list[str]:
    txn.execute(
        "SELECT user_id FROM parta_unit_coordinators WHERE unit_id = ? ORDER BY user_id",
        (unit_id,),
    )
    return [str(r[0]) for r in txn.fetchall()]


def add_coordinator_txn(
    txn: LoggingTransaction, unit_id: str, user_id: str, actor: str, ts: int
) -> None:
    txn.execute(
        "INSERT INTO parta_unit_coordinators (unit_id, user_id) VALUES (?, ?)"
        " ON CONFLICT (unit_id, user_id) DO NOTHING",
        (unit_id, user_id),
    )
    audit_txn(txn, ts, actor, "unit.coordinator", None, user_id, {"unit_id": unit_id})


def remove_coordinator_txn(
    txn: LoggingTransaction, unit_id: str, user_id: str, actor: str, ts: int
) -> bool:
    txn.execute(
        "DELETE FROM parta_unit_coordinators WHERE unit_id = ? AND user_id = ?",
        (unit_id, user_id),
    )
    if txn.rowcount <= 0:
        return False
    audit_txn(txn, ts, actor, "unit.coordinator_removed", None, user_id, {"unit_id": unit_id})
    return True


def units_under_txn(txn: LoggingTransaction, unit_ids: Iterable[str]) -> set[str]:
    """The units and every unit below them (a region covers its municipalities)."""
    found = set(unit_ids)
    frontier = set(found)
    while frontier:
        marks = ",".join("?" * len(frontier))
        txn.execute(f"SELECT unit_id FROM parta_units WHERE parent_id IN ({marks})", list(frontier))
        frontier = {r[0] for r in txn.fetchall()} - found
        found |= frontier
    return found


def school_ids_in_units_txn(txn: LoggingTransaction, unit_ids: Iterable[str]) -> list[str]:
    ids = sorted(set(unit_ids))
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    txn.execute(f"SELECT school_id FROM parta_schools WHERE unit_id IN ({marks})", ids)
    return sorted(str(r[0]) for r in txn.fetchall())


def purge_spent_invites_txn(txn: LoggingTransaction, before: int) -> int:
    """Delete invitation codes that expired, or were revoked and made, before ``before``
    (ms); their uses stay (who joined with which code). The count deleted."""
    txn.execute(
        "DELETE FROM parta_invites WHERE expires_ts < ? OR (revoked AND created_ts < ?)",
        (before, before),
    )
    return max(txn.rowcount, 0)


# -- what statistics ask (through RosterCore, issue 11) -------------------------------


def school_people_txn(
    txn: LoggingTransaction, school_ids: Iterable[str]
) -> list[tuple[str, str, str, bool]]:
    """Everyone on these schools' rosters: school, role, user, and whether they have
    taken up their account (False: an import made it and nobody has signed in yet)."""
    out: list[tuple[str, str, str, bool]] = []
    for chunk, marks in in_chunks(school_ids):
        txn.execute(
            "SELECT r.school_id, r.role, r.user_id,"
            " c.user_id IS NULL OR c.first_sign_in_ts IS NOT NULL OR c.signed_in_ts IS NOT NULL"
            " FROM parta_school_roles r LEFT JOIN parta_sign_in_codes c ON c.user_id = r.user_id"
            f" WHERE r.school_id IN ({marks})",
            chunk,
        )
        out.extend(
            (str(s), str(role), str(u), bool(claimed)) for s, role, u, claimed in txn.fetchall()
        )
    return out


def rooms_of_schools_txn(txn: LoggingTransaction, school_ids: Iterable[str]) -> list[SchoolRoom]:
    out: list[SchoolRoom] = []
    for chunk, marks in in_chunks(school_ids):
        txn.execute(f"{_ROOM_SELECT} WHERE r.school_id IN ({marks})", chunk)
        out.extend(_room(r) for r in txn.fetchall())
    return out


def school_rooms_of_kinds_txn(
    txn: LoggingTransaction, kinds: Iterable[RoomKind]
) -> list[SchoolRoom]:
    """Every school's own rooms (not its classes') of these kinds."""
    wanted = sorted(k.value for k in kinds)
    marks = ",".join("?" * len(wanted))
    txn.execute(
        f"{_ROOM_SELECT} WHERE r.school_id IS NOT NULL AND r.class_id IS NULL"
        f" AND r.kind IN ({marks}) ORDER BY r.school_id, r.kind",
        wanted,
    )
    return [_room(r) for r in txn.fetchall()]
