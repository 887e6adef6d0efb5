"""Pure broadcast decisions (table-tested in tests/test_broadcast_units.py)."""

from collections.abc import Mapping
from typing import Any, Final

from parta_common import events
from parta_common.roles import Role

from ..room_roles import LESSON_LEADERS
from ..roster.rules import Person, SchoolRoom

# The account the relay uploads recordings with: no room, no power, no person.
RECORDER_SUFFIX: Final = "-recorder"


def may_run_broadcasts(role: Role | None) -> bool:
    """Who may create and end broadcasts in a room and hand out their links: the room's
    teachers and administrators (the roster's roles in school rooms, power levels
    elsewhere; see ``room_roles.py``)."""
    return role in LESSON_LEADERS


def schedule_is_valid(starts_at: int | None, ends_at: int | None) -> bool:
    """A broadcast ends after it starts (either may be left open)."""
    return starts_at is None or ends_at is None or ends_at > starts_at


def recording_school(room: SchoolRoom | None, creator: Person) -> str | None:
    """The school whose ``recordings`` retention rule a broadcast's recording follows
    (``None``: no school's — the operator's limit, ``privacy.retention_limits``).

    ``room``: what the roster knows of the broadcast's room. A school's room: that
    school. A room the roster knows that is no school's (a unit's): none. A room the
    roster does not know: the school whose staff the creator is, when exactly one and
    they coordinate nothing — there a person leads a broadcast only as their school's
    staff (``roster.rules.role_outside_school``), so the recording is that school's;
    a coordinator, someone on the staff of several schools, or of none: none.
    """
    if room is not None:
        return room.school_id
    if creator.coordinates:
        return None
    staff_of = [school_id for school_id, s in creator.schools.items() if s.is_staff]
    return staff_of[0] if len(staff_of) == 1 else None


def recorder_user_id(service_user_id: str) -> str:
    """The recorder account beside the module's service account."""
    localpart, server = service_user_id[1:].split(":", 1)
    return f"@{localpart}{RECORDER_SUFFIX}:{server}"


def posted_recording(content: Mapping[str, Any], server_name: str) -> tuple[str, str] | None:
    """``(broadcast_id, media_id)`` when a message's content is a recording the module
    posted (:func:`.events.recording_message`: an ``m.video`` of this server's media with
    the ``org.parta.broadcast`` block), else ``None`` — what the one-time backfill of
    recordings posted before they were tracked looks for."""
    block = content.get(events.BROADCAST)
    url = content.get("url")
    if content.get("msgtype") != "m.video" or not isinstance(block, Mapping):
        return None
    broadcast_id = block.get("broadcast_id")
    if not isinstance(broadcast_id, str) or not broadcast_id or not isinstance(url, str):
        return None
    prefix = f"mxc://{server_name}/"
    media_id = url.removeprefix(prefix)
    if media_id == url or not media_id or "/" in media_id:
        return None
    return broadcast_id, media_id
