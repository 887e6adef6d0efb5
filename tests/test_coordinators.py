"""Coordinators (issue 11, item 1): the operator appoints a regional coordinator, who
creates municipalities and appoints their coordinators, who create schools and appoint
their administrators; each sees and manages exactly their subtree — the rule as a table,
then the whole chain against a real Synapse (API and Matrix rooms)."""

import secrets
import urllib.parse
from typing import Any

import pytest

from devtools.homeserver import HttpError
from parta_common.messages import Message
from synapse_module.roster import rules
from synapse_module.roster.rules import (
    OPERATOR_ONLY,
    UNIT_APPOINT_ABOVE,
    UNIT_KIND_ORDER,
    UNIT_NOT_YOURS,
    UNIT_TOP_LEVEL,
    Person,
    RoomKind,
    SchoolRoom,
    UnitAction,
    UnitPlace,
)
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import api, api_error

# The tree of the table: region R with municipalities A and B; region S apart.
PARENTS: dict[str, str | None] = {"R": None, "A": "R", "B": "R", "S": None}
KINDS: dict[str, rules.UnitKind] = {
    "R": "region",
    "A": "municipality",
    "B": "municipality",
    "S": "region",
}


def place(unit_id: str) -> UnitPlace:
    return UnitPlace(unit_id, KINDS[unit_id], rules.unit_chain(PARENTS, unit_id))


# who: (is operator, units coordinated)
WHO: dict[str, tuple[bool, frozenset[str]]] = {
    "operator": (True, frozenset()),
    "coordinator of R": (False, frozenset({"R"})),
    "coordinator of A": (False, frozenset({"A"})),
    "coordinator of S": (False, frozenset({"S"})),
    "administrator": (False, frozenset()),
}
READ, CREATE, APPOINT, SCHOOLS = (
    UnitAction.READ,
    UnitAction.CREATE_UNIT,
    UnitAction.APPOINT,
    UnitAction.MANAGE_SCHOOLS,
)

# who × target × action (× kind of a new unit) → refusal (None: allowed)
TABLE: list[tuple[str, str | None, UnitAction, rules.UnitKind | None, Message | None]] = [
    # The operator: everything, in the tree's order.
    ("operator", None, CREATE, "region", None),
    ("operator", "R", CREATE, "municipality", None),
    ("operator", "R", APPOINT, None, None),
    ("operator", "B", READ, None, None),
    ("operator", None, SCHOOLS, None, None),
    ("operator", "R", CREATE, "region", UNIT_KIND_ORDER),
    ("operator", "A", CREATE, "municipality", UNIT_KIND_ORDER),
    # A regional coordinator: their region and everything in it.
    ("coordinator of R", None, CREATE, "region", UNIT_TOP_LEVEL),
    ("coordinator of R", "R", CREATE, "municipality", None),
    ("coordinator of R", "R", READ, None, None),
    ("coordinator of R", "A", READ, None, None),
    ("coordinator of R", "B", READ, None, None),
    ("coordinator of R", "A", APPOINT, None, None),
    ("coordinator of R", "R", APPOINT, None, UNIT_APPOINT_ABOVE),
    ("coordinator of R", "A", SCHOOLS, None, None),
    ("coordinator of R", "S", READ, None, UNIT_NOT_YOURS),
    ("coordinator of R", "S", APPOINT, None, UNIT_APPOINT_ABOVE),
    ("coordinator of R", "S", CREATE, "municipality", UNIT_NOT_YOURS),
    ("coordinator of R", None, SCHOOLS, None, OPERATOR_ONLY),
    # A municipal coordinator of A: A only — not B, not the region.
    ("coordinator of A", "A", READ, None, None),
    ("coordinator of A", "A", SCHOOLS, None, None),
    ("coordinator of A", "A", APPOINT, None, UNIT_APPOINT_ABOVE),
    ("coordinator of A", "A", CREATE, "municipality", UNIT_KIND_ORDER),
    ("coordinator of A", "B", READ, None, UNIT_NOT_YOURS),
    ("coordinator of A", "B", SCHOOLS, None, UNIT_NOT_YOURS),
    ("coordinator of A", "B", APPOINT, None, UNIT_APPOINT_ABOVE),
    ("coordinator of A", "R", READ, None, UNIT_NOT_YOURS),
    ("coordinator of A", "R", SCHOOLS, None, UNIT_NOT_YOURS),
    ("coordinator of A", "R", CREATE, "municipality", UNIT_NOT_YOURS),
    # Another region's coordinator: nothing of R.
    ("coordinator of S", "R", READ, None, UNIT_NOT_YOURS),
    ("coordinator of S", "A", SCHOOLS, None, UNIT_NOT_YOURS),
    ("coordinator of S", "S", READ, None, None),
    # Someone who coordinates nothing (a school's administrator): no unit at all.
    ("administrator", "A", READ, None, UNIT_NOT_YOURS),
    ("administrator", "A", SCHOOLS, None, UNIT_NOT_YOURS),
    ("administrator", "A", APPOINT, None, UNIT_APPOINT_ABOVE),
    ("administrator", None, CREATE, "region", UNIT_TOP_LEVEL),
    ("administrator", None, SCHOOLS, None, OPERATOR_ONLY),
]


@pytest.mark.parametrize(("who", "target", "action", "kind", "expected"), TABLE)
def test_unit_rules_table(
    who: str,
    target: str | None,
    action: UnitAction,
    kind: rules.UnitKind | None,
    expected: Message | None,
) -> None:
    is_operator, coordinates = WHO[who]
    where = place(target) if target is not None else None
    assert rules.unit_refusal(is_operator, coordinates, where, action, kind) == expected


def test_unit_room_power_table() -> None:
    """Coordinators post in their unit's rooms; coordinators below and administrators of
    schools below read; nobody else is there."""
    rooms = [
        SchoolRoom(f"!{u}_{k.value}", k, unit_id=u)
        for u in PARENTS
        for k in (RoomKind.UNIT_SPACE, RoomKind.UNIT_ANNOUNCEMENTS)
    ]

    def person(coordinates: set[str], school_units: set[str]) -> Person:
        reads = rules.units_read(PARENTS, coordinates, school_units)
        return Person("@p:x", {}, frozenset(coordinates), reads)

    def powers(p: Person) -> dict[str, int]:
        return {
            room_id.removeprefix("!").split("_")[0]: power
            for room_id, power in rules.expected_unit_rooms(p, rooms).items()
            if room_id.endswith(RoomKind.UNIT_ANNOUNCEMENTS.value)
        }

    assert powers(person({"R"}, set())) == {"R": 100}
    assert powers(person({"A"}, set())) == {"A": 100, "R": 0}
    assert powers(person(set(), {"A"})) == {"A": 0, "R": 0}
    assert powers(person(set(), {"S"})) == {"S": 0}
    assert powers(person({"A"}, {"A"})) == {"A": 100, "R": 0}
    assert powers(person(set(), set())) == {}
    # The spaces follow their announcement rooms.
    assert rules.expected_unit_rooms(person(set(), {"A"}), rooms).keys() == {
        "!A_unit_space",
        "!A_unit_announcements",
        "!R_unit_space",
        "!R_unit_announcements",
    }
    # Joining by oneself: the same answer.
    outsider = person(set(), {"B"})
    assert rules.may_join(outsider, rooms[1]) is None  # R's announcements: B is in R
    assert rules.may_join(outsider, rooms[3]) == rules.JOIN_NOT_YOURS  # A's


# -- the chain against a real Synapse -------------------------------------------


def joined(hs: RunningHomeserver, user: User) -> set[str]:
    answer = hs.request("GET", "/_matrix/client/v3/joined_rooms", None, user.access_token)
    return set(answer["joined_rooms"])


def send(hs: RunningHomeserver, user: User, room_id: str, text: str) -> Any:
    path = (
        f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/send/m.room.message/"
        f"{secrets.token_hex(6)}"
    )
    return hs.request("PUT", path, {"msgtype": "m.text", "body": text}, user.access_token)


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def test_coordinators_chain(synapse: RunningHomeserver) -> None:
    hs = synapse
    operator = hs.register("operator", admin=True)
    coord_r, coord_a, coord_b = (hs.register(n) for n in ("coord-r", "coord-a", "coord-b"))
    admin_a, admin_b, stranger = (hs.register(n) for n in ("admin-a", "admin-b", "stranger"))

    # The operator: a region and its coordinator.
    region = api(hs, "POST", "/units", operator, {"kind": "region", "name": "Калининградская"})
    r = region["unit_id"]
    assert region["announcements_room_id"] and region["coordinators"] == []
    assert api_error(hs, "POST", "/units", coord_r, {"kind": "region", "name": "X"}).status == 403
    api(hs, "PUT", f"/units/{r}/coordinators/{q(coord_r.user_id)}", operator)

    # The regional coordinator: municipalities and their coordinators.
    mun_a = api(
        hs, "POST", "/units", coord_r, {"kind": "municipality", "name": "Гурьевск", "parent_id": r}
    )
    mun_b = api(
        hs,
        "POST",
        "/units",
        coord_r,
        {"kind": "municipality", "name": "Зеленоградск", "parent_id": r},
    )
    a, b = mun_a["unit_id"], mun_b["unit_id"]
    api(hs, "PUT", f"/units/{a}/coordinators/{q(coord_a.user_id)}", coord_r)
    api(hs, "PUT", f"/units/{b}/coordinators/{q(coord_b.user_id)}", coord_r)
    # Not their peers, not themselves.
    err = api_error(hs, "PUT", f"/units/{r}/coordinators/{q(stranger.user_id)}", coord_r)
    assert err.status == 403
    assert err.body["org.parta.message"]["id"] == "roster.unit_appoint_above"

    # Municipal coordinators: schools in their municipality, with administrators.
    school_a = api(
        hs,
        "POST",
        "/schools",
        coord_a,
        {"name": "Школа А", "unit_id": a, "administrators": [admin_a.user_id]},
    )
    school_b = api(
        hs,
        "POST",
        "/schools",
        coord_b,
        {"name": "Школа Б", "unit_id": b, "administrators": [admin_b.user_id]},
    )
    sa, sb = school_a["school_id"], school_b["school_id"]

    # Each sees exactly their subtree.
    def units_of(user: User) -> set[str]:
        return {u["unit_id"] for u in api(hs, "GET", "/units", user)["units"]}

    assert {r, a, b} <= units_of(operator)
    assert units_of(coord_r) == {r, a, b}
    assert units_of(coord_a) == {a}
    assert units_of(coord_b) == {b}
    assert units_of(admin_a) == set()
    unit_a = api(hs, "GET", f"/units/{a}", coord_a)
    assert unit_a["coordinators"] == [coord_a.user_id]
    assert unit_a["schools"] == [{"school_id": sa, "name": "Школа А"}]
    assert unit_a["parent_id"] == r
    schools_a = {s["school_id"] for s in api(hs, "GET", "/schools", coord_a)["schools"]}
    assert schools_a == {sa}
    schools_r = {s["school_id"] for s in api(hs, "GET", "/schools", coord_r)["schools"]}
    assert schools_r == {sa, sb}

    # A coordinator of A can neither read nor change B or its schools, nor the region.
    refused: list[tuple[str, str, Any]] = [
        ("GET", f"/units/{b}", None),
        ("GET", f"/units/{r}", None),
        ("PUT", f"/units/{b}/coordinators/{q(stranger.user_id)}", None),
        ("DELETE", f"/units/{b}/coordinators/{q(coord_b.user_id)}", None),
        ("POST", "/units", {"kind": "municipality", "name": "Ещё", "parent_id": r}),
        ("POST", "/schools", {"name": "Чужая", "unit_id": b}),
        ("POST", "/schools", {"name": "Без района"}),
        ("GET", f"/schools/{sb}", None),
        ("PATCH", f"/schools/{sb}", {"name": "Переименована"}),
        ("PUT", f"/schools/{sb}/members/{q(stranger.user_id)}", {"roles": ["teacher"]}),
        ("GET", f"/schools/{sb}/members", None),
    ]
    for method, path, body in refused:
        err = api_error(hs, method, path, coord_a, body)
        assert err.status == 403, (method, path, err.status)
        assert err.body["errcode"] == "M_FORBIDDEN"
    # …but manages their own school; the regional coordinator manages both.
    api(hs, "PATCH", f"/schools/{sa}", coord_a, {"address": "ул. Мира, 1"})
    api(hs, "PATCH", f"/schools/{sb}", coord_r, {"address": "ул. Моря, 2"})
    teacher = hs.register("teacher")
    api(hs, "PUT", f"/schools/{sa}/members/{q(teacher.user_id)}", coord_a, {"roles": ["teacher"]})
    assert api_error(hs, "GET", f"/units/{a}", admin_a).status == 403
    assert api_error(hs, "GET", f"/units/nope_{secrets.token_hex(2)}", coord_r).status == 404

    # Matrix: coordinators' spaces and announcement rooms.
    ann_r = region["announcements_room_id"]
    ann_a, ann_b = mun_a["announcements_room_id"], mun_b["announcements_room_id"]
    assert {ann_r, region["space_room_id"]} <= joined(hs, coord_r)
    assert not {ann_a, ann_b} & joined(hs, coord_r)
    assert {ann_a, ann_r, mun_a["space_room_id"]} <= joined(hs, coord_a)
    assert ann_b not in joined(hs, coord_a)
    assert {ann_a, ann_r} <= joined(hs, admin_a)
    assert ann_b not in joined(hs, admin_a)
    assert {ann_b, ann_r} <= joined(hs, admin_b)
    assert not {ann_a, ann_b, ann_r} & joined(hs, teacher)
    # Coordinators of the unit post; those below read only.
    send(hs, coord_r, ann_r, "Совещание директоров в пятницу")
    send(hs, coord_a, ann_a, "Отчёты до среды")
    for who, room in ((coord_a, ann_r), (admin_a, ann_a), (admin_a, ann_r)):
        with pytest.raises(HttpError) as refused_send:
            send(hs, who, room, "нельзя")
        assert refused_send.value.status == 403, (who.user_id, room)
    messages = hs.request(
        "GET",
        f"/_matrix/client/v3/rooms/{q(ann_a)}/messages?dir=b&limit=20",
        None,
        admin_a.access_token,
    )
    bodies = [e["content"].get("body") for e in messages["chunk"] if e["type"] == "m.room.message"]
    assert bodies == ["Отчёты до среды"]
    # Nobody joins another unit's room by themselves.
    status = api_error_client(hs, "POST", f"/_matrix/client/v3/rooms/{q(ann_a)}/join", admin_b)
    assert status == 403

    # Removals: rooms follow.
    api(hs, "DELETE", f"/units/{a}/coordinators/{q(coord_a.user_id)}", coord_r)
    assert not {ann_a, ann_r, mun_a["space_room_id"]} & joined(hs, coord_a)
    assert api_error(hs, "GET", f"/units/{a}", coord_a).status == 403
    assert api_error(hs, "PATCH", f"/schools/{sa}", coord_a, {"address": "x"}).status == 403
    assert (
        api_error(hs, "DELETE", f"/units/{a}/coordinators/{q(coord_a.user_id)}", coord_r).status
        == 404
    )
    api(hs, "DELETE", f"/schools/{sa}/members/{q(admin_a.user_id)}", coord_r)
    assert not {ann_a, ann_r} & joined(hs, admin_a)
    assert api(hs, "GET", f"/units/{a}", coord_r)["coordinators"] == []


def api_error_client(hs: RunningHomeserver, method: str, path: str, user: User) -> int:
    try:
        hs.request(method, path, {}, user.access_token)
    except HttpError as e:
        return e.status
    return 200
