"""Pure media-token values: room IDs from paths, LiveKit room names and tokens."""

import base64
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import jwt
from synapse.module_api.errors import Codes

from parta_common import tokens
from parta_common.roles import Role

from ..config import LiveKitConfig

if TYPE_CHECKING:
    pass
from ..errors import matrix_error
from .texts import BAD_ROOM_ID

LIVEKIT_TTL: Final = 3600
RTC_FOCI_KEY: Final = "org.matrix.msc4143.rtc_foci"


def well_known_rtc_foci(public_baseurl: str) -> dict[str, Any]:
    """What ``.well-known/matrix/client`` carries so that Element Call and Element X find
    this module's lk-jwt-service API (Synapse: ``extra_well_known_client_content``)."""
    base = public_baseurl.rstrip("/")
    return {
        RTC_FOCI_KEY: [
            {"type": "livekit", "livekit_service_url": f"{base}/_synapse/client/parta/v1/livekit"}
        ]
    }


def room_allows_student_screen(
    config_allows: bool, policy_content: dict[str, Any] | None, policy_sender_role: Role | None
) -> bool:
    """Whether students may share their screen in a room's calls: the operator's default
    (``media.students_may_share_screen``) unless a teacher or administrator of the room set
    the room's ``org.parta.call_policy`` (anyone else's is ignored)."""
    if policy_content is None or policy_sender_role not in (Role.TEACHER, Role.ADMINISTRATOR):
        return config_allows
    choice = policy_content.get("students_may_share_screen")
    return choice if isinstance(choice, bool) else config_allows


def room_id_from_path(room_id: str) -> str:
    """The room ID of a (router-decoded) path parameter, or 400 when it is not one."""
    if not room_id.startswith("!") or len(room_id) > 255 or any(c.isspace() for c in room_id):
        raise matrix_error(400, Codes.INVALID_PARAM, BAD_ROOM_ID, room_id=room_id[:80])
    return room_id


def livekit_room_alias(room_id: str) -> str:
    """The LiveKit room for a Matrix room's call (as lk-jwt-service names it)."""
    digest = hashlib.sha256(f"{room_id}|m.call#ROOM".encode()).digest()
    return base64.b64encode(digest).decode("ascii").rstrip("=")


def livekit_token(
    config: LiveKitConfig,
    identity: str,
    name: str,
    room_id: str,
    grants: tokens.Grants,
    now: float | None = None,
) -> str:
    """A LiveKit access token (HS256 with the API secret) carrying Parta's grants."""
    issued = int(now if now is not None else time.time())
    sources = []
    if grants.publish_camera:
        sources.append("camera")
    if grants.publish_microphone:
        sources.append("microphone")
    if grants.publish_screen:
        sources += ["screen_share", "screen_share_audio"]
    payload = {
        "iss": config.api_key,
        "sub": identity,
        "name": name,
        "nbf": issued - 1,
        "exp": issued + LIVEKIT_TTL,
        "jti": secrets.token_hex(8),
        "video": {
            "room": livekit_room_alias(room_id),
            "roomJoin": True,
            "canPublish": bool(sources),
            "canPublishSources": sources,
            "canSubscribe": grants.subscribe,
            "canPublishData": True,
            "canUpdateOwnMetadata": True,
            "roomAdmin": grants.moderate,
        },
    }
    return jwt.encode(payload, config.api_secret, algorithm="HS256")
