"""Who may do what where in a school: pure decisions, no Synapse, table-tested.

The roster (see ``store``) is summarised per person as a :class:`Person`: their
:class:`Standing` in each school. The rooms the module created are :class:`SchoolRoom`s.
Every function here answers from those two alone, so the same decision holds whether
the request came through the REST API, a client's ``/createRoom`` or federation.

Longer than 600 lines because every roster decision sits in this one table-tested
place (``tests/test_policy.py``); a third of it is the texts the refusals carry.
"""

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from parta_common import events
from parta_common.messages import Message
from parta_common.roles import Role

from ..privacy.rules import DEFAULT_SELF_CONSENT_GRADE, EnforceableConsent, MessagesRule
from ..quiet_hours.rules import QuietHours, rules_from_json, rules_to_json


class RoomKind(enum.StrEnum):
    UNIT_SPACE = "unit_space"
    UNIT_ANNOUNCEMENTS = "unit_announcements"
    SCHOOL_SPACE = "school_space"
    ANNOUNCEMENTS = "announcements"
    STAFF = "staff"
    DOCUMENTS = "documents"
    ARTICLES = "articles"
    CLASS_SPACE = "class_space"
    CLASS_CHAT = "class_chat"
    PARENTS_CHAT = "parents_chat"


SCHOOL_WIDE_KINDS: Final = (
    RoomKind.SCHOOL_SPACE,
    RoomKind.ANNOUNCEMENTS,
    RoomKind.STAFF,
    RoomKind.DOCUMENTS,
    RoomKind.ARTICLES,
)
CLASS_KINDS: Final = (RoomKind.CLASS_SPACE, RoomKind.CLASS_CHAT, RoomKind.PARENTS_CHAT)
# The rooms every student of a school is in: ``join_rule: public`` in Matrix terms, so
# that Synapse's user directory keeps one row per member (``users_in_public_rooms``)
# instead of one per pair of members (``users_who_share_private_rooms``: O(N) rows a
# join, ~N² over a school's first morning). Who may join is still the roster's answer
# alone (``may_join``, asked of every local join and every other server's make_join);
# no school room is published in the room directory (``user_may_publish_room``).
# docs/architecture.md, "First sign-ins".
OPEN_KINDS: Final = frozenset(
    {RoomKind.SCHOOL_SPACE, RoomKind.ANNOUNCEMENTS, RoomKind.DOCUMENTS, RoomKind.ARTICLES}
)
UNIT_KINDS: Final = (RoomKind.UNIT_SPACE, RoomKind.UNIT_ANNOUNCEMENTS)
# The order a person joins their rooms in (others: stage 2): a restricted room lets
# in members of its space, so the school space first, then class spaces, then the rest.
JOIN_STAGE: Final = {RoomKind.SCHOOL_SPACE: 0, RoomKind.CLASS_SPACE: 1}

DmPolicy = Literal["staff_only", "class", "school"]
DM_POLICIES: Final[tuple[DmPolicy, ...]] = ("staff_only", "class", "school")


def _grade(_inst: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if isinstance(value, bool) or not 1 <= value <= 11:
        raise ValueError(f"{attribute.name}: {value!r} is not a grade from 1 to 11")


@attrs.frozen
class SchoolPolicy:
    """What a school's administrators tune, within :class:`PolicyLimits`."""

    # Whom students may start direct chats with: only staff, also classmates, or also
    # any student of the school.
    dm_policy: DmPolicy = "class"
    # Whether students may create group chats of their own (outside school rooms).
    students_may_create_group_chats: bool = False
    # Consents the school enforces besides video lessons and broadcasts: a student in its
    # rooms without ``communication`` reads but does not post; without ``photos`` posts
    # no pictures or videos and shows no avatar there (privacy.rules.consent_refusal).
    consent_enforced: tuple[EnforceableConsent, ...] = ()
    # From which grade a student records their own consents (privacy.rules).
    self_consent_grade: int = attrs.field(default=DEFAULT_SELF_CONSENT_GRADE, validator=_grade)
    # Other homeservers whose users may take part in this school's rooms.
    federation_allowed_servers: tuple[str, ...] = ()
    # Quiet hours per role (teacher, administrator): their messages to students and
    # parents wait for the morning (synapse_module/quiet_hours). None by default.
    quiet_hours: tuple[QuietHours, ...] = ()
    # Hours after an announcement asking for confirmation when the bot reminds, once,
    # those who have not confirmed (synapse_module/confirmations); None: no reminders.
    confirmation_reminder_hours: int | None = None
    # What an erasure does with the person's messages when the request does not say
    # (synapse_module/privacy): redacted, or kept with the account anonymised.
    erasure_messages: MessagesRule = "redact"

    def to_json(self) -> dict[str, Any]:
        return {
            "dm_policy": self.dm_policy,
            "students_may_create_group_chats": self.students_may_create_group_chats,
            "consent_enforced": list(self.consent_enforced),
            "self_consent_grade": self.self_consent_grade,
            "federation_allowed_servers": list(self.federation_allowed_servers),
            "quiet_hours": rules_to_json(self.quiet_hours),
            "confirmation_reminder_hours": self.confirmation_reminder_hours,
            "erasure_messages": self.erasure_messages,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "SchoolPolicy":
        return cls(
            dm_policy=raw.get("dm_policy", "class"),
            students_may_create_group_chats=bool(raw.get("students_may_create_group_chats")),
            consent_enforced=tuple(raw.get("consent_enforced", ())),
            self_consent_grade=raw.get("self_consent_grade", DEFAULT_SELF_CONSENT_GRADE),
            federation_allowed_servers=tuple(raw.get("federation_allowed_servers", ())),
            quiet_hours=rules_from_json(raw.get("quiet_hours")),
            confirmation_reminder_hours=raw.get("confirmation_reminder_hours"),
            erasure_messages=raw.get("erasure_messages", "redact"),
        )


@attrs.frozen
class PolicyLimits:
    """The limits the server operator sets for every school's policy."""

    allowed_dm_policies: tuple[DmPolicy, ...] = DM_POLICIES
    allow_student_group_chats: bool = True
    # Servers a school may federate with; empty: no school may federate.
    federation_allowed_servers: tuple[str, ...] = ()
    default: SchoolPolicy = attrs.Factory(SchoolPolicy)


POLICY_DM_NOT_ALLOWED: Final = Message("roster.policy_dm_not_allowed")
POLICY_GROUPS_NOT_ALLOWED: Final = Message("roster.policy_groups_not_allowed")
POLICY_FEDERATION_NOT_ALLOWED: Final = Message("roster.policy_federation_not_allowed")


def check_policy(policy: SchoolPolicy, limits: PolicyLimits) -> str | None:
    """``None`` when ``policy`` is within ``limits``, else the bilingual reason."""
    if policy.dm_policy not in limits.allowed_dm_policies:
        return POLICY_DM_NOT_ALLOWED.format(
            value=policy.dm_policy, allowed=", ".join(limits.allowed_dm_policies)
        )
    if policy.students_may_create_group_chats and not limits.allow_student_group_chats:
        return POLICY_GROUPS_NOT_ALLOWED.format()
    for server in policy.federation_allowed_servers:
        if server not in limits.federation_allowed_servers:
            return POLICY_FEDERATION_NOT_ALLOWED.format(server=server)
    return None


@attrs.frozen
class SchoolRoom:
    room_id: str
    kind: RoomKind
    school_id: str | None = None
    class_id: str | None = None
    unit_id: str | None = None
    archived: bool = False


@attrs.frozen
class Standing:
    """One person's place in one school."""

    school_id: str
    roles: frozenset[Role] = frozenset()
    # Classes the person teaches, learns in, is homeroom teacher of, has children in.
    teaches: frozenset[str] = frozenset()
    learns_in: frozenset[str] = frozenset()
    homeroom_of: frozenset[str] = frozenset()
    children: frozenset[str] = frozenset()
    children_classes: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return Role.ADMINISTRATOR in self.roles

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & {Role.ADMINISTRATOR, Role.TEACHER})


@attrs.frozen
class Person:
    user_id: str
    schools: Mapping[str, Standing] = attrs.Factory(dict)
    # Units (regions, municipalities) this person coordinates.
    coordinates: frozenset[str] = frozenset()
    # Units whose coordinators' announcements this person reads: those above a unit
    # they coordinate and those above a school they administer (its own unit included).
    reads_units: frozenset[str] = frozenset()

    def standing(self, school_id: str | None) -> Standing | None:
        return self.schools.get(school_id) if school_id else None

    @property
    def is_student(self) -> bool:
        return any(Role.STUDENT in s.roles for s in self.schools.values())

    @property
    def is_parent_only(self) -> bool:
        roles = {r for s in self.schools.values() for r in s.roles}
        return Role.PARENT in roles and not roles & {Role.ADMINISTRATOR, Role.TEACHER}

    @property
    def is_staff_anywhere(self) -> bool:
        return any(s.is_staff for s in self.schools.values())


def member_matches(standing: Standing, role: Role | None, class_id: str | None) -> bool:
    """A school's member lists' filter (``role``, ``class_id``; ``None``: any): a role the
    person has; a class they teach, learn in, are homeroom teacher of or have children in."""
    if role is not None and role not in standing.roles:
        return False
    return class_id is None or class_id in (
        standing.teaches | standing.learns_in | standing.homeroom_of | standing.children_classes
    )


# -- rooms and power ----------------------------------------------------------


def power_in(standing: Standing | None, room: SchoolRoom) -> int | None:
    """The power level a person has in a school room, ``None`` if they don't belong."""
    if standing is None or room.school_id != standing.school_id:
        return None
    if room.archived:
        # Last year's rooms are read-only archives: everyone may read, nobody write.
        return 0 if belongs_in(standing, room) else None
    if standing.is_admin:
        return 100
    if not belongs_in(standing, room):
        return None
    if Role.TEACHER in standing.roles and room.kind is not RoomKind.SCHOOL_SPACE:
        if room.kind in SCHOOL_WIDE_KINDS:
            return 50
        if room.class_id in standing.teaches or room.class_id in standing.homeroom_of:
            return 50
    return 0


def belongs_in(standing: Standing, room: SchoolRoom) -> bool:
    """Whether the roster puts this person in this room (admins may join any)."""
    if room.school_id != standing.school_id:
        return False
    if standing.is_admin:
        return True
    kind = room.kind
    if kind in (
        RoomKind.SCHOOL_SPACE,
        RoomKind.ANNOUNCEMENTS,
        RoomKind.DOCUMENTS,
        RoomKind.ARTICLES,
    ):
        return bool(standing.roles)
    if kind is RoomKind.STAFF:
        return standing.is_staff
    cls = room.class_id
    if kind in (RoomKind.CLASS_SPACE, RoomKind.CLASS_CHAT):
        return cls in standing.teaches or cls in standing.learns_in or cls in standing.homeroom_of
    if kind is RoomKind.PARENTS_CHAT:
        return cls in standing.homeroom_of or cls in standing.children_classes
    return False


def auto_joined(standing: Standing, room: SchoolRoom) -> bool:
    """Rooms a person is put into without asking. Administrators may join every class
    room, but are put only into the school-wide ones, so 30 classes don't flood them."""
    if not belongs_in(standing, room):
        return False
    if standing.is_admin and room.kind in CLASS_KINDS:
        cls = room.class_id
        return (
            cls in standing.teaches
            or cls in standing.learns_in
            or cls in standing.homeroom_of
            or (room.kind is RoomKind.PARENTS_CHAT and cls in standing.children_classes)
        )
    return True


_ADMIN_ONLY_STATE: Final = (
    "m.room.power_levels",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.server_acl",
    "m.room.encryption",
    "m.room.tombstone",
    "m.space.child",
    "m.space.parent",
    "m.room.canonical_alias",
)


def power_levels_content(room: SchoolRoom, users: Mapping[str, int]) -> dict[str, Any]:
    """The whole ``m.room.power_levels`` content of a school room.

    The service account is the room's creator (room version 12) and so is not listed.
    Power levels, join rules and space links are the module's: nobody else may change
    them (100 is not enough; the module's rules refuse it too).
    """
    per_type: dict[str, int] = dict.fromkeys(_ADMIN_ONLY_STATE, 100)
    per_type.update(
        {
            "m.room.name": 50,
            "m.room.topic": 50,
            "m.room.avatar": 50,
            "m.room.pinned_events": 50,
            "im.vector.modular.widgets": 50,
            "org.parta.lesson": 50,
            "org.parta.broadcast": 50,
            events.CALL_POLICY: 50,
        }
    )
    content: dict[str, Any] = {
        "users_default": 0,
        "events_default": 0,
        "state_default": 50,
        "invite": 50,
        "kick": 50,
        "ban": 50,
        "redact": 50,
        "notifications": {"room": 50},
        "events": per_type,
        "users": {u: p for u, p in sorted(users.items()) if p != 0},
    }
    if room.kind in (RoomKind.SCHOOL_SPACE, RoomKind.CLASS_SPACE, RoomKind.UNIT_SPACE):
        content["events_default"] = 100
        content["invite"] = 100
    elif room.kind in (
        RoomKind.ANNOUNCEMENTS,
        RoomKind.DOCUMENTS,
        RoomKind.ARTICLES,
        RoomKind.UNIT_ANNOUNCEMENTS,
    ):
        content["events_default"] = 50
    if room.kind is RoomKind.ANNOUNCEMENTS:
        # Everyone may react, so that anyone can confirm reading (👍); the module lets
        # through only confirming reactions from people below 50 (confirmations/).
        per_type["m.reaction"] = 0
    if room.archived:
        content["events_default"] = 100
        content["state_default"] = 100
        content["users"] = {}
        per_type.pop("m.reaction", None)
    # Who may write may join the room's call (Element Call's membership is a state event).
    per_type[events.CALL_MEMBER] = content["events_default"]
    return content


# -- enforcement --------------------------------------------------------------

JOIN_NOT_YOURS: Final = Message("roster.join_not_yours")
JOIN_ARCHIVED: Final = Message("roster.join_archived")
INVITE_BY_ROSTER: Final = Message("roster.invite_by_roster")
INVITE_NOT_IN_SCHOOL: Final = Message("roster.invite_not_in_school")
INVITE_NOT_YOUR_CLASS: Final = Message("roster.invite_not_your_class")
DM_STUDENT_OUTSIDE: Final = Message("roster.dm_student_outside")
DM_STUDENT_INITIATES: Final = Message("roster.dm_student_initiates")
DM_STUDENT_INITIATES_SCHOOL: Final = Message("roster.dm_student_initiates_school")
DM_STUDENT_INITIATES_CLASS: Final = Message("roster.dm_student_initiates_class")
CREATE_GROUP_STUDENT: Final = Message("roster.create_group_student")
CREATE_IN_SCHOOL: Final = Message("roster.create_in_school")
STATE_MANAGED: Final = Message("roster.state_managed")
REMOTE_NOT_ALLOWED: Final = Message("roster.remote_not_allowed")

# State types in school rooms that follow from the roster and only the module sets.
MANAGED_STATE: Final = frozenset(
    {
        "m.room.power_levels",
        "m.room.join_rules",
        "m.space.child",
        "m.space.parent",
        "m.room.history_visibility",
        "m.room.guest_access",
        "m.room.server_acl",
        "m.room.encryption",
        # An upgrade (tombstone) would leave the school for a room the module does not
        # know; an alias would point the school's name elsewhere. Only the service account.
        "m.room.tombstone",
        "m.room.canonical_alias",
    }
)


def may_join(person: Person, room: SchoolRoom) -> Message | None:
    standing = person.standing(room.school_id)
    if room.kind in UNIT_KINDS:
        return None if unit_room_power(person, room) is not None else JOIN_NOT_YOURS
    if standing is None or not belongs_in(standing, room):
        return JOIN_NOT_YOURS
    return None


def may_invite_into(inviter: Person, invitee: Person, room: SchoolRoom) -> Message | None:
    """Invites into school rooms: staff only, their own classes, school members only."""
    standing = inviter.standing(room.school_id)
    if standing is None or not standing.is_staff:
        return INVITE_BY_ROSTER
    target = invitee.standing(room.school_id)
    if target is None or not belongs_in(target, room):
        return INVITE_NOT_IN_SCHOOL
    if not standing.is_admin and room.kind in CLASS_KINDS:
        cls = room.class_id
        if cls not in standing.teaches and cls not in standing.homeroom_of:
            return INVITE_NOT_YOUR_CLASS
    return None


def _can_write_to_student(
    initiator: Person, student: Person, policies: Mapping[str, SchoolPolicy]
) -> bool:
    for school_id, s_standing in student.schools.items():
        if Role.STUDENT not in s_standing.roles:
            continue
        i_standing = initiator.standing(school_id)
        if i_standing is None:
            continue
        if i_standing.is_staff:
            return True
        if student.user_id in i_standing.children:
            return True
        if Role.STUDENT in i_standing.roles:
            policy = policies.get(school_id, SchoolPolicy())
            if policy.dm_policy == "school":
                return True
            if policy.dm_policy == "class" and (i_standing.learns_in & s_standing.learns_in):
                return True
    return False


def may_contact(
    initiator: Person, target: Person, policies: Mapping[str, SchoolPolicy]
) -> Message | None:
    """Whether ``initiator`` may start a private chat with (or invite) ``target``."""
    if target.is_student and not _can_write_to_student(initiator, target, policies):
        if initiator.is_student:
            return _student_initiates_message(initiator, policies)
        return DM_STUDENT_OUTSIDE
    if initiator.is_student and not target.is_student:
        # A student writes to an adult: a teacher or administrator of one of their
        # schools, or their own parent.
        for school_id in initiator.schools:
            t_standing = target.standing(school_id)
            if t_standing is None:
                continue
            if t_standing.is_staff or initiator.user_id in t_standing.children:
                return None
        return _student_initiates_message(initiator, policies)
    return None


def _student_initiates_message(initiator: Person, policies: Mapping[str, SchoolPolicy]) -> Message:
    dm = {policies.get(s, SchoolPolicy()).dm_policy for s in initiator.schools}
    if "school" in dm:
        return DM_STUDENT_INITIATES_SCHOOL
    if "class" in dm:
        return DM_STUDENT_INITIATES_CLASS
    return DM_STUDENT_INITIATES


def may_create_group_chat(person: Person, policies: Mapping[str, SchoolPolicy]) -> Message | None:
    if not person.is_student or person.is_staff_anywhere:
        return None
    for school_id, standing in person.schools.items():
        policy = policies.get(school_id, SchoolPolicy())
        if Role.STUDENT in standing.roles and not policy.students_may_create_group_chats:
            return CREATE_GROUP_STUDENT
    return None


def may_link_into_school(person: Person, school_id: str | None) -> Message | None:
    """Adding a room to a school's space (``m.space.parent``/``child``): staff only."""
    standing = person.standing(school_id)
    if standing is not None and standing.is_staff:
        return None
    return CREATE_IN_SCHOOL


def remote_allowed(server: str, policy: SchoolPolicy) -> Message | None:
    if server in policy.federation_allowed_servers:
        return None
    return REMOTE_NOT_ALLOWED


def acl_host(server_name: str) -> str:
    """The host part of a server name, as server ACLs match it (the spec: ports ignored)."""
    if server_name.startswith("["):  # an IPv6 literal: [::1]:8448
        return server_name[: server_name.index("]") + 1] if "]" in server_name else server_name
    return server_name.rsplit(":", 1)[0] if server_name.count(":") == 1 else server_name


def _is_ip_literal(host: str) -> bool:
    if host.startswith("["):
        return True
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def acl_content(own_server: str, allowed_servers: Iterable[str]) -> dict[str, Any]:
    """``m.room.server_acl`` content of a school room: this server and the servers the
    school allows. Synapse matches another server's events by host, without the port, but
    checks that an ACL does not deny itself by its full name, so each server is named both
    ways. IP literals are allowed only when the school names a server by one (the allow
    list still names exactly which)."""
    names: list[str] = []
    for server in (own_server, *allowed_servers):
        for name in (acl_host(server), server):
            if name not in names:
                names.append(name)
    others = [acl_host(server) for server in allowed_servers]
    return {
        "allow": names,
        "deny": [],
        "allow_ip_literals": any(_is_ip_literal(h) for h in others),
    }


def hidden_from_search(target: Person, searcher: Person) -> bool:
    """Students are found in the user directory only by people of their schools."""
    if not target.is_student:
        return False
    return not (set(target.schools) & set(searcher.schools))


def expected_rooms(person: Person, rooms: Iterable[SchoolRoom]) -> dict[str, int]:
    """room_id → power level for every room this person should be joined to."""
    out: dict[str, int] = {}
    for room in rooms:
        standing = person.standing(room.school_id)
        if standing is None or room.archived or not auto_joined(standing, room):
            continue
        power = power_in(standing, room)
        if power is not None:
            out[room.room_id] = power
    return out


def class_rooms_of(person: Person, rooms: Iterable[SchoolRoom]) -> list[SchoolRoom]:
    """The class rooms (space, chat, parents chat) this person is in, as ``/me`` lists
    them: the class rooms of :func:`expected_rooms`, by class then kind."""
    rooms = list(rooms)
    mine = expected_rooms(person, rooms)
    return sorted(
        (r for r in rooms if r.class_id is not None and r.room_id in mine),
        key=lambda r: (r.class_id or "", r.kind.value),
    )


# -- ways around the roles (issue 17) -------------------------------------------------

TEACHER_CHANGES_OWN_STUDENTS: Final = Message("roster.teacher_changes_own_students")
GROUP_BY_INVITES: Final = Message("roster.group_by_invites")
UPGRADE_SCHOOL_ROOM: Final = Message("roster.upgrade_school_room")
PUBLISH_SCHOOL_ROOM: Final = Message("roster.publish_school_room")


def teacher_may_put_member(
    teacher: Standing | None,
    target: Person,
    school_id: str,
    roles: frozenset[Role],
    classes: frozenset[str],
    other: bool = False,
) -> Message | None:
    """``PUT member`` by a teacher (not a manager of the school): only a student who is
    already only in the teacher's own classes (or not in the school yet), made a student
    of the teacher's own classes, nothing more (``other``: children or homerooms asked)."""
    if teacher is None or Role.TEACHER not in teacher.roles:
        return TEACHER_CHANGES_OWN_STUDENTS
    own = teacher.teaches | teacher.homeroom_of
    if roles != {Role.STUDENT} or not classes or not classes <= own or other:
        return TEACHER_CHANGES_OWN_STUDENTS
    if target.coordinates:
        return TEACHER_CHANGES_OWN_STUDENTS
    for sid, standing in target.schools.items():
        if standing.roles - {Role.STUDENT} or standing.teaches or standing.children:
            # An adult anywhere: being made a student would limit them everywhere.
            return TEACHER_CHANGES_OWN_STUDENTS
        if sid == school_id and not standing.learns_in <= own:
            return TEACHER_CHANGES_OWN_STUDENTS
    return None


def role_outside_school(person: Person, from_power: Role) -> Role:
    """A person's role in a room the roster does not know, from their power there
    (``from_power``) capped by their roster roles: power in a room someone created never
    lifts them above what the school made them. Students and parents are participants;
    teachers, administrators and coordinators lead at most as teachers (a school's
    administration applies to the school's rooms only). Someone the roster does not know
    at all keeps the role their power gives (a server used without schools)."""
    if not person.schools and not person.coordinates:
        return from_power
    if person.is_staff_anywhere or person.coordinates:
        return Role.STUDENT if from_power is Role.STUDENT else Role.TEACHER
    return Role.STUDENT


def may_grow_private_room(
    creator: Person,
    actor: Person,
    present: int,
    policies: Mapping[str, SchoolPolicy],
) -> Message | None:
    """Another person into a room the roster does not know (invite, or a join not
    invited): when the school forbids students' group chats, a room a student created, or
    one a student adds to, holds at most two people. ``present``: joined and invited
    people before this one."""
    if present < 2:
        return None
    if may_create_group_chat(creator, policies) is not None:
        return GROUP_BY_INVITES
    if may_create_group_chat(actor, policies) is not None:
        return GROUP_BY_INVITES
    return None


PARENT_LINK_NOT_YOURS: Final = Message("roster.parent_link_not_yours")
PARENT_INVITES_OPEN: Final = Message("roster.parent_invites_open")


def parent_link_waits(
    invite_by: str, child: str, redeemer: str, redeemer_standing: Standing | None
) -> bool:
    """A parent code the student made themselves waits for the school's confirmation,
    unless the roster already names the redeemer as this child's parent. Codes the
    school's staff made take effect at once."""
    if invite_by != child:
        return False
    return redeemer_standing is None or child not in redeemer_standing.children


def may_decide_parent_link(decider: Standing | None, child: Standing | None) -> Message | None:
    """Who confirms or refuses a waiting parent link (besides those who manage the
    school): the school's administrators and the homeroom teacher of the child's class."""
    if decider is not None and decider.is_admin:
        return None
    if decider is not None and child is not None and decider.homeroom_of & child.learns_in:
        return None
    return PARENT_LINK_NOT_YOURS


SIGN_IN_CODE_NOT_WHOLE: Final = Message("roster.sign_in_code_not_whole")
RENAME_NOT_WHOLE: Final = Message("roster.rename_not_whole")


def may_replace_sign_in_code(
    target: Person, manages: Iterable[str], appoints: Iterable[str]
) -> Message | None:
    """A new sign-in code hands over the whole account, everywhere it is someone: only to
    one who manages every school the person is in (``manages``: those the asker manages
    among them) and may appoint them in every unit they coordinate (``appoints``). A
    school's administrator never signs in as another school's teacher or a region's
    coordinator by enrolling them as a parent first."""
    if set(target.schools) <= set(manages) and target.coordinates <= set(appoints):
        return None
    return SIGN_IN_CODE_NOT_WHOLE


def may_rename_account(
    target: Person, manages: Iterable[str], appoints: Iterable[str]
) -> Message | None:
    """A display name is the account's, shown everywhere it is someone: the roster's new
    name for an imported account is set by one who could replace its sign-in code
    (:func:`may_replace_sign_in_code`) — not by a school that enrolled another school's
    teacher as a parent to rename them."""
    if may_replace_sign_in_code(target, manages, appoints) is None:
        return None
    return RENAME_NOT_WHOLE


def may_send_structure_state(sender: str, event_type: str, service_user_id: str) -> bool:
    """Only the service account writes the state that describes the school structure."""
    if event_type not in events.STRUCTURE_STATE_TYPES:
        return True
    return sender == service_user_id


def creation_content_for_old_clients(config: dict[str, Any], creator: str) -> dict[str, Any]:
    """``createRoom`` content with ``creation_content.creator`` filled in.

    Since room version 11 the creator is the create event's sender and the ``creator``
    key is gone; nheko 0.11 (Debian bookworm's Matrix client) still requires it and
    drops a create event without it, so every space shows up as a plain room and every
    chat a person starts (DMs too) disappears from its list (docs/clients.md). The
    server ignores the key in versions 11 and 12, and older versions set it to the same
    value anyway. A value the request set itself is kept, and malformed content is left
    for the server to refuse.
    """
    raw = config.get("creation_content", {})
    if not isinstance(raw, dict):
        return config
    return {**config, "creation_content": {"creator": creator, **raw}}


# -- regions and municipalities (units) and their coordinators (issue 11) ------------

UNIT_NOT_YOURS: Final = Message("roster.unit_not_yours")
UNIT_APPOINT_ABOVE: Final = Message("roster.unit_appoint_above")
UNIT_TOP_LEVEL: Final = Message("roster.unit_top_level")
UNIT_KIND_ORDER: Final = Message("roster.unit_kind_order")
OPERATOR_ONLY: Final = Message("roster.not_operator")

UnitKind = Literal["region", "municipality"]


class UnitAction(enum.StrEnum):
    # See the unit, its coordinators, schools and statistics.
    READ = "read"
    # Create a unit below it (a municipality in a region).
    CREATE_UNIT = "create_unit"
    # Appoint or remove its coordinators.
    APPOINT = "appoint"
    # Create a school in it, and manage the schools in it (administrators, classes…).
    MANAGE_SCHOOLS = "manage_schools"


@attrs.frozen
class UnitPlace:
    """A unit where it stands: its kind and the units from it up to the top (itself
    first). ``None`` in place of a unit is the top level, above every region."""

    unit_id: str
    kind: UnitKind
    chain: tuple[str, ...]


def unit_chain(parents: Mapping[str, str | None], unit_id: str) -> tuple[str, ...]:
    """``unit_id`` and the units above it, nearest first (``parents``: unit → parent)."""
    chain: list[str] = []
    current: str | None = unit_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return tuple(chain)


def unit_refusal(
    is_operator: bool,
    coordinates: frozenset[str],
    target: UnitPlace | None,
    action: UnitAction,
    new_kind: UnitKind | None = None,
) -> Message | None:
    """May someone (the server operator, or the coordinator of ``coordinates``) do
    ``action`` at ``target``? Each coordinator sees and manages exactly the subtree of the
    units they coordinate: the unit and everything below it. Coordinators are appointed
    from above (the operator, or a coordinator of a unit higher up), never by their
    peers. ``new_kind``: for :attr:`UnitAction.CREATE_UNIT`, the kind of the new unit (a
    region at the top level only, a municipality inside a region or at the top)."""
    if action is UnitAction.CREATE_UNIT and new_kind is not None:
        if new_kind == "region" and target is not None:
            return UNIT_KIND_ORDER
        if new_kind == "municipality" and target is not None and target.kind != "region":
            return UNIT_KIND_ORDER
    if is_operator:
        return None
    if target is None:
        # Above every unit: a region, or a school outside every unit.
        return UNIT_TOP_LEVEL if action is UnitAction.CREATE_UNIT else OPERATOR_ONLY
    if action is UnitAction.APPOINT:
        return None if coordinates & set(target.chain[1:]) else UNIT_APPOINT_ABOVE
    return None if coordinates & set(target.chain) else UNIT_NOT_YOURS


def unit_room_power(person: Person, room: SchoolRoom) -> int | None:
    """The power a person has in a unit's room (its coordinators' space and announcement
    room), ``None`` when they don't belong: the unit's coordinators 100 (they post), the
    coordinators below and the administrators of schools below 0 (they read)."""
    if room.kind not in UNIT_KINDS or room.unit_id is None:
        return None
    if room.unit_id in person.coordinates:
        return 100
    if room.unit_id in person.reads_units:
        return 0
    return None


def expected_unit_rooms(person: Person, rooms: Iterable[SchoolRoom]) -> dict[str, int]:
    """room_id → power level for every unit room this person should be joined to."""
    out: dict[str, int] = {}
    for room in rooms:
        power = unit_room_power(person, room)
        if power is not None:
            out[room.room_id] = power
    return out


def units_read(
    parents: Mapping[str, str | None], coordinates: Iterable[str], school_units: Iterable[str]
) -> frozenset[str]:
    """:attr:`Person.reads_units`: the units above those one coordinates, and a school's
    unit with those above it for each school one administers (``school_units``)."""
    out: set[str] = set()
    for unit_id in coordinates:
        out.update(unit_chain(parents, unit_id)[1:])
    for unit_id in school_units:
        out.update(unit_chain(parents, unit_id))
    return frozenset(out)
