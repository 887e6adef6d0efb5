"""What broadcasts send into rooms: the ``org.parta.broadcast`` state and the recording
posted as a document."""

from typing import Any

from parta_common import events

from .texts import RECORDING_DESCRIPTION, RECORDING_SECTION, RECORDING_TAG


def broadcast_state(row: dict[str, Any]) -> dict[str, Any]:
    """The ``org.parta.broadcast`` state event of a broadcast (state key = its ID)."""
    return {
        "type": events.BROADCAST,
        "room_id": row["room_id"],
        "state_key": row["broadcast_id"],
        "content": {
            "broadcast_id": row["broadcast_id"],
            "title": row["title"],
            "speakers": row["speakers"],
            "schedule": {"starts_at": row["starts_at"], "ends_at": row["ends_at"]},
            "status": row["status"],
            "public": row["public"],
            "recording": row["recording"],
        },
    }


def recording_message(row: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """An uploaded recording as an ``m.video`` with an ``org.parta.document`` block."""
    filename = f"{row['title']}.mp4"
    info: dict[str, Any] = {"mimetype": "video/mp4", "size": body["size"]}
    for key in ("duration", "w", "h"):
        if key in body:
            info[key] = body[key]
    return {
        "msgtype": "m.video",
        "body": filename,
        "url": body["content_uri"],
        "info": info,
        # So it is listed among the school's documents (and still plays in Element).
        "org.parta.document": {
            "title": row["title"],
            "description": RECORDING_DESCRIPTION.format(user_id=row["created_by"]),
            "tags": [RECORDING_TAG.ru, RECORDING_TAG.en],
            "section": RECORDING_SECTION.ru,
        },
        events.BROADCAST: {"broadcast_id": row["broadcast_id"], "created_by": row["created_by"]},
    }
