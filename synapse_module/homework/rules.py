"""Homework: pure decisions (who may set, read, see hand-ins; what a hand-in is; the
fallback text any client shows)."""

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from ..privacy.rules import relation_to
from ..roster.rules import Person, Standing
from . import texts

HANDIN_MSGTYPES = frozenset({"m.file", "m.image", "m.video", "m.audio"})


def parse_due(value: str) -> datetime.date | None:
    """The due date (``YYYY-MM-DD``), None when it is no calendar date."""
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def fallback_body(
    subject: str, due: str, text: str, file_names: Sequence[str] = (), language: str = "ru"
) -> str:
    """The ``body`` a client that knows nothing of Parta shows."""
    body = texts.BODY.text(language, subject=subject, due=due, text=text)
    if file_names:
        body += "\n" + texts.FILES.text(language, names=", ".join(file_names))
    return body


def may_set(standing: Standing | None, class_id: str) -> bool:
    """Teachers of the class and the school's administrators set its homework."""
    return standing is not None and (standing.is_admin or class_id in standing.teaches)


def may_read(standing: Standing | None, class_id: str) -> bool:
    """The class's students, their parents, its teachers and administrators."""
    if standing is None:
        return False
    return (
        standing.is_admin
        or class_id in standing.teaches
        or class_id in standing.learns_in
        or class_id in standing.children_classes
    )


def child_classes(parent: Person, child: Person) -> list[str]:
    """The classes of ``child`` whose homework ``parent`` reads (``/me/homework``): only
    in the schools whose roster names them the child's parent (the one rule,
    :func:`privacy.rules.relation_to`), never a school where they are not, or are the
    parent of another child."""
    classes: set[str] = set()
    for school_id, standing in child.schools.items():
        mine = parent.standing(school_id)
        children = mine.children if mine is not None else frozenset()
        if relation_to(False, parent.user_id, children, child.user_id) == "guardian":
            classes |= standing.learns_in
    return sorted(classes)


def may_see_handins(standing: Standing | None, class_id: str) -> bool:
    return may_set(standing, class_id)


def handin_of(content: Mapping[str, Any]) -> str | None:
    """The homework event a message hands work in for: a file (``m.file``, ``m.image`` …
    with an ``mxc://`` URL) replying (``m.in_reply_to``) to it; else None."""
    if content.get("msgtype") not in HANDIN_MSGTYPES:
        return None
    url = content.get("url")
    if not isinstance(url, str) or not url.startswith("mxc://"):
        return None
    relates = content.get("m.relates_to")
    if not isinstance(relates, Mapping):
        return None
    reply = relates.get("m.in_reply_to")
    if not isinstance(reply, Mapping):
        return None
    event_id = reply.get("event_id")
    return event_id if isinstance(event_id, str) and event_id.startswith("$") else None


def due_order(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Homework by due date, then by when it was set."""
    return sorted(items, key=lambda h: (h["due"], h["ts"], h["event_id"]))
