"""Consents (issue 12 item 1): who records them, and what a missing one changes in a
lesson (camera and microphone off) and a broadcast (no student speaker)."""

import secrets
import urllib.parse
from collections.abc import Iterator

import pytest

from parta_common import tokens
from parta_common.roles import Role
from parta_common.tokens import Grants, grant_for
from synapse_module.privacy.rules import (
    NO_VIDEO_CONSENT,
    lesson_grants,
    may_record_consent,
    may_speak_in_broadcast,
)
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import School, api, api_error, build_school

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
