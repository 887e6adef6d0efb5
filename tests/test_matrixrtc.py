"""Element Call through LiveKit: the focus in .well-known, MatrixRTC membership in a class
chat from a real client, and LiveKit tokens whose grants follow Parta's roles — decoded
and verified by LiveKit's own server SDK (``livekit-api``), as a LiveKit server would.
"""

import secrets
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from livekit.api import TokenVerifier
from livekit.api.access_token import Claims
from nio import RoomPutStateError, RoomPutStateResponse

from devtools.homeserver import HttpError
from parta_common import events
from parta_common.roles import Role
from synapse_module.media_tokens.rules import livekit_room_alias, room_allows_student_screen
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import School, api, build_school

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LIVEKIT = {"url": "wss://livekit.test", "api_key": "parta-lk", "api_secret": secrets.token_hex(24)}


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    config = {
        "media": {"enabled": True, "token_secret": secrets.token_urlsafe(32), "livekit": LIVEKIT}
    }
    with running_homeserver(tmp_path_factory.mktemp("rtc"), module_config=config) as running:
        yield running


@pytest.fixture(scope="module")
def school(hs: RunningHomeserver) -> School:
    """The school, with its guardians' consent to video lessons on paper for 7А's
    students but the last (docs/privacy.md: without it, camera and microphone are off)."""
    school = build_school(hs, hs.register("operator", admin=True))
    for student in school.students[:-1]:
        path = f"/schools/{school.school_id}/members/{student.user_id}/consents"
        body = {"consents": {"video_lessons": True}, "document_number": "№ 1"}
        api(hs, "PUT", path, school.admin, body)
    return school


def service_url(hs: RunningHomeserver) -> str:
    well_known = hs.request("GET", "/.well-known/matrix/client")
    foci = well_known["org.matrix.msc4143.rtc_foci"]
    assert foci[0]["type"] == "livekit"
    url: str = foci[0]["livekit_service_url"]
    return url


def livekit_token(hs: RunningHomeserver, user: User, room_id: str) -> Claims:
    """What Element Call does: an OpenID token, then the focus's /get_token."""
    openid = hs.request(
        "POST",
        f"/_matrix/client/v3/user/{urllib.parse.quote(user.user_id)}/openid/request_token",
        {},
        user.access_token,
    )
    path = urllib.parse.urlsplit(service_url(hs)).path
    answer: dict[str, Any] = hs.request(
        "POST",
        f"{path}/get_token",
        {
            "room_id": room_id,
            "slot_id": "m.call#ROOM",
            "openid_token": openid,
            "member": {
                "id": secrets.token_hex(4),
                "claimed_user_id": user.user_id,
                "claimed_device_id": user.device_id,
            },
        },
    )
    assert answer["url"] == LIVEKIT["url"]
    claims = TokenVerifier(LIVEKIT["api_key"], LIVEKIT["api_secret"]).verify(answer["jwt"])
    assert claims.identity == f"{user.user_id}:{user.device_id}"
    assert claims.video is not None
    assert claims.video.room == livekit_room_alias(room_id)
    assert claims.video.room_join is True
    return claims


def membership(hs: RunningHomeserver, user: User, room_id: str) -> dict[str, Any]:
    """A MatrixRTC (MSC4143) call membership as Element Call sends it."""
    return {
        "application": "m.call",
        "call_id": "",
        "scope": "m.room",
        "device_id": user.device_id,
        "expires": 4 * 3600 * 1000,
        "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
        "foci_preferred": [
            {
                "type": "livekit",
                "livekit_service_url": service_url(hs),
                "livekit_alias": room_id,
            }
        ],
    }


async def put_state(
    hs: RunningHomeserver, user: User, room_id: str, event_type: str, key: str, content: Any
) -> RoomPutStateResponse | RoomPutStateError:
    async with hs.client(user) as client:
        return await client.room_put_state(room_id, event_type, content, state_key=key)


def test_well_known_advertises_the_module_as_the_livekit_focus(hs: RunningHomeserver) -> None:
    assert service_url(hs) == f"{hs.base_url}/_synapse/client/parta/v1/livekit"


async def test_a_student_joins_the_class_call_and_gets_a_token_without_screen(
    hs: RunningHomeserver, school: School
) -> None:
    room = school.class_a["rooms"]["class_chat"]
    student = school.students[0]
    key = f"_{student.user_id}_{student.device_id}_m.call"
    sent = await put_state(
        hs, student, room, events.CALL_MEMBER, key, membership(hs, student, room)
    )
    assert isinstance(sent, RoomPutStateResponse), sent

    claims = livekit_token(hs, student, room)
    assert claims.video is not None
    assert claims.video.room_admin is False
    assert claims.video.can_publish is True
    assert claims.video.can_publish_sources == ["camera", "microphone"]
    assert claims.video.can_subscribe is True

    teacher = livekit_token(hs, school.teacher, room)
    assert teacher.video is not None
    assert teacher.video.room_admin is True
    assert "screen_share" in (teacher.video.can_publish_sources or [])


async def test_a_student_without_video_consent_gets_no_camera_and_no_microphone(
    hs: RunningHomeserver, school: School
) -> None:
    claims = livekit_token(hs, school.students[-1], school.class_a["rooms"]["class_chat"])
    assert claims.video is not None
    assert claims.video.can_publish is False
    assert not claims.video.can_publish_sources
    assert claims.video.can_subscribe is True


async def test_the_teacher_allows_and_forbids_students_screen_sharing(
    hs: RunningHomeserver, school: School
) -> None:
    room = school.class_a["rooms"]["class_chat"]
    student = school.students[1]

    # A student cannot allow it themselves (power levels: teachers set the call policy).
    refused = await put_state(
        hs, student, room, events.CALL_POLICY, "", {"students_may_share_screen": True}
    )
    assert isinstance(refused, RoomPutStateError), refused

    for allowed in (True, False):
        sent = await put_state(
            hs, school.teacher, room, events.CALL_POLICY, "", {"students_may_share_screen": allowed}
        )
        assert isinstance(sent, RoomPutStateResponse), sent
        claims = livekit_token(hs, student, room)
        assert claims.video is not None
        sources = claims.video.can_publish_sources or []
        assert ("screen_share" in sources) is allowed, sources


async def test_a_stranger_gets_no_token(hs: RunningHomeserver, school: School) -> None:
    room = school.class_a["rooms"]["class_chat"]
    stranger = hs.register("stranger")
    # Not even the membership event goes in: they are not in the room.
    sent = await put_state(
        hs, stranger, room, events.CALL_MEMBER, f"_{stranger.user_id}_D_m.call", {}
    )
    assert isinstance(sent, RoomPutStateError), sent
    # A student of another class: in the school, not in this class.
    for person in (stranger, school.other_student):
        with pytest.raises(HttpError) as refused:
            livekit_token(hs, person, room)
        assert refused.value.status == 403
        assert refused.value.body["errcode"] == "M_FORBIDDEN"
        assert " / " in refused.value.body["error"], refused.value.body


@pytest.mark.parametrize(
    ("config", "content", "sender", "allowed"),
    [
        (False, None, None, False),
        (True, None, None, True),
        (False, {"students_may_share_screen": True}, Role.TEACHER, True),
        (True, {"students_may_share_screen": False}, Role.ADMINISTRATOR, False),
        (False, {"students_may_share_screen": True}, Role.STUDENT, False),
        (False, {"students_may_share_screen": True}, None, False),
        (False, {"students_may_share_screen": "yes"}, Role.TEACHER, False),
    ],
)
def test_room_call_policy_rule(
    config: bool, content: dict[str, Any] | None, sender: Role | None, allowed: bool
) -> None:
    assert room_allows_student_screen(config, content, sender) is allowed
