"""Read confirmations send nothing of their own: a teacher's or administrator's message
carries ``org.parta.confirm_required: true`` and its text ends with the line any client
shows (:func:`ask_content`); members confirm with a reply «+» or a reaction."""

from typing import Any

from . import texts
from .rules import CONFIRM_REQUIRED


def ask_content(body: str, language: str = "ru") -> dict[str, Any]:
    """An announcement asking for confirmation, with the plain-text request line."""
    return {
        "msgtype": "m.text",
        "body": f"{body}\n\n{texts.PROMPT.text(language)}",
        CONFIRM_REQUIRED: True,
    }
