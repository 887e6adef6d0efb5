"""Path parameters as every client sends them: percent-encoded.

``encodeURIComponent('@ann:school.ru')`` is ``%40ann%3Aschool.ru``; room IDs carry ``!``
and ``:``, event IDs ``$``. The router decodes each parameter once, so the encoded and the
raw form of every route are the same call. The calls are generated from the served
``/openapi.json``: a new route with a path parameter is covered (or the test says which
value it lacks).

Each form runs against its own school, built the same way, in lockstep: the encoded call
on school A, the raw call on school B, so a call that changes something (removing a
member, ending a lesson) meets the same state in both. The answers must agree in status,
``errcode`` and shape, where an ID of school A and its counterpart in B count as equal.
"""

import base64
import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from synapse_module.homework.events import homework_content
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import API, School, api, api_error, build_school

SECRET = "path-params-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    """A Synapse with lessons and broadcasts on, so their routes answer for real."""
    config = {
        "media": {
            "enabled": True,
            "token_secret": SECRET,
            "sfu_public_url": "http://127.0.0.1:9/",
        }
    }
    with running_homeserver(tmp_path_factory.mktemp("paths"), module_config=config) as running:
        yield running


def call(
    hs: RunningHomeserver, method: str, path: str, user: User | None, body: Any
) -> tuple[int, Any]:
    """One request with ``path`` sent exactly as given (no client-side encoding)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{hs.base_url}{API}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if user is not None:
        req.add_header("Authorization", f"Bearer {user.access_token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def seed(hs: RunningHomeserver) -> tuple[dict[str, Any], School, User]:
    """A school with one of everything a path can name; the values by parameter name."""
    operator = hs.register("operator", admin=True)
    school = build_school(hs, operator, name=f"Школа {secrets.token_hex(2)}")
    sid = school.school_id
    class_id = school.class_a["class_id"]
    room = school.class_a["rooms"]["class_chat"]
    teacher = school.teacher
    unit = api(hs, "POST", "/units", operator, {"kind": "region", "name": "Область"})
    invite = api(hs, "POST", f"/schools/{sid}/invites", school.admin, {"role": "teacher"})
    later = int(time.time() * 1000) + 3_600_000
    lesson = api(
        hs, "POST", f"/rooms/{q(room)}/lessons", teacher, {"title": "Дроби", "start": later}
    )
    broadcast = api(
        hs,
        "POST",
        f"/rooms/{q(room)}/broadcasts",
        school.admin,
        {"title": "Линейка", "speakers": [teacher.user_id]},
    )
    link = api(
        hs,
        "POST",
        f"/rooms/{q(room)}/broadcasts/{broadcast['broadcast_id']}/viewer_links",
        school.admin,
        {},
    )
    article = api(
        hs, "POST", f"/rooms/{q(room)}/articles", teacher, {"title": "Собрание", "html": "<p>Т</p>"}
    )
    poll = api(
        hs,
        "POST",
        f"/rooms/{q(room)}/polls",
        teacher,
        {"question": "Когда?", "answers": [{"text": "Сейчас"}, {"text": "Потом"}]},
    )
    # A parent link waiting for the school: someone used a student's own parent code.
    parent_code = api(hs, "POST", "/me/parent_invite", school.students[0], {"school_id": sid})
    mother = hs.register(f"mother{secrets.token_hex(2)}")
    pending = api(hs, "POST", f"/invites/{parent_code['code']}/redeem", mother)
    homework = hs.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/{secrets.token_hex(8)}",
        homework_content("Алгебра", "№ 1", "2026-12-10", class_id),
        teacher.access_token,
    )
    deadline = time.monotonic() + 30  # indexed after it is stored: wait with a deadline
    while not api(hs, "GET", f"/schools/{sid}/classes/{class_id}/homework", teacher)["homework"]:
        assert time.monotonic() < deadline, "homework not indexed"
        time.sleep(0.1)
    # A message the teacher (with their own token) has the module send later as them.
    post = api(
        hs,
        "POST",
        "/scheduled_posts",
        teacher,
        {"room_id": room, "body": "Напоминание", "schedule_id": f"pp-{secrets.token_hex(4)}"},
    )
    # A roster import whose plan is empty (the school in the files has nobody yet):
    # applying it is done at once, so its answers do not change between two calls.
    roster_import = api(hs, "POST", f"/schools/{sid}/imports", school.admin, empty_roster())
    # An erasure (of a pupil who joined for it), for GET .../erasures/{erasure_id}.
    leaver = hs.register(f"leaver{secrets.token_hex(2)}")
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{q(leaver.user_id)}",
        school.admin,
        {"roles": ["student"], "classes": [class_id]},
    )
    erasure = api(hs, "POST", f"/schools/{sid}/members/{q(leaver.user_id)}/erase", school.admin, {})
    # A request to erase (a teacher's for themself), for .../erasure_requests/{request_id}.
    quitter = hs.register(f"quitter{secrets.token_hex(2)}")
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{q(quitter.user_id)}",
        school.admin,
        {"roles": ["teacher"]},
    )
    erase_request = api(hs, "POST", f"/schools/{sid}/erasure_requests", quitter, {})
    values = {
        "school_id": sid,
        "erasure_id": erasure["erasure_id"],
        "request_id": erase_request["request_id"],
        "import_id": roster_import["import_id"],
        "class_id": class_id,
        # The one removed by DELETE .../members/{user_id}: a member nobody else needs.
        "user_id": school.other_student.user_id,
        "unit_id": unit["unit_id"],
        "external_id": f"ext:{sid}",
        "code": invite["code"],
        "roomId": room,
        "room_id": room,
        "lessonId": lesson["lesson_id"],
        "broadcastId": broadcast["broadcast_id"],
        "linkId": link["link_id"],
        "article_id": article["article_id"],
        "poll_id": poll["event_id"],
        "link_id": pending["parent_link"]["link_id"],
        "event_id": homework["event_id"],
        "post_id": post["post_id"],
    }
    return values, school, operator


def empty_roster() -> dict[str, Any]:
    """OneRoster files naming one school and nobody in it (for the import routes)."""
    files = {
        "orgs.csv": "sourcedId,name,type\nsch-empty,Школа,school\n",
        "classes.csv": "sourcedId,title,classType,schoolSourcedId\n",
        "users.csv": "sourcedId,enabledUser,orgSourcedIds,role,givenName,familyName\n",
        "enrollments.csv": "sourcedId,classSourcedId,schoolSourcedId,userSourcedId,role\n",
    }
    return {"files": {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}}


def bodies(v: dict[str, Any], school: School) -> dict[tuple[str, str], Any]:
    """Request bodies that succeed (or fail the same way) for each operation with a body."""
    return {
        ("PATCH", "/schools/{school_id}"): {"name": "Школа № 2"},
        ("POST", "/schools/{school_id}/classes"): {"grade": 8, "letter": "В", "year": "2026/27"},
        ("POST", "/schools/{school_id}/members/batch"): {"members": []},
        ("PUT", "/schools/{school_id}/members/{user_id}"): {
            "roles": ["student"],
            "classes": [v["class_id"]],
        },
        ("POST", "/schools/{school_id}/invites"): {"role": "teacher"},
        ("POST", "/invites/{code}/register"): {
            "username": f"new-{secrets.token_hex(4)}",
            "password": secrets.token_urlsafe(12),
        },
        ("POST", "/rooms/{roomId}/media_token"): {},
        ("POST", "/rooms/{roomId}/media_token/openid"): {},
        ("POST", "/rooms/{roomId}/lessons"): {
            "title": "Дроби",
            "start": int(time.time() * 1000) + 7_200_000,
        },
        ("POST", "/rooms/{roomId}/broadcasts"): {"title": "Концерт", "speakers": []},
        ("POST", "/rooms/{roomId}/broadcasts/{broadcastId}/end"): {},
        ("POST", "/rooms/{roomId}/broadcasts/{broadcastId}/speaker_token"): {},
        ("POST", "/rooms/{roomId}/broadcasts/{broadcastId}/viewer_links"): {},
        ("POST", "/rooms/{roomId}/broadcasts/{broadcastId}/viewer_links/{linkId}/revoke"): {},
        ("PUT", "/rooms/{room_id}/handin"): {"enabled": True},
        ("POST", "/rooms/{room_id}/articles"): {"title": "Ещё", "html": "<p>Т</p>"},
        ("PATCH", "/articles/{article_id}"): {"title": "Собрание (перенос)"},
        ("POST", "/rooms/{room_id}/polls"): {
            "question": "Где?",
            "answers": [{"text": "Здесь"}, {"text": "Там"}],
        },
        ("POST", "/polls/{poll_id}/votes"): {"answers": []},
        ("PUT", "/schools/{school_id}/members/{user_id}/display_name"): {"display_name": "Имя"},
        ("POST", "/schools/{school_id}/imports/{import_id}/apply"): {},
        ("POST", "/schools/{school_id}/erasure_requests/{request_id}/decline"): {
            "reason": "Журнал хранится по закону."
        },
    }


def actor(path: str, school: School, operator: User) -> User:
    if path.startswith("/units"):
        return operator
    if path.startswith("/schools") or "/broadcasts" in path:
        return school.admin
    return school.teacher


def shape(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with its seed IDs named (as values and as keys, e.g. a member's classes by
    class ID) and every other scalar reduced to its type."""
    if isinstance(value, dict):
        return {ids.get(k, k): shape(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((shape(v, ids) for v in value), key=json.dumps)
    if isinstance(value, str) and value in ids:
        return ids[value]
    return type(value).__name__


def id_names(
    values: dict[str, Any], school: School, operator: User, school_json: Any
) -> dict[str, str]:
    """Every string of a seeded school that is particular to it, by a stable name."""
    names: dict[str, str] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{name}.{k}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{name}[{i}]", v)
        elif isinstance(value, str):
            names.setdefault(value, name)

    walk("v", values)
    people = [school.admin, school.teacher, school.other_teacher, *school.students]
    people += [school.other_student, school.parent, operator]
    walk("user", [p.user_id for p in people])
    walk("class_a", school.class_a)
    walk("class_b", school.class_b)
    walk("school", school_json)
    return names


def fill(template: str, values: dict[str, Any], encode: Callable[[str], str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: encode(values[m.group(1)]), template)


def test_encoded_and_raw_path_parameters_answer_the_same(hs: RunningHomeserver) -> None:
    spec = call(hs, "GET", "/openapi.json", None, None)[1]
    a_values, a_school, a_op = seed(hs)
    b_values, b_school, b_op = seed(hs)
    a_ids = id_names(
        a_values,
        a_school,
        a_op,
        api(hs, "GET", f"/schools/{a_values['school_id']}", a_school.admin),
    )
    b_ids = id_names(
        b_values,
        b_school,
        b_op,
        api(hs, "GET", f"/schools/{b_values['school_id']}", b_school.admin),
    )
    assert sorted(a_ids.values()) == sorted(b_ids.values())
    a_bodies, b_bodies = bodies(a_values, a_school), bodies(b_values, b_school)
    operations = [
        (method.upper(), template)
        for template, item in spec["paths"].items()
        if "{" in template
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    ]
    assert len(operations) > 40
    # The removal last: before it, other calls still need the member.
    operations.sort(key=lambda op: op == ("DELETE", "/schools/{school_id}/members/{user_id}"))
    differences = []
    encoded_differs = 0
    for method, template in operations:
        names = re.findall(r"\{(\w+)\}", template)
        missing = [n for n in names if n not in a_values]
        assert not missing, f"{method} {template}: give the test a value for {missing}"

        encoded = fill(template, a_values, q)
        raw = fill(template, b_values, str)
        encoded_differs += encoded != fill(template, a_values, str)
        a_status, a_body = call(
            hs, method, encoded, actor(template, a_school, a_op), a_bodies.get((method, template))
        )
        b_status, b_body = call(
            hs, method, raw, actor(template, b_school, b_op), b_bodies.get((method, template))
        )
        a_seen = (a_status, shape(a_body, a_ids))
        b_seen = (b_status, shape(b_body, b_ids))
        if a_seen != b_seen:
            differences.append(
                f"{method} {template}\n  encoded {encoded}: {a_status} {a_body}\n"
                f"  raw     {raw}: {b_status} {b_body}"
            )
        # Never a server error, in either form.
        assert a_status < 500 and b_status < 500, differences[-1:]
    assert not differences, "\n".join(differences)
    # The test means something: most parameters here need encoding.
    assert encoded_differs >= 25


def test_removing_someone_encoded_removes_them_and_a_stranger_is_404(
    hs: RunningHomeserver,
) -> None:
    _, school, _ = seed(hs)
    sid = school.school_id
    student = school.students[2]
    answer = call(hs, "DELETE", f"/schools/{sid}/members/{q(student.user_id)}", school.admin, None)
    assert answer == (200, {"user_id": student.user_id, "removed": True})
    members = api(hs, "GET", f"/schools/{sid}/members", school.admin)
    assert student.user_id not in json.dumps(members)
    # Again, or someone who never was a member: nothing removed, and it says so.
    for target in (student.user_id, f"@nobody-{secrets.token_hex(3)}:localhost"):
        error = api_error(hs, "DELETE", f"/schools/{sid}/members/{q(target)}", school.admin)
        assert error.status == 404, error.body
        assert error.body["errcode"] == "M_NOT_FOUND"
        assert " / " in error.body["error"] or "не" in error.body["error"]
    # A room ID whose encoded "/" stays inside the parameter: one segment, not a new path.
    status, body = call(hs, "GET", f"/rooms/{q('!a/b:localhost')}/lessons", school.teacher, None)
    assert status in (403, 404), body
    assert body["errcode"] != "M_UNRECOGNIZED", body
