"""Pure decisions: may this person do that here? No Synapse imports, table-tested."""

from typing import Any

from parta_common import events


def may_send_structure_state(sender: str, event_type: str, service_user_id: str) -> bool:
    """Only the service account writes the state that describes the school structure."""
    if event_type not in events.STRUCTURE_STATE_TYPES:
        return True
    return sender == service_user_id


def creation_content_for_old_clients(config: dict[str, Any], creator: str) -> dict[str, Any]:
    """``createRoom`` content with ``creation_content.creator`` filled in.

    Since room version 11 the creator is the create event's sender and the ``creator``
    key is gone; nheko 0.11 (Debian bookworm's Matrix client) still requires it and
    drops a create event without it, so every space shows up as a plain room and every
    chat a person starts (DMs too) disappears from its list. The key is ignored by the
    server in versions 11 and 12, and older versions set it to the same value anyway.
    A value the request set itself is kept, and malformed content is left for the
    server to refuse.
    """
    raw = config.get("creation_content", {})
    if not isinstance(raw, dict):
        return config
    return {**config, "creation_content": {"creator": creator, **raw}}
