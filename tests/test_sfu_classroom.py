"""Classroom rules as tables: admission, who may do what, hands, bans."""

import math

import pytest

from parta_common.roles import Role
from parta_common.tokens import Grants, grant_for
from sfu.classroom import (
    Action,
    Admission,
    BanList,
    HandQueue,
    Outcome,
    decide_admission,
    may,
    may_publish,
    may_share_screen,
)
from sfu.sources import Source

ADMIT = Admission(Outcome.ADMIT)
WAIT = Admission(Outcome.WAIT)


@pytest.mark.parametrize(
    ("moderator", "banned", "locked", "waiting_room", "count", "limit", "expected"),
    [
        (False, False, False, False, 0, 100, ADMIT),
        (False, False, False, False, 99, 100, ADMIT),
        (False, False, False, False, 100, 100, Admission(Outcome.REFUSE, "lesson_full")),
        (True, False, False, False, 100, 100, ADMIT),  # the teacher is never locked out
        (False, False, True, False, 3, 100, Admission(Outcome.REFUSE, "lesson_locked")),
        (True, False, True, False, 3, 100, ADMIT),
        (False, False, False, True, 3, 100, WAIT),
        (True, False, False, True, 3, 100, ADMIT),
        (False, False, False, True, 100, 100, Admission(Outcome.REFUSE, "lesson_full")),
        (False, True, False, False, 0, 100, Admission(Outcome.REFUSE, "banned")),
        (True, True, False, False, 0, 100, Admission(Outcome.REFUSE, "banned")),
    ],
)
def test_admission(
    moderator: bool,
    banned: bool,
    locked: bool,
    waiting_room: bool,
    count: int,
    limit: int,
    expected: Admission,
) -> None:
    got = decide_admission(
        moderator=moderator,
        banned=banned,
        locked=locked,
        waiting_room=waiting_room,
        count=count,
        limit=limit,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("action", "actor_moderator", "target", "target_moderator", "allowed"),
    [
        (Action.RAISE_HAND, False, None, False, True),
        (Action.LOWER_HAND, False, None, False, True),
        (Action.LOWER_HAND, False, "me", False, True),
        (Action.LOWER_HAND, False, "p9", False, False),
        (Action.LOWER_HAND, True, "p9", False, True),
        (Action.LOWER_ALL_HANDS, False, None, False, False),
        (Action.LOWER_ALL_HANDS, True, None, False, True),
        (Action.MUTE, False, "p9", False, False),
        (Action.MUTE, True, "p9", False, True),
        (Action.MUTE, True, "p9", True, False),  # not a co-teacher
        (Action.UNMUTE, True, "p9", False, True),
        (Action.MUTE_ALL, False, None, False, False),
        (Action.MUTE_ALL, True, None, False, True),
        (Action.REMOVE, False, "p9", False, False),
        (Action.REMOVE, True, "p9", False, True),
        (Action.REMOVE, True, "p9", True, False),
        (Action.ALLOW_SCREEN, True, "p9", False, True),
        (Action.ALLOW_SCREEN, False, "me", False, False),
        (Action.SET_LESSON, False, None, False, False),
        (Action.SET_LESSON, True, None, False, True),
        (Action.ADMIT, True, "p9", False, True),
        (Action.ADMIT, False, "p9", False, False),
        (Action.DENY, True, "p9", False, True),
    ],
)
def test_may(
    action: Action,
    actor_moderator: bool,
    target: str | None,
    target_moderator: bool,
    allowed: bool,
) -> None:
    assert (
        may(
            action,
            actor_id="me",
            actor_moderator=actor_moderator,
            target_id=target,
            target_moderator=target_moderator,
        )
        is allowed
    )


@pytest.mark.parametrize(
    ("role", "lesson_allows", "individually", "expected"),
    [
        (Role.TEACHER, False, False, True),
        (Role.STUDENT, False, False, False),
        (Role.STUDENT, True, False, True),
        (Role.STUDENT, False, True, True),
        (Role.PARENT, False, False, False),
    ],
)
def test_screen_share(role: Role, lesson_allows: bool, individually: bool, expected: bool) -> None:
    grants = grant_for(role)
    assert may_share_screen(grants, lesson_allows, individually) is expected
    assert may_publish(Source.SCREEN, grants, expected) is expected


@pytest.mark.parametrize(
    ("grants", "source", "expected"),
    [
        (grant_for(Role.STUDENT), Source.CAMERA, True),
        (grant_for(Role.STUDENT), Source.MICROPHONE, True),
        (grant_for(Role.PARENT), Source.CAMERA, False),
        (grant_for(Role.PARENT), Source.MICROPHONE, False),
        (Grants(publish_camera=False, publish_microphone=True), Source.CAMERA, False),
    ],
)
def test_may_publish(grants: Grants, source: Source, expected: bool) -> None:
    assert may_publish(source, grants, screen_allowed=False) is expected


def test_hand_queue_keeps_the_order_hands_went_up() -> None:
    hands = HandQueue()
    assert hands.raise_hand("p3", 100)
    assert hands.raise_hand("p1", 200)
    assert not hands.raise_hand("p3", 300)  # raising again keeps the place
    assert hands.raise_hand("p2", 400)
    assert list(hands) == [("p3", 100), ("p1", 200), ("p2", 400)]
    assert hands.lower("p1")
    assert not hands.lower("p1")
    assert list(hands) == [("p3", 100), ("p2", 400)]
    assert hands.raise_hand("p1", 500)
    assert [pid for pid, _ in hands] == ["p3", "p2", "p1"]
    assert hands.clear()
    assert list(hands) == []
    assert not hands.clear()


def test_ban_lasts_the_lesson_then_outlives_every_old_token() -> None:
    bans = BanList()
    bans.ban("!a", "@u:s", math.inf)
    assert bans.is_banned("!a", "@u:s", now=1e12)
    assert not bans.is_banned("!b", "@u:s", now=0)
    assert not bans.is_banned("!a", "@v:s", now=0)
    bans.settle_room("!a", until=1000.0)
    assert bans.is_banned("!a", "@u:s", now=999.0)
    assert not bans.is_banned("!a", "@u:s", now=1000.0)
