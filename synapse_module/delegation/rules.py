"""When a bot's request on a person's behalf is believed (pure; table test in
tests/test_on_behalf_units.py).

The bot's application service owns only its own user (an exclusive namespace), so it
cannot become anybody through the homeserver. When it carries out a person's command it
calls the module as itself and names the person and the command::

    X-Parta-On-Behalf-Of: @ann:school.ru
    X-Parta-Command: $event_id_of_anns_message

It is believed when the caller is one of the configured ``trusted_bots``, the event
exists on this server, was sent by that person, in a room the bot is joined to, and
arrived less than ``bot_command_window_seconds`` ago. Then the request runs with the
person's rights, and only theirs; anything else is a 403, written to the audit log.
"""

from typing import Final

import attrs

from parta_common.messages import Message

from .texts import (
    BOT_NOT_IN_ROOM,
    COMMAND_TOO_OLD,
    NO_SUCH_COMMAND,
    NOT_A_TRUSTED_BOT,
    NOT_THEIR_COMMAND,
)

ON_BEHALF_HEADER: Final = b"X-Parta-On-Behalf-Of"
COMMAND_HEADER: Final = b"X-Parta-Command"


@attrs.frozen
class CommandEvent:
    """What the module knows of the event a bot names as the person's command."""

    room_id: str
    sender: str
    received_ts: int
    rejected: bool


def command_refusal(
    *,
    trusted_bot: bool,
    person: str,
    command: CommandEvent | None,
    bot_joined: bool,
    now_ms: int,
    window_ms: int,
) -> Message | None:
    """Why a bot may not act for ``person`` on ``command`` now, or ``None`` if it may."""
    if not trusted_bot:
        return NOT_A_TRUSTED_BOT
    if command is None or command.rejected:
        return NO_SUCH_COMMAND
    if command.sender != person:
        return NOT_THEIR_COMMAND
    if not bot_joined:
        return BOT_NOT_IN_ROOM
    if not 0 <= now_ms - command.received_ts <= window_ms:
        return COMMAND_TOO_OLD
    return None


def is_trusted_bot(user_id: str, server_name: str, trusted_bots: tuple[str, ...]) -> bool:
    """``user_id`` is one of this server's ``trusted_bots`` (by localpart)."""
    localpart, _, server = user_id.removeprefix("@").partition(":")
    return server == server_name and localpart in trusted_bots
