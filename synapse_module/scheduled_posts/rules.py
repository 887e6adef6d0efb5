"""Scheduled posts' decisions (pure)."""


def may_send(caller: str, author: str, caller_is_trusted_bot: bool) -> bool:
    """The school bot sends a post when it is due; its author may send it early."""
    return caller == author or caller_is_trusted_bot
