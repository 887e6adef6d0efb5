"""People appointed by name, who have no account yet (issue 11): the module makes the
account as the import makes its new people's, appoints them and answers a one-time
sign-in code — a coordinator of a unit, an administrator or teacher of a school. Only
who may appoint may; a refusal leaves no account behind; the code signs the person in.
The names table first, then the routes against a real Synapse."""

import json
import secrets
import urllib.parse
from typing import Any

import pytest

from devtools.homeserver import HttpError
from parta_common.person_names import PersonName, login_stem, person_name
from tests.harness import RunningHomeserver, User
from tests.privacy_people import rows
from tests.roster_helpers import api, api_error, build_school, wait_for_rooms
from tests.test_first_sign_in import sign_in

NAMES: list[tuple[tuple[str, str, str], PersonName | None, str | None]] = [
    (("Петрова", "Анна", ""), PersonName("Петрова", "Анна"), "anna.petrova"),
    (
        ("  Щукина ", "Юлия-Мария", "Ильинична "),
        PersonName("Щукина", "Юлия-Мария", "Ильинична"),
        "iuliia-mariia.shchukina",
    ),
    (("Подъячий", "Дарья", ""), PersonName("Подъячий", "Дарья"), "daria.podiachiy"),
    (("Ёлкин", "Фёдор", ""), PersonName("Ёлкин", "Фёдор"), "fedor.elkin"),
    (("Müller", "José", ""), PersonName("Müller", "José"), "jose.muller"),
    (("Ковальчук", "Олесь", ""), PersonName("Ковальчук", "Олесь"), "oles.kovalchuk"),
    # Nothing Latin or Cyrillic: still an account name (a suffix makes it unique).
    (("李", "明", ""), PersonName("李", "明"), "person"),
    # A surname and a given name, each with a letter, or no account.
    (("Петрова", "", ""), None, None),
    (("", "Анна", ""), None, None),
    (("Петрова", " 1 ", ""), None, None),
]


@pytest.mark.parametrize(("parts", "name", "stem"), NAMES)
def test_names_and_their_logins(
    parts: tuple[str, str, str], name: PersonName | None, stem: str | None
) -> None:
    got = person_name(*parts)
    assert got == name
    if got is not None:
        assert login_stem(got) == stem
        assert got.display_name == " ".join(p.strip() for p in parts if p.strip())


def accounts_like(hs: RunningHomeserver, localpart: str) -> list[str]:
    return [
        str(r[0]) for r in rows(hs, "SELECT name FROM users WHERE name LIKE ?", (f"@{localpart}%",))
    ]


def audit_of(hs: RunningHomeserver, target: str) -> list[tuple[str, str]]:
    found = rows(
        hs, "SELECT actor, action FROM parta_audit WHERE target = ? ORDER BY seq", (target,)
    )
    return [(str(a), str(b)) for a, b in found]


def fresh() -> str:
    """A surname no other test of the session uses (its login is unique too)."""
    return f"Test{secrets.token_hex(3)}"


def message_id(error: Any) -> str:
    return str(error.body["org.parta.message"]["id"])


def test_a_coordinator_appointed_by_name_signs_in_with_the_code(
    synapse: RunningHomeserver,
) -> None:
    operator = synapse.register("op", admin=True)
    region = api(synapse, "POST", "/units", operator, {"kind": "region", "name": "Энская область"})
    path = f"/units/{region['unit_id']}/coordinators"
    made = api(synapse, "POST", path, operator, {"family_name": "Петрова", "given_name": "Анна"})
    assert made["user_id"].startswith("@anna.petrova")
    assert made["display_name"] == "Петрова Анна"
    code = made["code"]
    assert len(code) == 14 and code.count("-") == 2
    assert api(synapse, "GET", f"/units/{region['unit_id']}", operator)["coordinators"] == [
        made["user_id"]
    ]
    assert audit_of(synapse, made["user_id"]) == [
        (operator.user_id, "account.created"),
        (operator.user_id, "unit.coordinator"),
    ]

    # She signs in with the code as the password and sees her region.
    anna = sign_in(synapse, made["user_id"], code)
    wait_for_rooms(synapse, anna)
    me = api(synapse, "GET", "/me", anna)
    assert me["coordinates"] == [region["unit_id"]]
    assert [u["name"] for u in api(synapse, "GET", "/units", anna)["units"]] == ["Энская область"]
    profile = synapse.request(
        "GET", f"/_matrix/client/v3/profile/{urllib.parse.quote(made['user_id'])}", None, None
    )
    assert profile["displayname"] == "Петрова Анна"
    # She is in the region's coordinators' space and announcement room.
    joined = synapse.request("GET", "/_matrix/client/v3/joined_rooms", None, anna.access_token)
    assert region["space_room_id"] in joined["joined_rooms"]
    assert region["announcements_room_id"] in joined["joined_rooms"]

    # A namesake gets an account of her own (a suffix), the first keeps hers.
    again = api(synapse, "POST", path, operator, {"family_name": "Петрова", "given_name": "Анна"})
    assert again["user_id"] != made["user_id"]
    assert again["user_id"].startswith("@anna.petrova-")
    sign_in(synapse, made["user_id"], code)

    # She appoints in the municipality she makes, by name too; not in the region itself.
    municipality = api(
        synapse,
        "POST",
        "/units",
        anna,
        {"kind": "municipality", "name": "Энский район", "parent_id": region["unit_id"]},
    )
    family = fresh()
    below = api(
        synapse,
        "POST",
        f"/units/{municipality['unit_id']}/coordinators",
        anna,
        {"family_name": family, "given_name": "Борис", "middle_name": "Ильич"},
    )
    assert below["display_name"] == f"{family} Борис Ильич"
    assert below["user_id"].startswith(f"@boris.{family.lower()}")
    family = fresh()
    refused = api_error(synapse, "POST", path, anna, {"family_name": family, "given_name": "Вера"})
    assert refused.status == 403
    assert message_id(refused) == "roster.unit_appoint_above"
    assert accounts_like(synapse, f"vera.{family.lower()}") == []


def test_a_refused_appointment_by_name_leaves_no_account(synapse: RunningHomeserver) -> None:
    operator = synapse.register("op", admin=True)
    nobody = synapse.register("nobody")
    region = api(synapse, "POST", "/units", operator, {"kind": "region", "name": "Другая область"})
    path = f"/units/{region['unit_id']}/coordinators"
    family = fresh()
    body = {"family_name": family, "given_name": "Пётр"}
    stem = f"petr.{family.lower()}"

    refused = api_error(synapse, "POST", path, nobody, body)
    assert refused.status == 403 and refused.body["errcode"] == "M_FORBIDDEN"
    missing = api_error(synapse, "POST", "/units/unit_missing/coordinators", operator, body)
    assert missing.status == 404 and message_id(missing) == "roster.unit_not_found"
    for bad in (
        {"family_name": family, "given_name": "  "},
        {"family_name": "", "given_name": "Пётр"},
        {"family_name": family, "given_name": "Пётр", "email": "x@example.org"},
        {"family_name": family, "given_name": "Пётр" * 30},
    ):
        error = api_error(synapse, "POST", path, operator, bad)
        assert error.status == 400, bad
        assert error.body["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON")
        assert " / " in error.body["error"]  # Russian and English
    blank = api_error(synapse, "POST", path, operator, {"family_name": family, "given_name": " "})
    assert message_id(blank) == "roster.person_name_needed"
    assert blank.body["errcode"] == "M_INVALID_PARAM"
    assert accounts_like(synapse, stem) == []
    assert api(synapse, "GET", f"/units/{region['unit_id']}", operator)["coordinators"] == []


def test_an_administrator_adds_a_teacher_by_name(synapse: RunningHomeserver) -> None:
    operator = synapse.register("op", admin=True)
    school = build_school(synapse, operator, "Школа № 12")
    path = f"/schools/{school.school_id}/members"
    class_b = school.class_b["class_id"]
    family = fresh()
    made = api(
        synapse,
        "POST",
        path,
        school.admin,
        {"family_name": family, "given_name": "Мария", "roles": ["teacher"], "classes": [class_b]},
    )
    assert made["user_id"].startswith(f"@mariia.{family.lower()}")
    assert made["roles"] == ["teacher"] and made["teaches"] == [class_b]
    assert made["signed_in"] is False
    assert audit_of(synapse, made["user_id"]) == [
        (school.admin.user_id, "account.created"),
        (school.admin.user_id, "member.put"),
    ]
    listed = api(synapse, "GET", f"{path}?role=teacher", school.admin)["members"]
    mine = next(m for m in listed if m["user_id"] == made["user_id"])
    assert mine["display_name"] == f"{family} Мария" and mine["signed_in"] is False

    # Her first sign-in with the code joins her rooms.
    teacher = sign_in(synapse, made["user_id"], made["code"])
    wait_for_rooms(synapse, teacher)
    joined = synapse.request("GET", "/_matrix/client/v3/joined_rooms", None, teacher.access_token)
    assert school.class_b["rooms"]["class_chat"] in joined["joined_rooms"]
    assert school.rooms["staff"] in joined["joined_rooms"]

    # An administrator too, by the operator (a manager of every school).
    family = fresh()
    admin = api(
        synapse,
        "POST",
        path,
        operator,
        {"family_name": family, "given_name": "Олег", "roles": ["administrator"]},
    )
    assert admin["roles"] == ["administrator"]


def test_adding_by_name_is_refused_with_no_account_left(synapse: RunningHomeserver) -> None:
    operator = synapse.register("op", admin=True)
    school = build_school(synapse, operator, "Школа № 13")
    path = f"/schools/{school.school_id}/members"
    family = fresh()
    stem = f"olga.{family.lower()}"
    body: dict[str, Any] = {"family_name": family, "given_name": "Ольга", "roles": ["teacher"]}

    teacher = api_error(synapse, "POST", path, school.teacher, body)
    assert teacher.status == 403 and message_id(teacher) == "roster.not_school_admin"
    pupil = api_error(synapse, "POST", path, school.admin, {**body, "roles": ["student"]})
    assert pupil.status == 400 and message_id(pupil) == "roster.new_account_staff_only"
    missing = api_error(synapse, "POST", path, school.admin, {**body, "classes": ["cls_missing"]})
    assert missing.status == 400 and message_id(missing) == "roster.class_not_found"
    api(
        synapse,
        "POST",
        f"/schools/{school.school_id}/classes/{school.class_b['class_id']}/archive",
        school.admin,
        {},
    )
    archived = api_error(
        synapse, "POST", path, school.admin, {**body, "classes": [school.class_b["class_id"]]}
    )
    assert archived.status == 400 and message_id(archived) == "roster.class_archived"
    nameless = api_error(synapse, "POST", path, school.admin, {**body, "given_name": "—"})
    assert nameless.status == 400 and message_id(nameless) == "roster.person_name_needed"
    none = api_error(synapse, "POST", path, school.admin, {**body, "roles": []})
    assert none.status == 400 and none.body["errcode"] == "M_BAD_JSON"
    gone = api_error(synapse, "POST", "/schools/sch_missing/members", school.admin, body)
    assert gone.status == 404
    assert accounts_like(synapse, stem) == []
    listed = api(synapse, "GET", path, school.admin)["members"]
    assert not any(m["display_name"].startswith(family) for m in listed)


def test_someone_with_an_account_is_still_appointed_by_id(synapse: RunningHomeserver) -> None:
    """The Matrix ID route is unchanged beside the new one."""
    operator = synapse.register("op", admin=True)
    region = api(synapse, "POST", "/units", operator, {"kind": "region", "name": "Третья область"})
    person: User = synapse.register("regional")
    quoted = urllib.parse.quote(person.user_id, safe="")
    done = api(synapse, "PUT", f"/units/{region['unit_id']}/coordinators/{quoted}", operator, {})
    assert done == {"unit_id": region["unit_id"], "user_id": person.user_id}


def test_a_coordinator_who_lost_the_code_gets_a_new_one_from_above(
    synapse: RunningHomeserver,
) -> None:
    """``POST /units/{id}/coordinators/{user}/sign_in_code``: whoever may appoint the
    unit's coordinators (the operator, a coordinator of the unit above) makes a new code;
    the old one stops working, the new one signs in; audited. A coordinator of a sibling
    unit and a school's administrator are refused (403, in Russian and English)."""
    operator = synapse.register("op", admin=True)
    region = api(synapse, "POST", "/units", operator, {"kind": "region", "name": "Третья область"})
    rid = region["unit_id"]
    head = api(
        synapse,
        "POST",
        f"/units/{rid}/coordinators",
        operator,
        {"family_name": fresh(), "given_name": "Анна"},
    )
    anna = sign_in(synapse, head["user_id"], head["code"])
    units = [
        api(synapse, "POST", "/units", anna, {"kind": "municipality", "name": n, "parent_id": rid})
        for n in ("Первый район", "Второй район")
    ]
    first, second = (u["unit_id"] for u in units)
    lost = api(
        synapse,
        "POST",
        f"/units/{first}/coordinators",
        anna,
        {"family_name": fresh(), "given_name": "Борис"},
    )
    sibling = api(
        synapse,
        "POST",
        f"/units/{second}/coordinators",
        anna,
        {"family_name": fresh(), "given_name": "Вера"},
    )
    vera = sign_in(synapse, sibling["user_id"], sibling["code"])
    school = build_school(synapse, operator, "Школа № 12")
    path = f"/units/{first}/coordinators/{lost['user_id']}/sign_in_code"

    # Refused: the sibling unit's coordinator, a school's administrator, Борис himself.
    for who, message in (
        (vera, "roster.unit_appoint_above"),
        (school.admin, "roster.unit_appoint_above"),
    ):
        refused = api_error(synapse, "POST", path, who, {})
        assert refused.status == 403 and refused.body["errcode"] == "M_FORBIDDEN"
        assert message_id(refused) == message, refused.body
        assert " / " in refused.body["error"]  # Russian and English
    boris = sign_in(synapse, lost["user_id"], lost["code"])
    assert api_error(synapse, "POST", path, boris, {}).status == 403

    # The region's coordinator makes a new code: the old one no longer signs in.
    made = api(synapse, "POST", path, anna, {})
    assert made["unit_id"] == first and made["user_id"] == lost["user_id"]
    assert made["code"] != lost["code"] and len(made["code"]) == 14
    with pytest.raises(HttpError) as old:
        sign_in(synapse, lost["user_id"], lost["code"])
    assert old.value.status == 403
    sign_in(synapse, lost["user_id"], made["code"])
    # And the operator, once more: the previous new code stops working too.
    again = api(synapse, "POST", path, operator, {})
    with pytest.raises(HttpError):
        sign_in(synapse, lost["user_id"], made["code"])
    sign_in(synapse, lost["user_id"], again["code"])
    assert audit_of(synapse, lost["user_id"])[-2:] == [
        (anna.user_id, "new_sign_in_code"),
        (operator.user_id, "new_sign_in_code"),
    ]
    details = rows(
        synapse,
        "SELECT school_id, details FROM parta_audit WHERE target = ? AND action = ?",
        (lost["user_id"], "new_sign_in_code"),
    )
    assert [(s, json.loads(d)) for s, d in details] == [(None, {"unit_id": first})] * 2

    # Not a coordinator of this unit: 404; a coordinator with an account of their own
    # (no code to replace): 409.
    elsewhere = f"/units/{first}/coordinators/{sibling['user_id']}/sign_in_code"
    assert api_error(synapse, "POST", elsewhere, anna, {}).status == 404
    own = synapse.register("own")
    api(synapse, "PUT", f"/units/{first}/coordinators/{own.user_id}", anna, {})
    conflict = api_error(
        synapse, "POST", f"/units/{first}/coordinators/{own.user_id}/sign_in_code", anna, {}
    )
    assert conflict.status == 409 and message_id(conflict) == "roster.code_not_imported"
