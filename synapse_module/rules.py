"""Pure decisions: may this person do that here? No Synapse imports, table-tested."""

from parta_common import events


def may_send_structure_state(sender: str, event_type: str, service_user_id: str) -> bool:
    """Only the service account writes the state that describes the school structure."""
    if event_type not in events.STRUCTURE_STATE_TYPES:
        return True
    return sender == service_user_id
