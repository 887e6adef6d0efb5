"""Sending a message as a person exactly once, across a crash: finding it again.

Scheduled posts and messages held by quiet hours are sent by the module as their
author. Each marks its row before the send and puts its own ID in the content (under
its key: ``org.parta.schedule_id``, ``org.parta.held_id``); a send that finds the mark
first looks for that message among the author's latest events in the room — Synapse's
``events`` and ``event_json`` tables, as delegation/store.py reads them (no Synapse code
imported).
"""

import json
from typing import Final

from synapse.module_api import LoggingTransaction

# How far back a retry looks for its own message (the author's events of that type).
FIND_SENT_LIMIT: Final = 100


def carries(event_json: str, key: str, value: str) -> bool:
    """Whether a stored event (its JSON) has ``value`` under ``key`` in its content."""
    try:
        content = json.loads(event_json).get("content", {})
    except (ValueError, AttributeError):
        return False
    return isinstance(content, dict) and content.get(key) == value


def find_sent_txn(
    txn: LoggingTransaction,
    room_id: str,
    author: str,
    key: str,
    value: str,
    event_type: str = "m.room.message",
) -> str | None:
    """The author's latest event of ``event_type`` in the room whose content has
    ``value`` under ``key``, or ``None``."""
    txn.execute(
        "SELECT e.event_id, j.json FROM events e JOIN event_json j ON j.event_id = e.event_id"
        " WHERE e.room_id = ? AND e.sender = ? AND e.type = ?"
        " ORDER BY e.stream_ordering DESC LIMIT ?",
        (room_id, author, event_type, FIND_SENT_LIMIT),
    )
    for event_id, raw in txn.fetchall():
        if carries(str(raw), key, value):
            return str(event_id)
    return None
