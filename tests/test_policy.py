"""The pure decisions behind the module's callbacks, table by table."""

import attrs
import pytest

from parta_common.roles import Role
from synapse_module.roster import rules as policy
from synapse_module.roster.rules import Person, RoomKind, SchoolPolicy, SchoolRoom, Standing

S = "sch_1"
A, B = "cls_a", "cls_b"


def person(uid: str, *roles: Role, **classes: frozenset[str] | set[str]) -> Person:
    standing = Standing(
        school_id=S,
        roles=frozenset(roles),
        **{k: frozenset(v) for k, v in classes.items()},
    )
    return Person(uid, {S: standing})


ADMIN = person("@admin:x", Role.ADMINISTRATOR)
TEACHER_A = person("@ta:x", Role.TEACHER, teaches={A}, homeroom_of={A})
TEACHER_B = person("@tb:x", Role.TEACHER, teaches={B})
STUDENT_A = person("@sa:x", Role.STUDENT, learns_in={A})
STUDENT_A2 = person("@sa2:x", Role.STUDENT, learns_in={A})
STUDENT_B = person("@sb:x", Role.STUDENT, learns_in={B})
PARENT_A = person("@pa:x", Role.PARENT, children={"@sa:x"}, children_classes={A})
OUTSIDER = Person("@out:x")

ROOMS = {
    "space": SchoolRoom("!space", RoomKind.SCHOOL_SPACE, S),
    "ann": SchoolRoom("!ann", RoomKind.ANNOUNCEMENTS, S),
    "staff": SchoolRoom("!staff", RoomKind.STAFF, S),
    "a_chat": SchoolRoom("!a", RoomKind.CLASS_CHAT, S, A),
    "a_parents": SchoolRoom("!ap", RoomKind.PARENTS_CHAT, S, A),
    "b_chat": SchoolRoom("!b", RoomKind.CLASS_CHAT, S, B),
    "a_archived": SchoolRoom("!old", RoomKind.CLASS_CHAT, S, A, archived=True),
}


@pytest.mark.parametrize(
    ("who", "room", "power"),
    [
        (ADMIN, "a_chat", 100),
        (ADMIN, "space", 100),
        (TEACHER_A, "a_chat", 50),
        (TEACHER_A, "a_parents", 50),
        (TEACHER_A, "ann", 50),
        (TEACHER_A, "space", 0),
        (TEACHER_A, "b_chat", None),
        (TEACHER_B, "a_parents", None),
        (STUDENT_A, "a_chat", 0),
        (STUDENT_A, "b_chat", None),
        (STUDENT_A, "staff", None),
        (STUDENT_A, "a_parents", None),
        (PARENT_A, "a_parents", 0),
        (PARENT_A, "a_chat", None),
        (PARENT_A, "ann", 0),
        (OUTSIDER, "ann", None),
        (TEACHER_A, "a_archived", 0),
        (ADMIN, "a_archived", 0),
    ],
)
def test_power_in(who: Person, room: str, power: int | None) -> None:
    assert policy.power_in(who.standing(S), ROOMS[room]) == power


@pytest.mark.parametrize(
    ("a", "b", "allowed"),
    [
        (STUDENT_A, STUDENT_A2, True),
        (STUDENT_A, STUDENT_B, False),
        (STUDENT_A, TEACHER_B, True),
        (STUDENT_A, ADMIN, True),
        (STUDENT_A, OUTSIDER, False),
        (STUDENT_A, PARENT_A, True),  # their own parent
        (TEACHER_B, STUDENT_A, True),
        (PARENT_A, STUDENT_A, True),
        (PARENT_A, STUDENT_A2, False),
        (PARENT_A, TEACHER_A, True),
        (OUTSIDER, STUDENT_A, False),
        (OUTSIDER, TEACHER_A, True),
        (OUTSIDER, Person("@out2:x"), True),
    ],
)
def test_may_contact_default_policy(a: Person, b: Person, allowed: bool) -> None:
    assert (policy.may_contact(a, b, {S: SchoolPolicy()}) is None) is allowed


@pytest.mark.parametrize(
    ("dm_policy", "b", "allowed"),
    [
        ("staff_only", STUDENT_A2, False),
        ("staff_only", TEACHER_A, True),
        ("class", STUDENT_B, False),
        ("school", STUDENT_B, True),
    ],
)
def test_dm_policy_choices(dm_policy: policy.DmPolicy, b: Person, allowed: bool) -> None:
    policies = {S: SchoolPolicy(dm_policy=dm_policy)}
    assert (policy.may_contact(STUDENT_A, b, policies) is None) is allowed


def test_group_chats_follow_policy() -> None:
    assert policy.may_create_group_chat(STUDENT_A, {S: SchoolPolicy()}) is not None
    allowed = {S: SchoolPolicy(students_may_create_group_chats=True)}
    assert policy.may_create_group_chat(STUDENT_A, allowed) is None
    assert policy.may_create_group_chat(TEACHER_A, {S: SchoolPolicy()}) is None
    assert policy.may_create_group_chat(PARENT_A, {S: SchoolPolicy()}) is None


@pytest.mark.parametrize(
    ("inviter", "invitee", "room", "allowed"),
    [
        (TEACHER_A, STUDENT_A, "a_chat", True),
        (TEACHER_A, STUDENT_B, "a_chat", False),
        (TEACHER_B, STUDENT_A, "a_chat", False),
        (ADMIN, STUDENT_A, "a_chat", True),
        (STUDENT_A, STUDENT_A2, "a_chat", False),
        (PARENT_A, STUDENT_A, "a_parents", False),
        (ADMIN, OUTSIDER, "ann", False),
    ],
)
def test_may_invite_into(inviter: Person, invitee: Person, room: str, allowed: bool) -> None:
    assert (policy.may_invite_into(inviter, invitee, ROOMS[room]) is None) is allowed


def test_policy_limits() -> None:
    limits = policy.PolicyLimits(
        allowed_dm_policies=("staff_only",), allow_student_group_chats=False
    )
    assert policy.check_policy(SchoolPolicy(dm_policy="staff_only"), limits) is None
    assert "class" in (policy.check_policy(SchoolPolicy(dm_policy="class"), limits) or "")
    assert policy.check_policy(
        SchoolPolicy(dm_policy="staff_only", students_may_create_group_chats=True), limits
    )
    fed = SchoolPolicy(dm_policy="staff_only", federation_allowed_servers=("a.example",))
    assert "a.example" in (policy.check_policy(fed, limits) or "")
    ok = policy.PolicyLimits(federation_allowed_servers=("a.example",))
    assert policy.check_policy(attrs_evolve_dm(fed), ok) is None


def attrs_evolve_dm(p: SchoolPolicy) -> SchoolPolicy:
    return SchoolPolicy(dm_policy="class", federation_allowed_servers=p.federation_allowed_servers)


def test_remote_servers_only_when_allowed() -> None:
    assert policy.remote_allowed("evil.example", SchoolPolicy()) is not None
    allowed = SchoolPolicy(federation_allowed_servers=("partner.example",))
    assert policy.remote_allowed("partner.example", allowed) is None


def test_search_hides_students_outside_their_school() -> None:
    assert policy.hidden_from_search(STUDENT_A, OUTSIDER)
    assert not policy.hidden_from_search(STUDENT_A, PARENT_A)
    assert not policy.hidden_from_search(TEACHER_A, OUTSIDER)


def test_expected_rooms() -> None:
    rooms = list(ROOMS.values())
    assert set(policy.expected_rooms(STUDENT_A, rooms)) == {"!space", "!ann", "!a"}
    assert set(policy.expected_rooms(PARENT_A, rooms)) == {"!space", "!ann", "!ap"}
    assert set(policy.expected_rooms(TEACHER_A, rooms)) == {"!space", "!ann", "!staff", "!a", "!ap"}
    # Administrators may join every class room but are not put into them.
    assert set(policy.expected_rooms(ADMIN, rooms)) == {"!space", "!ann", "!staff"}
    content = policy.power_levels_content(ROOMS["a_chat"], {"@ta:x": 50, "@sa:x": 0})
    assert content["users"] == {"@ta:x": 50}
    assert content["events"]["m.room.power_levels"] == 100
    archived = policy.power_levels_content(ROOMS["a_archived"], {"@ta:x": 50})
    assert archived["users"] == {} and archived["events_default"] == 100


@pytest.mark.parametrize(
    ("who", "rooms"),
    [
        (STUDENT_A, ["!a"]),
        (STUDENT_B, ["!b"]),
        (PARENT_A, ["!ap"]),
        (TEACHER_A, ["!a", "!ap"]),
        (TEACHER_B, ["!b"]),
        (ADMIN, []),  # may join every class room, is put into none
        (OUTSIDER, []),
    ],
)
def test_class_rooms_of(who: Person, rooms: list[str]) -> None:
    """What /me lists as the person's class rooms (archived ones never)."""
    got = policy.class_rooms_of(who, ROOMS.values())
    assert [r.room_id for r in got] == rooms


# -- ways around the roles (issue 17) ---------------------------------------------------

NEWCOMER = Person("@new:x")
STUDENT_AB = Person("@sab:x", {S: Standing(S, frozenset({Role.STUDENT}), learns_in=frozenset({B}))})
TEACHER_AB = person("@tab:x", Role.TEACHER, teaches={A, B})


@pytest.mark.parametrize(
    ("teacher", "target", "classes", "allowed"),
    [
        (TEACHER_A, STUDENT_A, {A}, True),  # their own student, their own class
        (TEACHER_A, NEWCOMER, {A}, True),  # someone not in the school yet
        (TEACHER_AB, STUDENT_A, {B}, True),  # moves a student between their own classes
        (TEACHER_A, STUDENT_B, {A}, False),  # pulls a student out of another's class
        (TEACHER_A, STUDENT_AB, {A}, False),
        (TEACHER_A, ADMIN, {A}, False),  # the school's administrator
        (TEACHER_A, TEACHER_B, {A}, False),  # another teacher
        (TEACHER_A, PARENT_A, {A}, False),  # a parent
        (TEACHER_A, STUDENT_A, {B}, False),  # into a class not theirs
        (TEACHER_A, Person("@c:x", coordinates=frozenset({"u"})), {A}, False),
        (STUDENT_A, NEWCOMER, {A}, False),
        (None, NEWCOMER, {A}, False),
    ],
)
def test_teacher_may_put_member(
    teacher: Person | None, target: Person, classes: set[str], allowed: bool
) -> None:
    standing = teacher.standing(S) if teacher else None
    refusal = policy.teacher_may_put_member(
        standing, target, S, frozenset({Role.STUDENT}), frozenset(classes)
    )
    assert (refusal is None) is allowed


def test_teacher_may_put_only_students_and_nothing_more() -> None:
    me = TEACHER_A.standing(S)
    for roles in ({Role.TEACHER}, {Role.PARENT}, {Role.ADMINISTRATOR}, set()):
        assert policy.teacher_may_put_member(me, NEWCOMER, S, frozenset(roles), frozenset({A}))
    student = frozenset({Role.STUDENT})
    assert policy.teacher_may_put_member(me, NEWCOMER, S, student, frozenset())
    assert policy.teacher_may_put_member(me, NEWCOMER, S, student, frozenset({A}), other=True)


@pytest.mark.parametrize(
    ("who", "from_power", "role"),
    [
        (STUDENT_A, Role.ADMINISTRATOR, Role.STUDENT),  # created the room: still a student
        (PARENT_A, Role.ADMINISTRATOR, Role.STUDENT),
        (TEACHER_A, Role.ADMINISTRATOR, Role.TEACHER),
        (TEACHER_A, Role.STUDENT, Role.STUDENT),
        (ADMIN, Role.ADMINISTRATOR, Role.TEACHER),  # school administration stays in school
        (Person("@c:x", coordinates=frozenset({"u"})), Role.ADMINISTRATOR, Role.TEACHER),
        (OUTSIDER, Role.ADMINISTRATOR, Role.ADMINISTRATOR),  # not in any roster
        (OUTSIDER, Role.TEACHER, Role.TEACHER),
    ],
)
def test_role_outside_school(who: Person, from_power: Role, role: Role) -> None:
    assert policy.role_outside_school(who, from_power) is role


@pytest.mark.parametrize(
    ("creator", "actor", "present", "allowed"),
    [
        (STUDENT_A, STUDENT_A, 1, True),  # the second person of a private chat
        (STUDENT_A, STUDENT_A, 2, False),  # a third, invited by the student
        (STUDENT_A, STUDENT_A2, 2, False),  # a third, invited by the classmate
        (STUDENT_A, TEACHER_A, 2, False),  # a student's room stays a private chat
        (TEACHER_A, STUDENT_A, 2, False),  # a student does not grow a teacher's group
        (TEACHER_A, TEACHER_A, 5, True),
        (OUTSIDER, OUTSIDER, 9, True),
    ],
)
def test_may_grow_private_room(creator: Person, actor: Person, present: int, allowed: bool) -> None:
    refusal = policy.may_grow_private_room(creator, actor, present, {S: SchoolPolicy()})
    assert (refusal is None) is allowed
    groups = {S: SchoolPolicy(students_may_create_group_chats=True)}
    assert policy.may_grow_private_room(creator, actor, present, groups) is None


@pytest.mark.parametrize(
    ("invite_by", "redeemer", "waits"),
    [
        ("@sa:x", Person("@mum:x"), True),  # the student's own code: the school confirms
        ("@sa:x", PARENT_A, False),  # already the child's parent in the roster
        ("@sa:x", TEACHER_A, True),
        ("@admin:x", Person("@mum:x"), False),  # staff made the code: at once
    ],
)
def test_parent_link_waits(invite_by: str, redeemer: Person, waits: bool) -> None:
    assert policy.parent_link_waits(invite_by, "@sa:x", redeemer.user_id, redeemer.standing(S)) is (
        waits
    )


@pytest.mark.parametrize(
    ("decider", "child", "allowed"),
    [
        (TEACHER_A, STUDENT_A, True),  # homeroom teacher of 7A
        (ADMIN, STUDENT_A, True),
        (TEACHER_B, STUDENT_A, False),  # teaches elsewhere
        (TEACHER_AB, STUDENT_A, False),  # teaches 7A but is not its homeroom teacher
        (PARENT_A, STUDENT_A, False),
        (STUDENT_A2, STUDENT_A, False),
        (TEACHER_A, STUDENT_B, False),
    ],
)
def test_may_decide_parent_link(decider: Person, child: Person, allowed: bool) -> None:
    refusal = policy.may_decide_parent_link(decider.standing(S), child.standing(S))
    assert (refusal is None) is allowed


TWO_SCHOOLS = Person(
    "@two:x",
    {
        S: Standing(school_id=S, roles=frozenset({Role.PARENT}), children=frozenset({"@sa:x"})),
        "sch_2": Standing(school_id="sch_2", roles=frozenset({Role.TEACHER})),
    },
)
COORDINATOR_PARENT = attrs.evolve(PARENT_A, coordinates=frozenset({"unit_r"}))


@pytest.mark.parametrize(
    ("target", "manages", "appoints", "allowed"),
    [
        (STUDENT_A, {S}, set(), True),  # only this school's: its administrator
        (STUDENT_A, set(), set(), False),
        (TWO_SCHOOLS, {S}, set(), False),  # a teacher of another school
        (TWO_SCHOOLS, {S, "sch_2"}, set(), True),  # the operator, a coordinator of both
        (COORDINATOR_PARENT, {S}, set(), False),  # a region's coordinator
        (COORDINATOR_PARENT, {S}, {"unit_r"}, True),
        (Person("@coord:x", coordinates=frozenset({"unit_r"})), set(), {"unit_r"}, True),
    ],
)
def test_may_replace_sign_in_code(
    target: Person, manages: set[str], appoints: set[str], allowed: bool
) -> None:
    refusal = policy.may_replace_sign_in_code(target, manages, appoints)
    assert (refusal is None) is allowed
    assert refusal in (None, policy.SIGN_IN_CODE_NOT_WHOLE)


@pytest.mark.parametrize(
    ("own", "allowed", "hosts", "ip_literals"),
    [
        ("school.ru", [], ["school.ru"], False),
        # ports: the host (what remote events match) and the full name (the self-check)
        ("school.ru", ["gym5.ru:8448"], ["school.ru", "gym5.ru", "gym5.ru:8448"], False),
        (
            "localhost:8008",
            ["localhost:9000"],
            ["localhost", "localhost:8008", "localhost:9000"],
            False,
        ),
        ("school.ru", ["10.0.0.7:8448"], ["school.ru", "10.0.0.7", "10.0.0.7:8448"], True),
        ("school.ru", ["[::1]:8448"], ["school.ru", "[::1]", "[::1]:8448"], True),
        ("127.0.0.1:8008", ["gym5.ru"], ["127.0.0.1", "127.0.0.1:8008", "gym5.ru"], False),
    ],
)
def test_acl_content(own: str, allowed: list[str], hosts: list[str], ip_literals: bool) -> None:
    """School rooms' server ACL names hosts as ACLs match them (without ports)."""
    got = policy.acl_content(own, allowed)
    assert got == {"allow": hosts, "deny": [], "allow_ip_literals": ip_literals}


@pytest.mark.parametrize(
    ("config", "creation_content"),
    [
        ({}, {"creator": "@a:x"}),
        ({"name": "n"}, {"creator": "@a:x"}),
        ({"creation_content": {"type": "m.space"}}, {"type": "m.space", "creator": "@a:x"}),
        ({"creation_content": {"creator": "@b:x"}}, {"creator": "@b:x"}),
        ({"creation_content": "junk"}, "junk"),
    ],
)
def test_rooms_carry_the_legacy_creator_for_old_clients(
    config: dict[str, object], creation_content: object
) -> None:
    out = policy.creation_content_for_old_clients(config, "@a:x")
    assert out["creation_content"] == creation_content
    assert {k: v for k, v in out.items() if k != "creation_content"} == {
        k: v for k, v in config.items() if k != "creation_content"
    }
