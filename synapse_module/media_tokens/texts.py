"""What a person reads about media tokens (Russian and English)."""

from typing import Final

from parta_common.messages import Message

MEDIA_DISABLED: Final = Message("media_tokens.media_disabled")
BAD_ROOM_ID: Final = Message("media_tokens.bad_room_id")
NOT_A_MEMBER: Final = Message("media_tokens.not_a_member")
OTHER_SERVER: Final = Message("media_tokens.other_server")
OPENID_INVALID: Final = Message("media_tokens.openid_invalid")
OPENID_UNCHECKED: Final = Message("media_tokens.openid_unchecked")

LIVEKIT_OFF: Final = Message("media_tokens.livekit_off")
WRONG_CLAIM: Final = Message("media_tokens.wrong_claim")
# How long a LiveKit token lives (lk-jwt-service: one hour).
