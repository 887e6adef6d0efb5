"""Consents (issue 12 item 1): who records them, and what a missing one changes in a
lesson (camera and microphone off), a broadcast (no student speaker) and, where the
school's policy enforces them, its rooms (``communication``: read, not post; ``photos``:
no pictures, no avatar)."""

import asyncio
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from nio import (
    RoomCreateResponse,
    RoomGetEventResponse,
    RoomGetStateEventResponse,
    RoomSendError,
    RoomSendResponse,
)

from parta_common import events, tokens
from parta_common.roles import Role
from parta_common.tokens import Grants, grant_for
from synapse_module.privacy.rules import (
    DEFAULT_SELF_CONSENT_GRADE,
    ENFORCEABLE_CONSENTS,
    NO_VIDEO_CONSENT,
    PURPOSES,
    consent_counts,
    consent_refusal,
    lesson_grants,
    may_read_consents,
    may_record_consent,
    may_speak_in_broadcast,
    member_content_without_avatar,
    relation_to,
)
from synapse_module.privacy.texts import NO_COMMUNICATION_CONSENT, NO_PHOTOS_CONSENT
from synapse_module.requests import request_schemas
from synapse_module.roster.rules import SchoolPolicy
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import School, api, api_error, build_school, wait_for_rooms

# -- who records a consent -----------------------------------------------------------


@pytest.mark.parametrize(
    ("relation", "student", "grade", "self_from", "allowed"),
    [
        ("manager", True, 3, 8, True),
        ("guardian", True, 3, 8, True),
        ("guardian", True, 10, 8, True),
        ("self", True, 7, 8, False),  # 13 or so: the guardian's
        ("self", True, 8, 8, True),  # from 14 as the school sets
        ("self", True, 11, None, False),  # the school allows no self-consent
        ("self", True, None, 8, False),  # a student in no class: grade unknown
        ("self", False, None, 8, True),  # an adult member
        ("other", True, 9, 8, False),
        ("other", False, None, 8, False),
    ],
)
def test_who_records_a_consent(
    relation: str, student: bool, grade: int | None, self_from: int | None, allowed: bool
) -> None:
    assert may_record_consent(relation, student, grade, self_from) is allowed  # type: ignore[arg-type]


# -- consent states × lesson and broadcast admission ------------------------------------

ALL = Grants(True, True, True, True, True)
STUDENT = grant_for(Role.STUDENT)
NO_AV = Grants(False, False, False, True, False)


@pytest.mark.parametrize(
    ("manager", "actor", "children", "subject", "relation"),
    [
        (True, "@a:x", frozenset(), "@c:x", "manager"),
        (True, "@a:x", frozenset(), "@a:x", "manager"),  # a manager reads as one, self too
        (False, "@c:x", frozenset(), "@c:x", "self"),
        (False, "@p:x", frozenset({"@c:x"}), "@c:x", "guardian"),
        (False, "@p:x", frozenset({"@c:x"}), "@d:x", "other"),  # another's child
        (False, "@t:x", frozenset(), "@c:x", "other"),  # a teacher of the class
    ],
)
def test_what_the_reader_is_to_the_person(
    manager: bool, actor: str, children: frozenset[str], subject: str, relation: str
) -> None:
    assert relation_to(manager, actor, children, subject) == relation
    assert may_read_consents(relation_to(manager, actor, children, subject)) == (
        relation != "other"
    )


def test_the_counts_per_purpose() -> None:
    granted = {"granted": True}
    withdrawn = {"granted": False}
    people = [{"photos": granted, "video_lessons": withdrawn}, {"photos": granted}, {}]
    counts = consent_counts(people)
    assert counts["photos"] == {"granted": 2, "withdrawn": 0, "none": 1}
    assert counts["video_lessons"] == {"granted": 0, "withdrawn": 1, "none": 2}
    assert (
        counts["communication"]
        == counts["broadcasts"]
        == {
            "granted": 0,
            "withdrawn": 0,
            "none": 3,
        }
    )
    assert consent_counts([]) == {p: {"granted": 0, "withdrawn": 0, "none": 0} for p in PURPOSES}


@pytest.mark.parametrize(
    ("role", "in_school", "video", "camera_mic", "why"),
    [
        (Role.STUDENT, True, True, True, None),
        (Role.STUDENT, True, False, False, NO_VIDEO_CONSENT),  # never recorded / withdrawn
        (Role.STUDENT, False, False, True, None),  # a room outside any school
        (Role.TEACHER, True, False, True, None),
        (Role.ADMINISTRATOR, True, False, True, None),
    ],
)
def test_lesson_admission(
    role: Role, in_school: bool, video: bool, camera_mic: bool, why: str | None
) -> None:
    grants, reason = lesson_grants(role, grant_for(role), in_school, video)
    assert (grants.publish_camera, grants.publish_microphone) == (camera_mic, camera_mic)
    assert grants.subscribe  # admitted either way: sees and hears the lesson
    assert reason == why


@pytest.mark.parametrize(
    ("manager", "in_school", "consent", "speaks"),
    [
        (False, True, True, True),
        (False, True, False, False),
        (False, False, False, True),
        (True, True, False, True),
    ],
)
def test_broadcast_speaker_admission(
    manager: bool, in_school: bool, consent: bool, speaks: bool
) -> None:
    assert may_speak_in_broadcast(manager, in_school, consent) is speaks


# -- against the real Synapse ------------------------------------------------------------

# -- consents a school enforces in its rooms -----------------------------------------

TEXT = {"msgtype": "m.text", "body": "Привет"}
IMAGE = {
    "msgtype": "m.image",
    "body": "я.jpg",
    "url": "mxc://hs/a",
    "info": {"mimetype": "image/jpeg"},
}
VIDEO = {"msgtype": "m.video", "body": "я.mp4", "url": "mxc://hs/b"}
FILE = {
    "msgtype": "m.file",
    "body": "дз.pdf",
    "url": "mxc://hs/c",
    "info": {"mimetype": "application/pdf"},
}
PHOTO_AS_FILE = {
    "msgtype": "m.file",
    "body": "я.png",
    "url": "mxc://hs/d",
    "info": {"mimetype": "IMAGE/png"},
}
EDIT_TO_IMAGE = {**TEXT, "m.new_content": IMAGE}
COMM = frozenset({"communication"})
PHOTOS = frozenset({"photos"})
BOTH = COMM | PHOTOS
NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("event_type", "content", "missing", "refusal"),
    [
        ("m.room.message", TEXT, NONE, None),
        ("m.room.message", IMAGE, NONE, None),
        ("m.room.message", TEXT, COMM, NO_COMMUNICATION_CONSENT),
        ("m.room.message", FILE, COMM, NO_COMMUNICATION_CONSENT),  # hand-ins too
        ("m.sticker", {}, COMM, NO_COMMUNICATION_CONSENT),
        ("m.reaction", {}, COMM, NO_COMMUNICATION_CONSENT),
        ("m.room.encrypted", {}, COMM, NO_COMMUNICATION_CONSENT),
        (events.POLL_START, {}, COMM, NO_COMMUNICATION_CONSENT),
        (events.STABLE_POLL_START, {}, COMM, NO_COMMUNICATION_CONSENT),
        (events.POLL_RESPONSE, {}, BOTH, None),  # a vote is school work
        (events.STABLE_POLL_RESPONSE, {}, BOTH, None),
        ("m.room.redaction", {}, BOTH, None),  # taking one's words back
        ("m.room.message", TEXT, PHOTOS, None),
        ("m.room.message", FILE, PHOTOS, None),
        ("m.room.message", IMAGE, PHOTOS, NO_PHOTOS_CONSENT),
        ("m.room.message", VIDEO, PHOTOS, NO_PHOTOS_CONSENT),
        ("m.room.message", PHOTO_AS_FILE, PHOTOS, NO_PHOTOS_CONSENT),
        ("m.room.message", EDIT_TO_IMAGE, PHOTOS, NO_PHOTOS_CONSENT),
        ("m.sticker", {}, PHOTOS, NO_PHOTOS_CONSENT),
        ("m.room.message", IMAGE, BOTH, NO_COMMUNICATION_CONSENT),  # the first reason
    ],
)
def test_what_a_missing_enforced_consent_refuses(
    event_type: str, content: dict[str, Any], missing: frozenset[str], refusal: object
) -> None:
    assert consent_refusal(event_type, content, missing) == refusal


def test_the_request_schemas_offer_the_enforceable_consents() -> None:
    schemas = request_schemas("synapse_module.roster")
    for name in ("CreateSchool", "PatchSchool"):
        policy = schemas[name]["properties"]["policy"]["properties"]
        assert tuple(policy["consent_enforced"]["items"]["enum"]) == ENFORCEABLE_CONSENTS
        grade = policy["self_consent_grade"]
        assert (grade["minimum"], grade["maximum"]) == (1, 11)
    assert SchoolPolicy().self_consent_grade == DEFAULT_SELF_CONSENT_GRADE == 8
    assert SchoolPolicy().consent_enforced == ()  # today's behaviour unless a school says


def test_a_member_event_without_photos_loses_its_avatar_only() -> None:
    content = {"membership": "join", "displayname": "Маша", "avatar_url": "mxc://hs/m"}
    assert member_content_without_avatar(content, PHOTOS) == {
        "membership": "join",
        "displayname": "Маша",
    }
    assert member_content_without_avatar(content, COMM) is None
    assert member_content_without_avatar({"membership": "join"}, PHOTOS) is None


SECRET = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    config = {
        "media": {"enabled": True, "token_secret": SECRET, "sfu_public_url": "http://127.0.0.1:1/"}
    }
    with running_homeserver(tmp_path_factory.mktemp("consents"), module_config=config) as hs:
        yield hs


@pytest.fixture(scope="module")
def school(hs: RunningHomeserver) -> School:
    return build_school(hs, hs.register("operator", admin=True))


def consents_path(school: School, user: User) -> str:
    return f"/schools/{school.school_id}/members/{user.user_id}/consents"


def media_grants(hs: RunningHomeserver, user: User, room_id: str) -> tuple[Grants, bool]:
    quoted = urllib.parse.quote(room_id, safe="")
    answer = api(hs, "POST", f"/rooms/{quoted}/media_token", user, {})
    claims = tokens.verify_media_token(answer["token"], SECRET, room_id=room_id)
    assert claims.grants.to_claim() == answer["grants"]
    return claims.grants, answer["no_video_consent"]


def test_a_student_without_video_consent_joins_with_camera_and_microphone_off(
    hs: RunningHomeserver, school: School
) -> None:
    child = school.students[0]
    room = school.class_a["rooms"]["class_chat"]
    grants, no_consent = media_grants(hs, child, room)
    assert (grants.publish_camera, grants.publish_microphone, grants.subscribe) == (
        False,
        False,
        True,
    )
    assert no_consent
    # The teacher is not affected.
    teacher_grants, teacher_flag = media_grants(hs, school.teacher, room)
    assert teacher_grants.publish_camera and not teacher_flag

    # The guardian consents with their account: the child's next token has them on.
    answer = api(
        hs,
        "PUT",
        consents_path(school, child),
        school.parent,
        {"consents": {"video_lessons": True}},
    )
    video = answer["consents"]["video_lessons"]
    assert video["granted"] and video["via"] == "account"
    assert video["recorded_by"] == school.parent.user_id and video["withdrawn_ts"] is None
    grants, no_consent = media_grants(hs, child, room)
    assert grants.publish_camera and grants.publish_microphone and not no_consent

    # Withdrawn on paper by the administrator: off again, and when is kept.
    answer = api(
        hs,
        "PUT",
        consents_path(school, child),
        school.admin,
        {"consents": {"video_lessons": False}, "document_number": "№ 17/2026"},
    )
    video = answer["consents"]["video_lessons"]
    assert not video["granted"] and video["via"] == "paper"
    assert video["document_number"] == "№ 17/2026" and video["withdrawn_ts"] is not None
    assert video["granted_ts"] is not None
    grants, no_consent = media_grants(hs, child, room)
    assert not grants.publish_camera and no_consent


def test_who_may_record_and_read_consents(hs: RunningHomeserver, school: School) -> None:
    child, other_child = school.students[0], school.students[1]
    # A guardian of another child, a teacher, a classmate: refused.
    for who, whom in ((school.parent, other_child), (school.teacher, child), (other_child, child)):
        err = api_error(hs, "PUT", consents_path(school, whom), who, {"consents": {"photos": True}})
        assert err.status == 403 and err.body["errcode"] == "M_FORBIDDEN", who.user_id
        assert "согласие" in err.body["error"].lower()
        err = api_error(hs, "GET", consents_path(school, whom), who)
        assert err.status == 403
    # A 7th-grader records nothing for themself (the school's grade is 8).
    err = api_error(hs, "PUT", consents_path(school, child), child, {"consents": {"photos": True}})
    assert err.status == 403
    # An administrator's paper record needs its number; bad bodies are 400; nothing stored.
    bodies: list[dict[str, object]] = [
        {"consents": {"photos": True}},
        {"consents": {"selfies": True}},
        {"consents": {}},
        {"consents": {"photos": "yes"}, "document_number": "1"},
    ]
    for body in bodies:
        err = api_error(hs, "PUT", consents_path(school, other_child), school.admin, body)
        assert err.status == 400 and err.body["errcode"], body
    assert api(hs, "GET", consents_path(school, other_child), school.admin)["consents"] == {}
    # The child reads their own; the guardian theirs.
    assert api(hs, "GET", consents_path(school, child), child)["user_id"] == child.user_id
    assert api(hs, "GET", consents_path(school, child), school.parent)["user_id"] == child.user_id
    # Not in the school: 404.
    stranger = hs.register("stranger")
    err = api_error(hs, "GET", consents_path(school, stranger), school.admin)
    assert err.status == 404
    # Recorded: by the guardian with their account, by the administrator on paper.
    api(hs, "PUT", consents_path(school, child), school.parent, {"consents": {"photos": True}})
    body = {"consents": {"communication": True}, "document_number": "№ 18/2026"}
    api(hs, "PUT", consents_path(school, other_child), school.admin, body)
    # The changes and the administrator's reads are in the school's audit log.
    entries = api(hs, "GET", f"/schools/{school.school_id}/audit", school.admin)["entries"]
    actions = [(e["action"], e["actor"], e["target"]) for e in entries]
    assert ("consent.put", school.parent.user_id, child.user_id) in actions
    assert ("consent.read", school.admin.user_id, other_child.user_id) in actions
    paper = [
        e for e in entries if e["action"] == "consent.put" and e["actor"] == school.admin.user_id
    ]
    assert paper[-1]["details"] == {
        "consents": {"communication": True},
        "via": "paper",
        "document_number": "№ 18/2026",
    }
    assert api(hs, "GET", "/audit/verify", hs.register("op2", admin=True))["ok"]


def test_a_student_without_broadcasts_consent_is_not_a_speaker(
    hs: RunningHomeserver, school: School
) -> None:
    with_consent, without = school.students[1], school.students[2]
    body = {"consents": {"broadcasts": True}, "document_number": "№ 19/2026"}
    api(hs, "PUT", consents_path(school, with_consent), school.admin, body)
    room = urllib.parse.quote(school.class_a["rooms"]["class_chat"], safe="")
    speakers = [school.teacher.user_id, with_consent.user_id, without.user_id]
    created = api(
        hs,
        "POST",
        f"/rooms/{room}/broadcasts",
        school.teacher,
        {"title": "Концерт", "speakers": speakers},
    )
    token_path = f"/rooms/{room}/broadcasts/{created['broadcast_id']}/speaker_token"
    assert api(hs, "POST", token_path, with_consent, {})["token"]
    assert api(hs, "POST", token_path, school.teacher, {})["token"]
    err = api_error(hs, "POST", token_path, without, {})
    assert err.status == 403 and err.body["errcode"] == "M_FORBIDDEN"
    assert "трансляц" in err.body["error"] and "broadcasts" in err.body["error"]


# -- a class's consents in one read (GET /schools/{id}/consents) ----------------------


def class_consents(
    hs: RunningHomeserver, school: School, user: User, **query: str
) -> dict[str, Any]:
    q = urllib.parse.urlencode(query)
    answer: dict[str, Any] = api(hs, "GET", f"/schools/{school.school_id}/consents?{q}", user)
    return answer


def consents_read_entries(hs: RunningHomeserver, school: School) -> list[dict[str, Any]]:
    entries = api(hs, "GET", f"/schools/{school.school_id}/audit", school.admin)["entries"]
    return [e for e in entries if e["action"] in ("consents.read", "consent.read")]


def test_a_class_consents_in_one_read(hs: RunningHomeserver) -> None:
    operator = hs.register("operator-list", admin=True)
    school = build_school(hs, operator, "Школа № 5")
    class_a = school.class_a["class_id"]
    first, second, third = school.students
    api(
        hs,
        "PUT",
        consents_path(school, first),
        school.parent,
        {"consents": {"video_lessons": True}},
    )
    paper = {"consents": {"video_lessons": True, "photos": False}, "document_number": "№ 5/2026"}
    api(hs, "PUT", consents_path(school, second), school.admin, paper)

    # The administrator: the class's pupils, each as the per-member read answers them.
    before = consents_read_entries(hs, school)
    answer = class_consents(hs, school, school.admin, class_id=class_a, role="student")
    after = consents_read_entries(hs, school)
    pupils = sorted(u.user_id for u in school.students)
    assert [m["user_id"] for m in answer["members"]] == pupils
    assert answer["total"] == 3 and answer["next_batch"] is None
    assert answer["class_id"] == class_a
    assert answer["purposes"] == ["communication", "video_lessons", "broadcasts", "photos"]
    assert answer["counts"] == {
        "communication": {"granted": 0, "withdrawn": 0, "none": 3},
        "video_lessons": {"granted": 2, "withdrawn": 0, "none": 1},
        "broadcasts": {"granted": 0, "withdrawn": 0, "none": 3},
        "photos": {"granted": 0, "withdrawn": 1, "none": 2},
    }
    by_id = {m["user_id"]: m for m in answer["members"]}
    assert by_id[third.user_id]["consents"] == {}
    assert by_id[second.user_id]["roles"] == ["student"]
    assert by_id[second.user_id]["learns_in"] == [class_a]
    video = by_id[second.user_id]["consents"]["video_lessons"]
    assert video["via"] == "paper" and video["document_number"] == "№ 5/2026"
    assert by_id[first.user_id]["consents"]["video_lessons"]["via"] == "account"
    # One audit entry for the read, naming the class (not one per pupil).
    assert len(after) == len(before) + 1
    entry = after[-1]
    assert (entry["action"], entry["actor"], entry["target"]) == (
        "consents.read",
        school.admin.user_id,
        class_a,
    )
    assert entry["details"] == {"class_id": class_a, "role": "student", "people": 3}
    for pupil in school.students:  # the same records as the per-member read
        one = api(hs, "GET", consents_path(school, pupil), school.admin)["consents"]
        assert by_id[pupil.user_id]["consents"] == one

    # Without the role: the class's teacher and the parent of a pupil too; one person.
    everyone = class_consents(hs, school, school.admin, class_id=class_a)
    assert {m["user_id"] for m in everyone["members"]} == {
        *pupils,
        school.teacher.user_id,
        school.parent.user_id,
    }
    alone = class_consents(hs, school, school.admin, user_id=second.user_id)
    assert [m["user_id"] for m in alone["members"]] == [second.user_id]
    # Pages: the counts are over every page.
    page1 = class_consents(hs, school, school.admin, class_id=class_a, role="student", limit="2")
    assert [m["user_id"] for m in page1["members"]] == pupils[:2] and page1["next_batch"]
    page2 = class_consents(
        hs,
        school,
        school.admin,
        class_id=class_a,
        role="student",
        limit="2",
        **{"from": page1["next_batch"]},
    )
    assert [m["user_id"] for m in page2["members"]] == pupils[2:]
    assert page2["next_batch"] is None and page2["counts"] == page1["counts"] == answer["counts"]
    # The operator reads it too.
    assert class_consents(hs, school, operator, class_id=class_a, role="student")["total"] == 3

    # Bad filters: errcodes, in words; nothing read.
    path = f"/schools/{school.school_id}/consents"
    err = api_error(hs, "GET", f"{path}?class_id=cls_nope", school.admin)
    assert err.status == 404 and err.body["errcode"] == "M_NOT_FOUND"
    assert "cls_nope" in err.body["error"]
    err = api_error(hs, "GET", f"{path}?class_id={class_a}&role=pupil", school.admin)
    assert err.status == 400 and err.body["errcode"] == "M_INVALID_PARAM"
    for bad in ("limit=0", "limit=1001", "from=nonsense"):
        err = api_error(hs, "GET", f"{path}?{bad}", school.admin)
        assert err.status == 400 and err.body["errcode"] == "M_INVALID_PARAM", bad
    err = api_error(hs, "GET", f"/schools/sch_nope/consents?class_id={class_a}", school.admin)
    assert err.status == 404

    # Others: the per-member rule, person by person; their reads are not audited.
    audited = len(consents_read_entries(hs, school))
    as_parent = class_consents(hs, school, school.parent, class_id=class_a)
    assert {m["user_id"] for m in as_parent["members"]} == {first.user_id, school.parent.user_id}
    assert as_parent["counts"]["video_lessons"] == {"granted": 1, "withdrawn": 0, "none": 1}
    as_teacher = class_consents(hs, school, school.teacher, class_id=class_a, role="student")
    assert as_teacher["members"] == [] and as_teacher["total"] == 0
    as_pupil = class_consents(hs, school, second, class_id=class_a)
    assert [m["user_id"] for m in as_pupil["members"]] == [second.user_id]
    err = api_error(hs, "GET", f"{path}?class_id={class_a}", hs.register("stranger-list"))
    assert err.status == 403 and err.body["errcode"] == "M_FORBIDDEN"
    assert len(consents_read_entries(hs, school)) == audited
    assert api(hs, "GET", "/audit/verify", operator)["ok"]


# -- the school's policy: enforced consents, the self-consent grade -------------------


def school_path(school: School) -> str:
    return f"/schools/{school.school_id}"


@pytest.fixture(scope="module")
def enforcing(hs: RunningHomeserver) -> School:
    """A second school, whose policy the tests below change."""
    built = build_school(hs, hs.register("operator", admin=True), "Школа № 2")
    for user in (built.teacher, *built.students, built.parent):
        wait_for_rooms(hs, user)
    return built


def set_policy(hs: RunningHomeserver, school: School, **policy: Any) -> dict[str, Any]:
    answer = api(hs, "PATCH", school_path(school), school.admin, {"policy": policy})
    shown: dict[str, Any] = api(hs, "GET", school_path(school), school.admin)["policy"]
    assert shown == answer["policy"]
    return shown


async def send(
    hs: RunningHomeserver, user: User, room_id: str, content: dict[str, Any], kind: str = ""
) -> RoomSendResponse | RoomSendError:
    async with hs.client(user) as client:
        resp = await client.room_send(room_id, kind or "m.room.message", content)
        assert isinstance(resp, RoomSendResponse | RoomSendError)
        return resp


def refused(resp: RoomSendResponse | RoomSendError, *words: str) -> bool:
    if not isinstance(resp, RoomSendError):
        return False
    assert resp.status_code == "M_FORBIDDEN", resp
    for word in words:
        assert word in resp.message, (word, resp.message)
    return True


def test_the_policy_fields_their_defaults_and_bad_values(
    hs: RunningHomeserver, enforcing: School
) -> None:
    shown = api(hs, "GET", school_path(enforcing), enforcing.admin)["policy"]
    assert (shown["consent_enforced"], shown["self_consent_grade"]) == ([], 8)
    bad: list[dict[str, Any]] = [
        {"consent_enforced": ["video_lessons"]},  # always enforced, not a choice
        {"consent_enforced": ["selfies"]},
        {"consent_enforced": ["photos", "photos"]},
        {"consent_enforced": "photos"},
        {"self_consent_grade": 0},
        {"self_consent_grade": 12},
        {"self_consent_grade": "8"},
        {"self_consent_grade": True},
        {"self_consent_grade": None},
    ]
    for policy in bad:
        err = api_error(hs, "PATCH", school_path(enforcing), enforcing.admin, {"policy": policy})
        assert err.status == 400 and err.body["errcode"] == "M_BAD_JSON", policy
        field = next(iter(policy))
        assert field in err.body["error"] and " / " in err.body["error"], err.body
    # A teacher does not set the school's policy.
    err = api_error(
        hs,
        "PATCH",
        school_path(enforcing),
        enforcing.teacher,
        {"policy": {"self_consent_grade": 5}},
    )
    assert err.status == 403
    assert api(hs, "GET", school_path(enforcing), enforcing.admin)["policy"] == shown


def test_the_self_consent_grade_is_the_schools(hs: RunningHomeserver, enforcing: School) -> None:
    child = enforcing.students[2]  # grade 7
    path = consents_path(enforcing, child)
    body = {"consents": {"photos": False}}
    assert api_error(hs, "PUT", path, child, body).status == 403  # from grade 8
    assert set_policy(hs, enforcing, self_consent_grade=7)["self_consent_grade"] == 7
    assert api(hs, "PUT", path, child, body)["consents"]["photos"]["via"] == "account"
    set_policy(hs, enforcing, self_consent_grade=8)
    assert api_error(hs, "PUT", path, child, body).status == 403


async def test_communication_consent_when_the_school_enforces_it(
    hs: RunningHomeserver, enforcing: School
) -> None:
    school = enforcing
    child = school.students[0]  # the parent's child; no consent recorded
    chat = school.class_a["rooms"]["class_chat"]
    parents_chat = school.class_a["rooms"]["parents_chat"]
    # Not enforced (the default): nothing changes.
    assert isinstance(await send(hs, child, chat, TEXT), RoomSendResponse)

    assert set_policy(hs, school, consent_enforced=["communication"])["consent_enforced"] == [
        "communication"
    ]
    teacher_says = await send(hs, school.teacher, chat, {"msgtype": "m.text", "body": "Урок"})
    assert isinstance(teacher_says, RoomSendResponse)  # staff: not asked
    assert isinstance(await send(hs, school.parent, parents_chat, TEXT), RoomSendResponse)
    resp = await send(hs, child, chat, TEXT)
    assert refused(
        resp, "общение", "communication", "родитель", "parent", "8", "согласие дать общение"
    )
    assert refused(await send(hs, child, chat, IMAGE))
    reaction = {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": teacher_says.event_id, "key": "👍"}
    }
    assert refused(await send(hs, child, chat, reaction, "m.reaction"))
    # They still read, and answer the school's polls.
    poll = api(
        hs,
        "POST",
        f"/rooms/{urllib.parse.quote(chat, safe='')}/polls",
        school.teacher,
        {"question": "Экскурсия?", "answers": [{"text": "Да"}, {"text": "Нет"}]},
    )
    async with hs.client(child) as client:
        got = await client.room_get_event(chat, teacher_says.event_id)
        assert isinstance(got, RoomGetEventResponse)
        assert got.event.source["content"]["body"] == "Урок"
        start = await client.room_get_event(chat, poll["event_id"])
        assert isinstance(start, RoomGetEventResponse)
    answer = start.event.source["content"][events.POLL_START]["answers"][0]["id"]
    vote = {
        events.POLL_RESPONSE: {"answers": [answer]},
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
    }
    assert isinstance(await send(hs, child, chat, vote, events.POLL_RESPONSE), RoomSendResponse)
    # Another student of a class is refused too; outside school rooms nothing changes.
    assert refused(await send(hs, school.students[1], chat, TEXT))

    # The parent consents: at once the child posts.
    path = consents_path(school, child)
    api(hs, "PUT", path, school.parent, {"consents": {"communication": True}})
    assert isinstance(await send(hs, child, chat, TEXT), RoomSendResponse)
    # Withdrawn (on paper, at the school): refused again.
    body = {"consents": {"communication": False}, "document_number": "№ 20/2026"}
    api(hs, "PUT", path, school.admin, body)
    assert refused(await send(hs, child, chat, TEXT), "communication")
    # The school stops enforcing it: the recorded "no" is recorded only again.
    set_policy(hs, school, consent_enforced=[])
    assert isinstance(await send(hs, child, chat, TEXT), RoomSendResponse)


async def member_content(hs: RunningHomeserver, user: User, room_id: str) -> dict[str, Any]:
    async with hs.client(user) as client:
        resp = await client.room_get_state_event(room_id, "m.room.member", user.user_id)
        assert isinstance(resp, RoomGetStateEventResponse), resp
        return dict(resp.content)


async def member_becomes(
    hs: RunningHomeserver, user: User, room_id: str, seconds: float = 30, **expected: object
) -> None:
    """Synapse sends a profile change into each room from a scheduled task: poll."""
    deadline = time.monotonic() + seconds
    while True:
        content = await member_content(hs, user, room_id)
        if all(content.get(k) == v for k, v in expected.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"member event in {room_id} is {content!r}, not {expected!r}")
        await asyncio.sleep(0.1)


async def test_photos_consent_when_the_school_enforces_it(
    hs: RunningHomeserver, enforcing: School
) -> None:
    school = enforcing
    child = school.students[0]
    chat = school.class_a["rooms"]["class_chat"]
    announcements = school.rooms["announcements"]
    avatar = f"mxc://{hs.server_name}/avatar-{secrets.token_hex(4)}"

    set_policy(hs, school, consent_enforced=["photos"])
    async with hs.client(child) as client:  # a direct chat with a classmate: no school room
        dm = await client.room_create(is_direct=True, invite=[school.students[1].user_id])
        assert isinstance(dm, RoomCreateResponse), dm
    # A new avatar: on the profile and in other rooms, not in the school's rooms. (A new
    # name after it: when the school's rooms show it, the profile change reached them.)
    name = f"Маша {secrets.token_hex(2)}"
    async with hs.client(child) as client:
        assert type(await client.set_avatar(avatar)).__name__ == "ProfileSetAvatarResponse"
        assert type(await client.set_displayname(name)).__name__ == "ProfileSetDisplayNameResponse"
        profile = await client.get_avatar(child.user_id)
        assert getattr(profile, "avatar_url", None) == avatar
    await member_becomes(hs, child, dm.room_id, displayname=name, avatar_url=avatar)
    for room in (chat, announcements):
        await member_becomes(hs, child, room, displayname=name)
        assert "avatar_url" not in await member_content(hs, child, room)
    # Pictures, videos, stickers refused; text and documents are not pictures.
    resp = await send(hs, child, chat, IMAGE)
    assert refused(resp, "фото", "photos", "согласие дать фото")
    assert refused(await send(hs, child, chat, VIDEO))
    assert refused(await send(hs, child, chat, PHOTO_AS_FILE))
    assert refused(await send(hs, child, chat, {"body": "🙂", "url": "mxc://hs/s"}, "m.sticker"))
    assert isinstance(await send(hs, child, chat, TEXT), RoomSendResponse)
    assert isinstance(await send(hs, child, chat, FILE), RoomSendResponse)
    # The teacher's avatar is theirs to show.
    async with hs.client(school.teacher) as client:
        await client.set_avatar(avatar)
    await member_becomes(hs, school.teacher, chat, avatar_url=avatar)

    # The parent consents: the avatar shows at once, pictures go.
    path = consents_path(school, child)
    api(hs, "PUT", path, school.parent, {"consents": {"photos": True}})
    for room in (chat, announcements):
        await member_becomes(hs, child, room, avatar_url=avatar, displayname=name)
    assert isinstance(await send(hs, child, chat, IMAGE), RoomSendResponse)
    # Withdrawn: hidden again, pictures refused.
    api(hs, "PUT", path, school.admin, {"consents": {"photos": False}, "document_number": "21"})
    for room in (chat, announcements):
        await member_becomes(hs, child, room, avatar_url=None, displayname=name)
    assert refused(await send(hs, child, chat, IMAGE))
    set_policy(hs, school, consent_enforced=[])


async def test_avatars_follow_the_school_starting_and_stopping_photos(
    hs: RunningHomeserver, enforcing: School
) -> None:
    """Avatars already shown when the school starts enforcing ``photos`` are taken out
    (in the background: poll), and come back when it stops."""
    school = enforcing
    child = school.students[1]  # no photos consent recorded
    chat = school.class_a["rooms"]["class_chat"]
    avatar = f"mxc://{hs.server_name}/avatar-{secrets.token_hex(4)}"
    set_policy(hs, school, consent_enforced=[])
    async with hs.client(child) as client:
        await client.set_avatar(avatar)
    await member_becomes(hs, child, chat, avatar_url=avatar)
    set_policy(hs, school, consent_enforced=["photos"])
    await member_becomes(hs, child, chat, avatar_url=None)
    set_policy(hs, school, consent_enforced=[])
    await member_becomes(hs, child, chat, avatar_url=avatar)
