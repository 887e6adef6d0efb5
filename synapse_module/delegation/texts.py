"""Why the module does not believe a bot acting for a person (the catalogue's
``delegation.*``)."""

from typing import Final

from parta_common.messages import Message

NOT_A_TRUSTED_BOT: Final = Message("delegation.not_a_trusted_bot")
BOTH_HEADERS: Final = Message("delegation.both_headers")
NO_SUCH_COMMAND: Final = Message("delegation.no_such_command")
NOT_THEIR_COMMAND: Final = Message("delegation.not_their_command")
BOT_NOT_IN_ROOM: Final = Message("delegation.bot_not_in_room")
COMMAND_TOO_OLD: Final = Message("delegation.command_too_old")
