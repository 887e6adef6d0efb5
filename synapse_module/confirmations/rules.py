"""Read confirmations: pure decisions (what confirms, who is expected, the status)."""

from collections.abc import Mapping
from typing import Any, Final, Literal

from parta_common.messages import Message

from ..roster.rules import Standing
from . import texts

# In an m.room.message's content: this message asks its readers to confirm.
CONFIRM_REQUIRED: Final = "org.parta.confirm_required"
# Beside it: parents confirm for each of their children (a permission slip per child).
CONFIRM_PER_CHILD: Final = "org.parta.confirm_per_child"
# Reactions (m.annotation keys) that confirm; a reply confirms when its text is one too.
CONFIRMING: Final = frozenset({"+", "+1", "👍", "✅", "✔️"})
# The class of people in no class (staff, …) in the status.
NO_CLASS: Final = ""
MS_PER_HOUR: Final = 3_600_000


def asks_confirmation(content: Mapping[str, Any]) -> bool:
    return content.get(CONFIRM_REQUIRED) is True


def asks_per_child(content: Mapping[str, Any]) -> bool:
    return asks_confirmation(content) and content.get(CONFIRM_PER_CHILD) is True


def who(user_id: str, child_id: str = "") -> str:
    """How a confirmation is listed: the person, or ``parent/child`` for a parent's
    confirmation for one child (``/@`` never occurs inside a Matrix user ID)."""
    return f"{user_id}/{child_id}" if child_id else user_id


def children_in_scope(
    children_classes: Mapping[str, frozenset[str]], room_class: str | None
) -> list[str]:
    """The children a parent confirms for in a room: those in the room's class (a class
    room), or all of them (a school-wide room)."""
    return sorted(
        child
        for child, classes in children_classes.items()
        if room_class is None or room_class in classes
    )


def expected_entries(
    user_id: str,
    standing: Standing | None,
    per_child: bool,
    children_classes: Mapping[str, frozenset[str]],
    room_class: str | None,
) -> dict[str, list[str]]:
    """Who is expected to confirm, for one member: themselves under their classes or,
    when the request is per child and they are a parent, once per child in scope under
    that child's class."""
    children = children_in_scope(children_classes, room_class) if per_child else []
    if not children:
        return {user_id: classes_of(standing)}
    return {who(user_id, c): sorted(children_classes[c]) or [NO_CLASS] for c in children}


def _reply_text(body: str) -> str:
    """A reply's own text, without the quoted fallback lines (``> …``) clients add."""
    lines = [line for line in body.splitlines() if not line.startswith(">")]
    return "\n".join(lines).strip()


def confirmation_target(event_type: str, content: Mapping[str, Any]) -> str | None:
    """The event a reaction (``m.annotation`` with a confirming key) or a reply «+»
    confirms; None for anything else."""
    relates = content.get("m.relates_to")
    if not isinstance(relates, Mapping):
        return None
    if event_type == "m.reaction":
        if relates.get("rel_type") != "m.annotation" or relates.get("key") not in CONFIRMING:
            return None
        target = relates.get("event_id")
    elif event_type == "m.room.message":
        reply = relates.get("m.in_reply_to")
        body = content.get("body")
        if not isinstance(reply, Mapping) or not isinstance(body, str):
            return None
        if _reply_text(body) not in CONFIRMING:
            return None
        target = reply.get("event_id")
    else:
        return None
    return target if isinstance(target, str) and target.startswith("$") else None


def classes_of(standing: Standing | None) -> list[str]:
    """The classes a person counts under: a student's, a parent's children's; staff none."""
    if standing is None:
        return [NO_CLASS]
    classes = sorted(standing.learns_in | standing.children_classes)
    return classes or [NO_CLASS]


def may_mark(standing: Standing | None) -> bool:
    return standing is not None and standing.is_staff


def who_sees_refusal(standing: Standing | None, user_id: str, sender: str) -> Message | None:
    """Who reads who has confirmed a request: the school's administrators, and its sender
    while they are the school's staff (``None``); one no longer in the school is told so
    (``NOT_IN_SCHOOL``), anyone else ``WHO_SEES``."""
    if standing is None or not standing.roles:
        return texts.NOT_IN_SCHOOL
    if standing.is_admin or (user_id == sender and standing.is_staff):
        return None
    return texts.WHO_SEES


def status(expected: Mapping[str, list[str]], confirmed: Mapping[str, int]) -> dict[str, Any]:
    """Who has and has not confirmed, per class. ``expected``: user → their classes;
    ``confirmed``: user → when (ms). A person counts once, listed under each class."""
    by_class: dict[str, dict[str, list[str]]] = {}
    for user_id in sorted(expected):
        for class_id in expected[user_id]:
            group = by_class.setdefault(class_id, {"confirmed": [], "not_confirmed": []})
            group["confirmed" if user_id in confirmed else "not_confirmed"].append(user_id)
    done = sum(1 for u in expected if u in confirmed)
    return {
        "expected": len(expected),
        "confirmed": done,
        "classes": [{"class_id": c, **by_class[c]} for c in sorted(by_class)],
    }


def unwho(entry: str) -> tuple[str, str]:
    """:func:`who` undone: (person, child or ``""``)."""
    user_id, sep, child = entry.partition("/@")
    return (user_id, f"@{child}") if sep else (user_id, "")


def request_language(body: object, english_prompts: tuple[str, ...]) -> str:
    """The language a request was written in: English when its text ends with an
    English request line (:func:`events.ask_content`), else Russian, the school's."""
    if isinstance(body, str) and body.rstrip().endswith(english_prompts):
        return "en"
    return "ru"


ReminderState = Literal["wait", "due", "never"]


def reminder_state(asked_ts: int, hours: int | None, now_ms: int) -> ReminderState:
    """Whether the single reminder about a request is due: ``hours`` after it was asked
    (the school's ``confirmation_reminder_hours``); never while the school sets none."""
    if hours is None:
        return "never"
    return "due" if now_ms >= asked_ts + hours * MS_PER_HOUR else "wait"


def to_remind(
    expected: Mapping[str, list[str]], confirmed: Mapping[str, int], reminded: set[str]
) -> list[tuple[str, str]]:
    """Who is reminded: (person, child) for each expected entry neither confirmed nor
    reminded before, in order."""
    return [unwho(e) for e in sorted(expected) if e not in confirmed and e not in reminded]
