"""Matrix event types Parta defines (namespace ``org.parta.``) or relies on."""

from typing import Final

NAMESPACE: Final = "org.parta."

# State events describing the school structure; only the module's service account
# sends them.
SCHOOL: Final = "org.parta.school"
UNIT: Final = "org.parta.unit"
CLASS: Final = "org.parta.class"
# In a scheduled message's content: its stable transaction id, so a retry can find the
# message in the room instead of sending it twice (bridge/schedule.py).
SCHEDULE_ID: Final = "org.parta.schedule_id"
ROOM_KIND: Final = "org.parta.room_kind"

# Content types.
DOCUMENT: Final = "org.parta.document"
ARTICLE: Final = "org.parta.article"
# A homework assignment: m.room.message (m.text fallback) with this block.
HOMEWORK: Final = "org.parta.homework"
LESSON: Final = "org.parta.lesson"
BROADCAST: Final = "org.parta.broadcast"
# A room's call settings a teacher chooses (state key ""): {"students_may_share_screen": bool}.
# The lesson tokens the module signs (for Parta's SFU and for LiveKit) follow it.
CALL_POLICY: Final = "org.parta.call_policy"

# MatrixRTC (MSC4143) call membership, as Element Call and Element X send it.
CALL_MEMBER: Final = "org.matrix.msc3401.call.member"

# MSC3381 polls, as Element sends and renders them.
POLL_START: Final = "org.matrix.msc3381.poll.start"
POLL_RESPONSE: Final = "org.matrix.msc3381.poll.response"
POLL_END: Final = "org.matrix.msc3381.poll.end"
TEXT_FALLBACK: Final = "org.matrix.msc1767.text"
# The same polls under their stable types (Matrix spec v1.7), held to the same rules.
STABLE_POLL_START: Final = "m.poll.start"
STABLE_POLL_RESPONSE: Final = "m.poll.response"
STABLE_POLL_END: Final = "m.poll.end"
POLL_STARTS: Final = frozenset({POLL_START, STABLE_POLL_START})
POLL_RESPONSES: Final = frozenset({POLL_RESPONSE, STABLE_POLL_RESPONSE})
POLL_ENDS: Final = frozenset({POLL_END, STABLE_POLL_END})

# State event types that describe the school structure and that no person may send.
STRUCTURE_STATE_TYPES: Final = frozenset({SCHOOL, UNIT, CLASS, ROOM_KIND})


def is_parta_type(event_type: str) -> bool:
    return event_type.startswith(NAMESPACE)
