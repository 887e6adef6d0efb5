"""Pure media-token values: room IDs from paths, LiveKit room names and tokens."""

import base64
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Final

import jwt
from synapse.module_api.errors import Codes

from parta_common import tokens

from ..config import LiveKitConfig

if TYPE_CHECKING:
    pass
from ..errors import matrix_error
from .texts import BAD_ROOM_ID

LIVEKIT_TTL: Final = 3600


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
