"""The message a scheduled post becomes, and recognising it again after a crash: its
content carries ``org.parta.schedule_id``."""

import json
from typing import Any

from parta_common import events


def post_event(room_id: str, author: str, body: str, schedule_id: str) -> dict[str, Any]:
    """The ``m.room.message`` the module sends as ``author``."""
    return {
        "type": "m.room.message",
        "room_id": room_id,
        "sender": author,
        "content": {"msgtype": "m.text", "body": body, events.SCHEDULE_ID: schedule_id},
    }


def carries_schedule_id(event_json: str, schedule_id: str) -> bool:
    """Whether a stored event (its JSON) is the message of ``schedule_id``."""
    try:
        content = json.loads(event_json).get("content", {})
    except (ValueError, AttributeError):
        return False
    return isinstance(content, dict) and content.get(events.SCHEDULE_ID) == schedule_id
