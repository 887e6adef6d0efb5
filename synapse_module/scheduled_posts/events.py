"""The message a scheduled post becomes; its content carries ``org.parta.schedule_id``, by
which ``synapse_module/sent_once.py`` recognises it again after a crash."""

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
