"""The rule for the school bot acting for a person (synapse_module/delegation/rules.py), as a table.

The same rule runs against a real Synapse in tests/test_bridge_bot.py
(``test_the_bot_acts_for_a_person_only_on_their_recent_command``); the window's edge
is here, where the clock is a number.
"""

import pytest

from synapse_module.delegation.rules import CommandEvent, command_refusal, is_trusted_bot
from synapse_module.delegation.texts import (
    BOT_NOT_IN_ROOM,
    COMMAND_TOO_OLD,
    NO_SUCH_COMMAND,
    NOT_A_TRUSTED_BOT,
    NOT_THEIR_COMMAND,
)
from synapse_module.scheduled_posts.rules import may_send

ANN = "@ann:s"
NOW = 10_000_000
WINDOW = 1_800_000
FRESH = CommandEvent("!dm:s", ANN, NOW - 1000, rejected=False)


@pytest.mark.parametrize(
    ("trusted", "command", "joined", "expected"),
    [
        (True, FRESH, True, None),
        (True, CommandEvent("!dm:s", ANN, NOW - WINDOW, False), True, None),
        (False, FRESH, True, NOT_A_TRUSTED_BOT),
        (True, None, True, NO_SUCH_COMMAND),
        (True, CommandEvent("!dm:s", ANN, NOW - 1000, rejected=True), True, NO_SUCH_COMMAND),
        (True, CommandEvent("!dm:s", "@bob:s", NOW - 1000, False), True, NOT_THEIR_COMMAND),
        (True, FRESH, False, BOT_NOT_IN_ROOM),
        (True, CommandEvent("!dm:s", ANN, NOW - WINDOW - 1, False), True, COMMAND_TOO_OLD),
        (True, CommandEvent("!dm:s", ANN, NOW + 60_000, False), True, COMMAND_TOO_OLD),
    ],
)
def test_command_refusal(
    trusted: bool, command: CommandEvent | None, joined: bool, expected: object
) -> None:
    verdict = command_refusal(
        trusted_bot=trusted,
        person=ANN,
        command=command,
        bot_joined=joined,
        now_ms=NOW,
        window_ms=WINDOW,
    )
    assert verdict == expected


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("@parta-bot:s", True),
        ("@parta-bot:other", False),  # another server's bot of the same name
        ("@ann:s", False),
        ("@parta-bot:s:8448", False),
    ],
)
def test_is_trusted_bot(user_id: str, expected: bool) -> None:
    assert is_trusted_bot(user_id, "s", ("parta-bot",)) is expected


@pytest.mark.parametrize(
    ("caller", "trusted", "expected"),
    [
        ("@parta-bot:s", True, True),  # the bot, when the post is due
        (ANN, False, True),  # its author, early
        ("@bob:s", False, False),
    ],
)
def test_who_may_send_a_scheduled_post(caller: str, trusted: bool, expected: bool) -> None:
    assert may_send(caller, ANN, trusted) is expected
