"""Homework sends nothing of its own: teachers post the assignment (an ``m.room.message``
with an ``org.parta.homework`` block) and students hand in files as replies; the module
checks and indexes those events (``callbacks.py``). This builds the content a client
should send, for the bot and the tests."""

from collections.abc import Sequence
from typing import Any

from parta_common import events

from .rules import fallback_body


def homework_content(
    subject: str,
    text: str,
    due: str,
    class_id: str,
    files: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """An assignment's ``m.room.message`` content: the ``m.text`` any client shows and the
    block Parta reads."""
    block: dict[str, Any] = {"subject": subject, "text": text, "due": due, "class_id": class_id}
    if files:
        block["files"] = list(files)
    return {
        "msgtype": "m.text",
        "body": fallback_body(subject, due, text, [f["name"] for f in files]),
        events.HOMEWORK: block,
    }
