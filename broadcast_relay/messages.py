"""What speakers and viewers are told, in Russian and English."""

import json
from typing import Final

from aiohttp import web

from parta_common.messages import Message

NO_TOKEN: Final = Message("broadcast.no_token")
BAD_TOKEN: Final = Message("broadcast.bad_token")
NOT_A_SPEAKER: Final = Message("broadcast.not_a_speaker")
NO_SCREEN_GRANT: Final = Message("broadcast.no_screen_grant")
NO_SUCH_BROADCAST: Final = Message("broadcast.no_such_broadcast")
BROADCAST_ENDED: Final = Message("broadcast.broadcast_ended")
NOT_SDP: Final = Message("broadcast.not_sdp")
BAD_SDP: Final = Message("broadcast.bad_sdp")
NO_SUCH_SESSION: Final = Message("broadcast.no_such_session")
NOT_YOUR_SESSION: Final = Message("broadcast.not_your_session")
NO_TRICKLE: Final = Message("broadcast.no_trickle")
LINK_INVALID: Final = Message("broadcast.link_invalid")
LINK_EXPIRED: Final = Message("broadcast.link_expired")
LINK_REVOKED: Final = Message("broadcast.link_revoked")
NOT_STARTED: Final = Message("broadcast.not_started")
UNAVAILABLE: Final = Message("broadcast.unavailable")


def error(status: int, errcode: str, message: Message, **kwargs: object) -> web.Response:
    """A Matrix-style JSON error that no cache keeps."""
    return web.json_response(
        {"errcode": errcode, "error": message.format(**kwargs), **message.fields(**kwargs)},
        status=status,
        headers={"Cache-Control": "no-store"},
        dumps=readable_json,
    )


def readable_json(value: object) -> str:
    """JSON with Russian left readable (no \\u escapes)."""
    return json.dumps(value, ensure_ascii=False)
