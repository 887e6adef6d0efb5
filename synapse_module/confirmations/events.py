"""Read confirmations send nothing of their own: a teacher's or administrator's message
carries ``org.parta.confirm_required: true`` and its text ends with the line any client
shows (:func:`ask_content`); members confirm with a reply «+» or a reaction."""

from typing import Any

from . import texts
from .rules import CONFIRM_PER_CHILD, CONFIRM_REQUIRED


def ask_content(
    body: str, language: str = "ru", *, by_reaction: bool = False, per_child: bool = False
) -> dict[str, Any]:
    """An announcement asking for confirmation, with the plain-text request line:
    «ответьте +», or «поставьте 👍» (``by_reaction``: the announcements room, where
    students and parents may react but not write). ``per_child``: parents confirm for
    each child."""
    prompt = texts.PROMPT_REACTION if by_reaction else texts.PROMPT
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": f"{body}\n\n{prompt.text(language)}",
        CONFIRM_REQUIRED: True,
    }
    if per_child:
        content[CONFIRM_PER_CHILD] = True
    return content
