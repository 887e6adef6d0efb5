"""What a person reads about quiet hours (catalogue ``rules.quiet_*``)."""

from typing import Final

from parta_common.messages import Message

# The refusal a teacher's client shows, and the notice in their «Parta» room.
HELD: Final = Message("rules.quiet_held")
# The notice when a held message could not be sent after all (the room refused it).
NOT_DELIVERED: Final = Message("rules.quiet_not_delivered")
# Quiet hours refuse a call (it cannot wait for the morning) and an invitation.
CALL: Final = Message("rules.quiet_call")
INVITE: Final = Message("rules.quiet_invite")
