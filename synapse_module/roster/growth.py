"""The two-person limit of students' private rooms, counted under a lock per room.

The group-chat ban counts joined and invited people at every invite and join
(``rules.may_grow_private_room``). Synapse queues a room's membership changes per
process only (``RoomMemberHandler.member_linearizer``), so counting the room's state
alone let two invites made at the same moment on two processes (main and a generic
worker, which serves ``/rooms/{id}/invite`` too) both pass: each read the state before
the other's invite was in it (reproduced in tests/test_workers.py). So each person let
in is also *claimed* here, under a row lock of the room (a row with an empty user ID,
taken by the first statement; READ COMMITTED, so what the previous holder committed is
seen), and a claim counts until the room's state has that person's membership or
:data:`CLAIM_MS` has passed (an invite that failed after the check).
"""

from collections.abc import Mapping
from typing import Final

from synapse.module_api import LoggingTransaction

# How long a claim counts for a person the room's state does not have yet.
CLAIM_MS: Final = 60_000
# The memberships that count: in the room, or invited to it.
PRESENT: Final = ("join", "invite")


def claim_txn(
    txn: LoggingTransaction,
    room_id: str,
    newcomer: str,
    members: Mapping[str, str],
    limit: int,
    now: int,
) -> int:
    """How many people besides ``newcomer`` are in the room: its state's joined and
    invited ``members`` (user → membership) and those claimed moments ago that the state
    does not have yet. Fewer than ``limit``: ``newcomer`` is claimed. Run READ COMMITTED."""
    txn.execute(
        "INSERT INTO parta_room_growth (room_id, user_id, claimed_ts) VALUES (?, '', ?)"
        " ON CONFLICT (room_id, user_id) DO UPDATE SET claimed_ts = excluded.claimed_ts",
        (room_id, now),
    )
    txn.execute(
        "SELECT user_id FROM parta_room_growth WHERE room_id = ? AND user_id <> ''"
        " AND claimed_ts > ?",
        (room_id, now - CLAIM_MS),
    )
    claimed = {str(r[0]) for r in txn.fetchall()}
    present = {u for u, m in members.items() if m in PRESENT}
    present |= {u for u in claimed if u not in members}
    present.discard(newcomer)
    if len(present) < limit:
        txn.execute(
            "INSERT INTO parta_room_growth (room_id, user_id, claimed_ts) VALUES (?, ?, ?)"
            " ON CONFLICT (room_id, user_id) DO UPDATE SET claimed_ts = excluded.claimed_ts",
            (room_id, newcomer, now),
        )
    txn.execute(
        "DELETE FROM parta_room_growth WHERE room_id = ? AND user_id <> '' AND claimed_ts <= ?",
        (room_id, now - CLAIM_MS),
    )
    return len(present)
