"""Ways around the roles through what a school does to a whole account (the review of
session 7): a new sign-in code hands the account over, an erasure may take it away. A
school's administrator (or a unit's coordinator) must not reach, through a person who
is also theirs, what belongs to another school, a unit they do not run, or the server.
Each way is tried against a real Synapse as the attacker would try it."""

import time
import urllib.parse
from typing import Any

import pytest

from devtools.homeserver import HttpError
from synapse_module.privacy.rules import scope_of
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import School, api, api_error, build_school
from tests.test_appoint_by_name import fresh, message_id
from tests.test_first_sign_in import sign_in


def whoami(hs: RunningHomeserver, user: User) -> str | None:
    """The account's user ID, or None when its session no longer works."""
    try:
        answer = hs.request("GET", "/_matrix/client/v3/account/whoami", None, user.access_token)
    except HttpError:
        return None
    found: str = answer["user_id"]
    return found


def can_sign_in(hs: RunningHomeserver, user: User) -> bool:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": user.password,
    }
    try:
        hs.request("POST", "/_matrix/client/v3/login", body)
    except HttpError:
        return False
    return True


def erased(hs: RunningHomeserver, school_id: str, admin: User, user_id: str) -> dict[str, Any]:
    """An administrator's erasure of ``user_id`` in the school, followed to ``done``."""
    quoted = urllib.parse.quote(user_id, safe="")
    started = api(hs, "POST", f"/schools/{school_id}/members/{quoted}/erase", admin, {})
    deadline = time.monotonic() + 120
    path = f"/schools/{school_id}/erasures/{started['erasure_id']}"
    while (status := api(hs, "GET", path, admin))["status"] != "done":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    done: dict[str, Any] = status
    return done


@pytest.fixture(scope="module")
def operator(synapse: RunningHomeserver) -> User:
    return synapse.register("op", admin=True)


# Two schools for the file (each test adds the people and units it tries with): a built
# school is about forty requests, eight registrations and their rooms' joins. Tests that
# need a parent named in A only, or take a school's teacher off, build their own.
@pytest.fixture(scope="module")
def a(synapse: RunningHomeserver, operator: User) -> School:
    return build_school(synapse, operator, "Школа А")


@pytest.fixture(scope="module")
def b(synapse: RunningHomeserver, operator: User) -> School:
    return build_school(synapse, operator, "Школа Б")


@pytest.mark.parametrize(
    ("schools", "units", "runs_server", "made_by_parta", "scope"),
    [
        (False, False, False, True, "account"),  # nothing holds them: the account goes
        (True, False, False, True, "school"),  # another school still holds them
        (False, True, False, True, "school"),  # they coordinate a unit
        (False, False, True, True, "school"),  # a server operator's or Parta's own account
        (False, False, False, False, "school"),  # the person's own account, not a school's
    ],
)
def test_what_an_erasure_takes(
    schools: bool, units: bool, runs_server: bool, made_by_parta: bool, scope: str
) -> None:
    assert scope_of(schools, units, runs_server, made_by_parta) == scope


def test_a_school_does_not_make_a_sign_in_code_for_an_account_held_elsewhere(
    synapse: RunningHomeserver, operator: User, a: School, b: School
) -> None:
    """School A's administrator enrols, as a parent in A, a teacher school B added by name
    (who has only B's sign-in code yet) and a regional coordinator appointed by name,
    then asks A for a new sign-in code for each: refused (403, Russian and English), so
    A never signs in as B's teacher or as the region. Whoever manages all the account
    holds (the operator here) still makes one, and it signs in."""
    b_teacher = api(
        synapse,
        "POST",
        f"/schools/{b.school_id}/members",
        b.admin,
        {"family_name": fresh(), "given_name": "Мария", "roles": ["teacher"]},
    )
    region = api(synapse, "POST", "/units", operator, {"kind": "region", "name": "Область"})
    head = api(
        synapse,
        "POST",
        f"/units/{region['unit_id']}/coordinators",
        operator,
        {"family_name": fresh(), "given_name": "Анна"},
    )
    for person in (b_teacher, head):
        user_id = person["user_id"]
        quoted = urllib.parse.quote(user_id, safe="")
        api(
            synapse,
            "PUT",
            f"/schools/{a.school_id}/members/{quoted}",
            a.admin,
            {"roles": ["parent"], "children": [a.students[0].user_id]},
        )
        path = f"/schools/{a.school_id}/members/{quoted}/sign_in_code"
        refused = api_error(synapse, "POST", path, a.admin, {})
        assert refused.status == 403 and refused.body["errcode"] == "M_FORBIDDEN", refused.body
        assert message_id(refused) == "roster.sign_in_code_not_whole"
        assert " / " in refused.body["error"]  # Russian and English
        # The code the person was given still signs them in: nothing was replaced.
        sign_in(synapse, user_id, person["code"])

    # B's administrator does not manage A either: the same refusal for B's teacher.
    quoted = urllib.parse.quote(b_teacher["user_id"], safe="")
    refused = api_error(
        synapse, "POST", f"/schools/{b.school_id}/members/{quoted}/sign_in_code", b.admin, {}
    )
    assert refused.status == 403 and message_id(refused) == "roster.sign_in_code_not_whole"
    # The operator manages everything the account holds: a new code, and it signs in.
    made = api(
        synapse, "POST", f"/schools/{a.school_id}/members/{quoted}/sign_in_code", operator, {}
    )
    sign_in(synapse, b_teacher["user_id"], made["code"])

    # A coordinator of the region appoints in its municipality; the municipality's
    # coordinator who is also a parent in school A: the region's coordinator does not
    # manage A, so no code from the unit's route either.
    anna = sign_in(synapse, head["user_id"], head["code"])
    town = api(
        synapse,
        "POST",
        "/units",
        anna,
        {"kind": "municipality", "name": "Район", "parent_id": region["unit_id"]},
    )
    below = api(
        synapse,
        "POST",
        f"/units/{town['unit_id']}/coordinators",
        anna,
        {"family_name": fresh(), "given_name": "Борис"},
    )
    code_path = f"/units/{town['unit_id']}/coordinators/{below['user_id']}/sign_in_code"
    assert api(synapse, "POST", code_path, anna, {})["user_id"] == below["user_id"]
    quoted = urllib.parse.quote(below["user_id"], safe="")
    api(
        synapse,
        "PUT",
        f"/schools/{a.school_id}/members/{quoted}",
        a.admin,
        {"roles": ["parent"], "children": [a.students[1].user_id]},
    )
    refused = api_error(synapse, "POST", code_path, anna, {})
    assert refused.status == 403 and message_id(refused) == "roster.sign_in_code_not_whole"


def test_a_schools_erasure_never_takes_an_account_that_runs_the_server(
    synapse: RunningHomeserver, a: School
) -> None:
    """A school's administrator enrols the server's operator as a parent in their school,
    then erases them there: the school's part is done (they are out of its roster), but
    the operator's account stays, as it stays for a coordinator."""
    school = a
    other_operator = synapse.register("op2", admin=True)
    quoted = urllib.parse.quote(other_operator.user_id, safe="")
    api(
        synapse,
        "PUT",
        f"/schools/{school.school_id}/members/{quoted}",
        school.admin,
        {"roles": ["parent"], "children": [school.students[2].user_id]},
    )
    done = erased(synapse, school.school_id, school.admin, other_operator.user_id)
    assert done["scope"] == "school", done
    assert whoami(synapse, other_operator) == other_operator.user_id
    assert can_sign_in(synapse, other_operator)
    members = api(synapse, "GET", f"/schools/{school.school_id}/members", school.admin)
    assert other_operator.user_id not in {m["user_id"] for m in members["members"]}


def test_parta_own_account_is_nobody_on_a_roster(
    synapse: RunningHomeserver, operator: User, a: School
) -> None:
    """Parta's service account runs every school's rooms (their creator, the sender of
    their state and of the bot's notices). Put on a roster — a parent in a school, a
    unit's coordinator — a school's erasure would then redact everything it ever sent
    in the school's rooms. Refused wherever a person joins a roster (400, Russian and
    English), and the school's rooms still take its roster's changes."""
    school = a
    service = "@parta:localhost"
    quoted = urllib.parse.quote(service, safe="")
    sid = school.school_id
    body = {"roles": ["parent"], "children": [school.students[0].user_id]}
    attempts: list[tuple[str, str, User, Any]] = [
        ("PUT", f"/schools/{sid}/members/{quoted}", school.admin, body),
        ("POST", f"/schools/{sid}/members/batch", school.admin, {"members": [
            {"user_id": service, **body}]}),
        ("POST", "/schools", operator, {"name": "Школа Д", "administrators": [service]}),
    ]  # fmt: skip
    region = api(synapse, "POST", "/units", operator, {"kind": "region", "name": "Край"})
    attempts.append(("PUT", f"/units/{region['unit_id']}/coordinators/{quoted}", operator, {}))
    for method, path, who, payload in attempts:
        refused = api_error(synapse, method, path, who, payload)
        assert refused.status == 400, (path, refused.body)
        # (a batch names the entry, and its message is the text alone)
        assert "is the service account of Parta" in refused.body["error"], refused.body
        assert " / " in refused.body["error"]  # Russian and English
    members = api(synapse, "GET", f"/schools/{sid}/members", school.admin)["members"]
    assert service not in {m["user_id"] for m in members}
    assert api(synapse, "GET", f"/units/{region['unit_id']}", operator)["coordinators"] == []
    # The school's rooms still follow its roster: a new student joins 7Б's chat.
    newcomer = synapse.register("student")
    api(
        synapse,
        "PUT",
        f"/schools/{sid}/members/{newcomer.user_id}",
        school.admin,
        {"roles": ["student"], "classes": [school.class_b["class_id"]]},
    )


def test_a_parent_records_consents_only_in_the_school_that_names_them_the_parent(
    synapse: RunningHomeserver, a: School, b: School
) -> None:
    """What holds (tried as a parent would): a child in two schools, their parent named so
    in school A only, who is a parent of another child in B. In B they neither record,
    read nor export the child's (403); a child of B only is not A's (404); in A they
    record with the child's ID encoded (``%40…%3A…``) and it reads the same plainly; a
    body claiming a paper form is refused (400); the child, a 7th-grader, records nothing
    for themself in either school (grade 8 from)."""
    child, parent = a.students[0], a.parent
    api(
        synapse,
        "PUT",
        f"/schools/{b.school_id}/members/{child.user_id}",
        b.admin,
        {"roles": ["student"], "classes": [b.class_b["class_id"]]},
    )
    api(
        synapse,
        "PUT",
        f"/schools/{b.school_id}/members/{parent.user_id}",
        b.admin,
        {"roles": ["parent"], "children": [b.students[0].user_id]},
    )
    photos = {"consents": {"photos": True}}
    in_b = f"/schools/{b.school_id}/members/{urllib.parse.quote(child.user_id, safe='')}"
    assert api_error(synapse, "PUT", f"{in_b}/consents", parent, photos).status == 403
    assert api_error(synapse, "GET", f"{in_b}/consents", parent).status == 403
    assert api_error(synapse, "POST", f"{in_b}/export", parent, {}).status == 403
    b_only = f"/schools/{a.school_id}/members/{b.students[1].user_id}/consents"
    assert api_error(synapse, "PUT", b_only, parent, photos).status in (403, 404)
    encoded = f"/schools/{a.school_id}/members/{urllib.parse.quote(child.user_id, safe='')}"
    plain = f"/schools/{a.school_id}/members/{child.user_id}"
    assert api(synapse, "PUT", f"{encoded}/consents", parent, photos)["consents"]["photos"]
    assert api(synapse, "GET", f"{plain}/consents", parent)["consents"]["photos"]
    paper = {**photos, "via": "paper", "document_number": "№ 1"}
    assert api_error(synapse, "PUT", f"{plain}/consents", parent, paper).status == 400
    for path in (f"{plain}/consents", f"{in_b}/consents"):
        assert api_error(synapse, "PUT", path, child, photos).status == 403
    assert api(synapse, "GET", f"{in_b}/consents", b.admin)["consents"] == {}


def test_a_school_does_not_rename_an_account_held_elsewhere(
    synapse: RunningHomeserver, operator: User, a: School, b: School
) -> None:
    """The display name is the whole account's: school A's administrator who enrols
    school B's teacher (added by name, so renamable by the roster) as a parent in A may
    not rename them everywhere (403, Russian and English; the name stays); nor may B's
    administrator now, who does not manage A; the operator, who manages both, may."""
    teacher = api(
        synapse,
        "POST",
        f"/schools/{b.school_id}/members",
        b.admin,
        {"family_name": fresh(), "given_name": "Мария", "roles": ["teacher"]},
    )
    user_id = teacher["user_id"]
    quoted = urllib.parse.quote(user_id, safe="")
    rename = {"display_name": "Директор школы Б"}
    # Before A enrols her, B (who manages all of her) renames her.
    b_path = f"/schools/{b.school_id}/members/{quoted}/display_name"
    api(synapse, "PUT", b_path, b.admin, {"display_name": "Мария Петровна"})
    api(
        synapse,
        "PUT",
        f"/schools/{a.school_id}/members/{quoted}",
        a.admin,
        {"roles": ["parent"], "children": [a.students[0].user_id]},
    )
    a_path = f"/schools/{a.school_id}/members/{quoted}/display_name"
    for path, who in ((a_path, a.admin), (b_path, b.admin)):
        refused = api_error(synapse, "PUT", path, who, rename)
        assert refused.status == 403 and refused.body["errcode"] == "M_FORBIDDEN", refused.body
        assert message_id(refused) == "roster.rename_not_whole"
        assert " / " in refused.body["error"]
    profile = synapse.request("GET", f"/_matrix/client/v3/profile/{quoted}/displayname", None)
    assert profile["displayname"] == "Мария Петровна"
    api(synapse, "PUT", a_path, operator, {"display_name": "Мария Петровна Иванова"})
    profile = synapse.request("GET", f"/_matrix/client/v3/profile/{quoted}/displayname", None)
    assert profile["displayname"] == "Мария Петровна Иванова"


def test_an_import_leaves_the_name_of_an_account_held_elsewhere(
    synapse: RunningHomeserver, a: School, b: School
) -> None:
    """School A's roster renames a pupil it imported, but school B has enrolled the pupil
    meanwhile: applying A's import does everything else, leaves the name, and says so
    (``rename_refused``) instead of failing halfway."""
    from parta_common.oneroster import read_files
    from tests.data.make_sample_school import make_school
    from tests.test_privacy_imports import _b64, _wait, _with_user_cell

    sid = a.school_id
    files = make_school(students=6, seed=7, prefix="wa-", grades=range(1, 2))
    roster = read_files({k: v.encode() for k, v in files.items()})
    pupil = next(p for p in roster.people.values() if p.role.value == "student")
    first = api(synapse, "POST", f"/schools/{sid}/imports", a.admin, {"files": _b64(files)})
    first_path = f"/schools/{sid}/imports/{first['import_id']}"
    api(synapse, "POST", f"{first_path}/apply", a.admin, {})
    _wait(synapse, first_path, a.admin, "state", "done")
    cards = api(synapse, "GET", f"{first_path}/sign_ins", a.admin)["sign_ins"]
    user_id = next(c["user_id"] for c in cards if c["display_name"] == pupil.display_name)
    quoted = urllib.parse.quote(user_id, safe="")
    # School B enrols the same pupil (a second school, e.g. a music school).
    [b_class] = api(synapse, "GET", f"/schools/{b.school_id}/classes", b.admin)["classes"][:1]
    api(
        synapse,
        "PUT",
        f"/schools/{b.school_id}/members/{quoted}",
        b.admin,
        {"roles": ["student"], "classes": [b_class["class_id"]]},
    )
    _with_user_cell(files, pupil.source_id, "givenName", "Переименованный")
    second = api(synapse, "POST", f"/schools/{sid}/imports", a.admin, {"files": _b64(files)})
    assert [r["user_id"] for r in second["plan"]["rename"]] == [user_id]
    second_path = f"/schools/{sid}/imports/{second['import_id']}"
    api(synapse, "POST", f"{second_path}/apply", a.admin, {})
    done = _wait(synapse, second_path, a.admin, "state", "done")
    assert done["result"]["renamed"] == 0 and done["result"]["rename_refused"] == 1, done
    profile = synapse.request("GET", f"/_matrix/client/v3/profile/{quoted}/displayname", None)
    assert profile["displayname"] == pupil.display_name


def test_a_parent_reads_a_childs_homework_only_from_the_school_that_names_them_the_parent(
    synapse: RunningHomeserver,
) -> None:
    """A child in two schools, their parent named so in school A only: ``/me/homework``
    lists the child's homework of A, never of B — nor once B enrols the parent as the
    parent of another child, whose homework of B they then do read."""
    from synapse_module.homework.events import homework_content
    from tests.privacy_people import send
    from tests.roster_helpers import wait_for_rooms

    operator = synapse.register("op", admin=True)
    a = build_school(synapse, operator, "Школа А")
    b = build_school(synapse, operator, "Школа Б")
    child, parent = a.students[0], a.parent
    api(
        synapse,
        "PUT",
        f"/schools/{b.school_id}/members/{child.user_id}",
        b.admin,
        {"roles": ["student"], "classes": [b.class_b["class_id"]]},
    )
    for user in (a.teacher, b.teacher, b.other_teacher):
        wait_for_rooms(synapse, user)
    sent = {
        "А-7а": (a, a.teacher, a.class_a),
        "Б-7б": (b, b.other_teacher, b.class_b),  # the child's class in B
        "Б-7а": (b, b.teacher, b.class_a),  # B's other child's class
    }
    for subject, (school, teacher, klass) in sent.items():
        content = homework_content(subject, "Задание", "2026-12-20", klass["class_id"])
        send(synapse, teacher, klass["rooms"]["class_chat"], content)
        path = f"/schools/{school.school_id}/classes/{klass['class_id']}/homework"
        deadline = time.monotonic() + 30  # indexed after the event is stored
        while subject not in str(api(synapse, "GET", path, school.admin)["homework"]):
            assert time.monotonic() < deadline, subject
            time.sleep(0.1)

    def seen() -> dict[str, set[str]]:
        mine = api(synapse, "GET", "/me/homework", parent)
        return {c["user_id"]: {h["subject"] for h in c["homework"]} for c in mine["children"]}

    assert seen() == {child.user_id: {"А-7а"}}
    api(
        synapse,
        "PUT",
        f"/schools/{b.school_id}/members/{parent.user_id}",
        b.admin,
        {"roles": ["parent"], "children": [b.students[0].user_id]},
    )
    assert seen() == {child.user_id: {"А-7а"}, b.students[0].user_id: {"Б-7а"}}
    # The child reads their own homework of both schools.
    mine = api(synapse, "GET", "/me/homework", child)
    assert {h["subject"] for h in mine["homework"]} == {"А-7а", "Б-7б"}


def test_a_teacher_removed_from_the_school_no_longer_sees_who_confirmed(
    synapse: RunningHomeserver,
) -> None:
    """A teacher asks their class to confirm and reads who did; the school takes them off
    its roster: their old request's confirmations (JSON and CSV) are refused (403, Russian
    and English), while the school's administrator still reads them."""
    from synapse_module.confirmations.events import ask_content
    from tests.privacy_people import send
    from tests.roster_helpers import wait_for_rooms

    operator = synapse.register("op", admin=True)
    school = build_school(synapse, operator, "Школа З")
    for user in (school.teacher, school.students[0]):
        wait_for_rooms(synapse, user)
    chat = school.class_a["rooms"]["class_chat"]
    asked = send(synapse, school.teacher, chat, ask_content("Собрание в четверг"))
    room, event = (urllib.parse.quote(x, safe="") for x in (chat, asked))
    api(synapse, "POST", f"/rooms/{room}/confirmations/{event}", school.students[0], {})
    path = f"/rooms/{room}/confirmations/{event}"
    assert api(synapse, "GET", path, school.teacher)["confirmed"] == 1
    quoted = urllib.parse.quote(school.teacher.user_id, safe="")
    api(synapse, "DELETE", f"/schools/{school.school_id}/members/{quoted}", school.admin)
    for query in ("", "?format=csv"):
        refused = api_error(synapse, "GET", path + query, school.teacher)
        assert refused.status == 403 and refused.body["errcode"] == "M_FORBIDDEN", refused.body
        assert message_id(refused) == "rules.confirm_not_in_school"
        assert " / " in refused.body["error"]  # Russian and English
    assert api(synapse, "GET", path, school.admin)["confirmed"] == 1


def test_a_schools_erasure_takes_only_an_account_made_for_schools(
    synapse: RunningHomeserver, operator: User, a: School
) -> None:
    """An account someone made on the server themself (or another party made for them) is
    in no school; a school's administrator enrols it as a parent and erases it: the
    school's part is done (off the roster), but the account is not the school's to take
    and stays. An account Parta made for a school (added by name, a sign-in code) goes
    with the school's erasure when nothing else holds it; the operator's erasure of a
    whole account takes one of the person's own too."""
    school = a
    own, own_too = synapse.register("own"), synapse.register("own")
    for person in (own, own_too):
        api(
            synapse,
            "PUT",
            f"/schools/{school.school_id}/members/{urllib.parse.quote(person.user_id, safe='')}",
            school.admin,
            {"roles": ["parent"], "children": [school.students[1].user_id]},
        )
    done = erased(synapse, school.school_id, school.admin, own.user_id)
    assert done["scope"] == "school", done
    assert whoami(synapse, own) == own.user_id and can_sign_in(synapse, own)
    members = api(synapse, "GET", f"/schools/{school.school_id}/members", school.admin)
    assert own.user_id not in {m["user_id"] for m in members["members"]}

    made = api(
        synapse,
        "POST",
        f"/schools/{school.school_id}/members",
        school.admin,
        {"family_name": fresh(), "given_name": "Ольга", "roles": ["teacher"]},
    )
    teacher = sign_in(synapse, made["user_id"], made["code"])
    done = erased(synapse, school.school_id, school.admin, made["user_id"])
    assert done["scope"] == "account", done
    assert whoami(synapse, teacher) is None and not can_sign_in(synapse, teacher)

    quoted = urllib.parse.quote(own_too.user_id, safe="")
    started = api(synapse, "POST", f"/users/{quoted}/erase", operator, {})
    [erasure] = started["erasures"]
    path = f"/schools/{school.school_id}/erasures/{erasure['erasure_id']}"
    deadline = time.monotonic() + 120
    while (status := api(synapse, "GET", path, operator))["status"] != "done":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["scope"] == "account", status
    assert whoami(synapse, own_too) is None and not can_sign_in(synapse, own_too)
