"""Read receipts in the school-wide rooms: the deployment's Element Web sends private ones.

Synapse hands every public read receipt (``m.read``) in a room to every member's /sync;
in the announcements room that is every pupil of the school, so a thousand pupils reading
one announcement is up to a million sync answers (``bench/school_receipts.py``,
docs/benchmarks.md). A private receipt (``m.read.private``) reaches nobody but its
sender. ``deploy/element/config.json`` therefore sets Element Web's ``sendReadReceipts``
to false by default (each person can turn it back on). These tests hold that setting and
what it relies on, on a real Synapse: a private receipt still clears the reader's own
unread count and is not in a schoolmate's sync, where a public one is.
"""

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.harness import RunningHomeserver, User
from tests.roster_helpers import School, build_school, wait_for_rooms

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ELEMENT_CONFIG = Path(__file__).resolve().parent.parent / "deploy/element/config.json"


def test_element_web_sends_private_read_receipts_by_default() -> None:
    config = json.loads(ELEMENT_CONFIG.read_text(encoding="utf-8"))
    assert config["setting_defaults"]["sendReadReceipts"] is False


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> School:
    built = build_school(synapse, synapse.register("operator", admin=True))
    for user in (built.admin, *built.students):
        wait_for_rooms(synapse, user)
    return built


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def sync(hs: RunningHomeserver, user: User, room_id: str, since: str | None = None) -> Any:
    """One /sync of ``room_id`` alone, answered at once."""
    filter_ = {"room": {"rooms": [room_id], "timeline": {"limit": 1}}}
    query = {"filter": json.dumps(filter_), "timeout": "0"}
    if since:
        query["since"] = since
    return hs.request(
        "GET", "/_matrix/client/v3/sync?" + urllib.parse.urlencode(query), None, user.access_token
    )


def receipts_by(body: Any, room_id: str, event_id: str, reader: str) -> set[str]:
    """The receipt types of ``reader`` on ``event_id`` that a sync answer carries."""
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    types: set[str] = set()
    for event in room.get("ephemeral", {}).get("events", []):
        if event["type"] == "m.receipt":
            for kind, readers in event["content"].get(event_id, {}).items():
                if reader in readers:
                    types.add(kind)
    return types


def test_a_private_receipt_clears_the_readers_count_and_reaches_nobody_else(
    synapse: RunningHomeserver, school: School
) -> None:
    room = school.rooms["announcements"]
    reader, schoolmate = school.students[0], school.students[1]
    since = sync(synapse, schoolmate, room)["next_batch"]
    path = f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/receipts-test"
    sent = synapse.request(
        "PUT",
        path,
        {"msgtype": "m.text", "body": "Завтра линейка в 8:30"},
        school.admin.access_token,
    )
    announcement = sent["event_id"]
    before = sync(synapse, reader, room)
    assert before["rooms"]["join"][room]["unread_notifications"]["notification_count"] >= 1

    receipt = f"/_matrix/client/v3/rooms/{q(room)}/receipt/m.read.private/{q(announcement)}"
    synapse.request("POST", receipt, {}, reader.access_token)
    # Incremental: Synapse keeps a finished /sync answer for the same request a while.
    mine = sync(synapse, reader, room, before["next_batch"])
    assert mine["rooms"]["join"][room]["unread_notifications"]["notification_count"] == 0
    assert receipts_by(mine, room, announcement, reader.user_id) == {"m.read.private"}
    theirs = sync(synapse, schoolmate, room, since)
    assert receipts_by(theirs, room, announcement, reader.user_id) == set()

    # The same reader's public receipt does reach the schoolmate (what the setting avoids).
    synapse.request("POST", receipt.replace("m.read.private", "m.read"), {}, reader.access_token)
    theirs = sync(synapse, schoolmate, room, theirs["next_batch"])
    assert receipts_by(theirs, room, announcement, reader.user_id) == {"m.read"}
