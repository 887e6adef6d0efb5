"""Scheduled posts' decisions (pure)."""

from typing import Final

# How far back a retry looks for its own message (the author's messages only).
FIND_SENT_LIMIT: Final = 100


def may_send(caller: str, author: str, caller_is_trusted_bot: bool) -> bool:
    """The school bot sends a post when it is due; its author may send it early."""
    return caller == author or caller_is_trusted_bot
