"""Classroom rules of a lesson, as plain decisions (no I/O): who gets in, who may do what.

The signalling layer asks these and carries the answer out; tests drive them with tables.
"""

import enum
from collections.abc import Iterator

import attrs

from parta_common.tokens import Grants
from sfu.sources import Source


class Outcome(enum.StrEnum):
    ADMIT = "admit"
    WAIT = "wait"
    REFUSE = "refuse"


@attrs.frozen
class Admission:
    outcome: Outcome
    code: str | None = None


def decide_admission(
    *, moderator: bool, banned: bool, locked: bool, waiting_room: bool, count: int, limit: int
) -> Admission:
    """May a person with a valid token join now? ``count`` = participants admitted."""
    if banned:
        return Admission(Outcome.REFUSE, "banned")
    if moderator:
        # A teacher is never locked out of their own lesson.
        return Admission(Outcome.ADMIT)
    if locked:
        return Admission(Outcome.REFUSE, "lesson_locked")
    if count >= limit:
        return Admission(Outcome.REFUSE, "lesson_full")
    if waiting_room:
        return Admission(Outcome.WAIT)
    return Admission(Outcome.ADMIT)


def decide_admit_from_waiting(*, locked: bool, count: int, limit: int) -> str | None:
    """A moderator admits someone waiting: the refusal code, or None to let them in."""
    if count >= limit:
        return "lesson_full"
    return None


class Action(enum.StrEnum):
    RAISE_HAND = "raise_hand"
    LOWER_HAND = "lower_hand"
    LOWER_ALL_HANDS = "lower_all_hands"
    MUTE = "mute"
    UNMUTE = "unmute"
    MUTE_ALL = "mute_all"
    REMOVE = "remove"
    ALLOW_SCREEN = "allow_screen"
    SET_LESSON = "set_lesson"
    ADMIT = "admit"
    DENY = "deny"
    READMIT = "readmit"


# Actions a moderator may not turn on another moderator.
_NOT_ON_MODERATORS = frozenset((Action.MUTE, Action.REMOVE, Action.ALLOW_SCREEN))


def may(
    action: Action,
    *,
    actor_id: str,
    actor_moderator: bool,
    target_id: str | None = None,
    target_moderator: bool = False,
) -> bool:
    """May the actor do ``action`` (to ``target_id``, when it has a target)?"""
    if action is Action.RAISE_HAND:
        return True
    if action is Action.LOWER_HAND and target_id in (None, actor_id):
        return True
    if not actor_moderator:
        return False
    return not (action in _NOT_ON_MODERATORS and target_moderator and target_id != actor_id)


def may_share_screen(grants: Grants, students_may_share_screen: bool, allowed: bool) -> bool:
    return grants.publish_screen or grants.moderate or students_may_share_screen or allowed


def may_publish(source: Source, grants: Grants, screen_allowed: bool) -> bool:
    if source is Source.CAMERA:
        return grants.publish_camera
    if source is Source.MICROPHONE:
        return grants.publish_microphone
    return screen_allowed


class HandQueue:
    """Raised hands, earliest first."""

    def __init__(self) -> None:
        self._raised: dict[str, int] = {}

    def raise_hand(self, participant_id: str, at_ms: int) -> bool:
        if participant_id in self._raised:
            return False
        self._raised[participant_id] = at_ms
        return True

    def lower(self, participant_id: str) -> bool:
        return self._raised.pop(participant_id, None) is not None

    def clear(self) -> bool:
        changed = bool(self._raised)
        self._raised.clear()
        return changed

    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._raised

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(list(self._raised.items()))


class BanList:
    """Users removed from a lesson, per room, until the ban runs out."""

    def __init__(self) -> None:
        self._bans: dict[tuple[str, str], float] = {}

    def ban(self, room_id: str, user_id: str, until: float) -> None:
        key = (room_id, user_id)
        self._bans[key] = max(until, self._bans.get(key, 0.0))

    def is_banned(self, room_id: str, user_id: str, now: float) -> bool:
        until = self._bans.get((room_id, user_id))
        if until is None:
            return False
        if until <= now:
            del self._bans[(room_id, user_id)]
            return False
        return True

    def unban(self, room_id: str, user_id: str) -> bool:
        return self._bans.pop((room_id, user_id), None) is not None

    def settle_room(self, room_id: str, until: float) -> None:
        """The lesson emptied: its bans for the lesson's lifetime now end at ``until``."""
        for key, ends in list(self._bans.items()):
            if key[0] == room_id and ends > until:
                self._bans[key] = until
