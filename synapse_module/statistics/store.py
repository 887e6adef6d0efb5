"""SQL of statistics: the daily snapshot rows, the journal of people seen signed in, and
the counts read from Synapse's own tables (messages from ``events``, sign-ins from
``user_ips``) — each bounded by an index, never a scan over all events.

Messages: ``events_ts`` (origin_server_ts, stream_ordering) gives the first stream
position of the day; the count then walks ``events_room_stream`` (room_id,
stream_ordering) for the school's rooms from there on only.
"""

from collections.abc import Iterable, Sequence
from typing import Final

from synapse.module_api import LoggingTransaction

from .rules import FIELDS, Figures

# What counts as a message: text, files, articles, documents (m.room.message), polls.
MESSAGE_TYPES: Final = ("m.room.message", "org.matrix.msc3381.poll.start")
_CHUNK: Final = 500
# Above this many people, read the whole sign-in journal rather than look each up.
_WHOLE_JOURNAL: Final = 5000


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# -- snapshots ----------------------------------------------------------------------


def put_days_txn(
    txn: LoggingTransaction, rows: list[tuple[str, str, Figures]], now: int, replace: bool
) -> int:
    """Write (school, day, figures) rows; ``replace``: a day computed again overwrites."""
    columns = ", ".join(FIELDS)
    marks = ", ".join("?" * (len(FIELDS) + 3))
    conflict = (
        "DO UPDATE SET " + ", ".join(f"{f} = excluded.{f}" for f in (*FIELDS, "computed_ts"))
        if replace
        else "DO NOTHING"
    )
    txn.execute_batch(
        f"INSERT INTO parta_stats_daily (school_id, day, {columns}, computed_ts)"
        f" VALUES ({marks}) ON CONFLICT (school_id, day) {conflict}",
        [(school, day, *_values(figures), now) for school, day, figures in rows],
    )
    return len(rows)


def _values(figures: Figures) -> tuple[int, ...]:
    return tuple(getattr(figures, f) for f in FIELDS)


def days_txn(
    txn: LoggingTransaction, school_ids: Sequence[str], first: str, last: str
) -> list[tuple[str, str, Figures]]:
    """The snapshot rows of these schools from ``first`` to ``last`` (YYYY-MM-DD)."""
    out: list[tuple[str, str, Figures]] = []
    columns = ", ".join(FIELDS)
    for chunk in _chunks(sorted(set(school_ids))):
        marks = ",".join("?" * len(chunk))
        txn.execute(
            f"SELECT school_id, day, {columns} FROM parta_stats_daily"
            f" WHERE school_id IN ({marks}) AND day >= ? AND day <= ?",
            [*chunk, first, last],
        )
        out.extend((str(r[0]), str(r[1]), Figures(*map(int, r[2:]))) for r in txn.fetchall())
    return out


def last_days_txn(txn: LoggingTransaction) -> dict[str, str]:
    """Each school's latest snapshot day."""
    txn.execute("SELECT school_id, MAX(day) FROM parta_stats_daily GROUP BY school_id")
    return {str(s): str(d) for s, d in txn.fetchall()}


# -- people seen signed in ----------------------------------------------------------


def sweep_seen_txn(txn: LoggingTransaction, now: int) -> int:
    """Copy into the journal everyone ``user_ips`` has seen since the last sweep (by its
    ``last_seen`` index), so a sign-in is remembered after Synapse prunes ``user_ips``."""
    txn.execute("SELECT seen_until FROM parta_stats_cursor WHERE id = 1")
    row = txn.fetchone()
    since = int(row[0]) if row else 0
    txn.execute(
        "SELECT user_id, MIN(last_seen) FROM user_ips WHERE last_seen >= ? GROUP BY user_id",
        (since,),
    )
    seen = [(str(u), int(ts)) for u, ts in txn.fetchall()]
    txn.execute_batch(
        "INSERT INTO parta_stats_seen (user_id, first_seen_ts) VALUES (?, ?)"
        " ON CONFLICT (user_id) DO NOTHING",
        seen,
    )
    # user_ips rows are written in batches a few seconds late: look back a minute.
    txn.execute("UPDATE parta_stats_cursor SET seen_until = ? WHERE id = 1", (now - 60_000,))
    return len(seen)


def seen_before_txn(txn: LoggingTransaction, user_ids: Sequence[str], before: int) -> set[str]:
    """Of ``user_ids``, those seen signed in before ``before``. For a region (tens of
    thousands of people) one pass over the journal beats a hundred ``IN`` look-ups."""
    wanted = set(user_ids)
    if len(wanted) > _WHOLE_JOURNAL:
        txn.execute("SELECT user_id FROM parta_stats_seen WHERE first_seen_ts < ?", (before,))
        return {str(r[0]) for r in txn.fetchall()} & wanted
    out: set[str] = set()
    for chunk in _chunks(sorted(wanted)):
        marks = ",".join("?" * len(chunk))
        txn.execute(
            f"SELECT user_id FROM parta_stats_seen WHERE user_id IN ({marks})"
            " AND first_seen_ts < ?",
            [*chunk, before],
        )
        out.update(str(r[0]) for r in txn.fetchall())
    return out


# -- messages, from Synapse's events -----------------------------------------------


def _first_position(txn: LoggingTransaction, since: int) -> int | None:
    """The stream position from which events sent at ``since`` or later lie."""
    txn.execute("SELECT MIN(stream_ordering) FROM events WHERE origin_server_ts >= ?", (since,))
    row = txn.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def messages_txn(
    txn: LoggingTransaction, room_ids: Sequence[str], start: int, end: int, skip: str
) -> list[tuple[str, str, int]]:
    """(room, sender, messages) sent in ``[start, end)`` in these rooms (not by ``skip``,
    the service account)."""
    position = _first_position(txn, start)
    if position is None:
        return []
    types = ",".join("?" * len(MESSAGE_TYPES))
    out: list[tuple[str, str, int]] = []
    for chunk in _chunks(sorted(set(room_ids))):
        marks = ",".join("?" * len(chunk))
        txn.execute(
            "SELECT room_id, sender, COUNT(*) FROM events"
            f" WHERE room_id IN ({marks}) AND stream_ordering >= ?"
            f" AND origin_server_ts >= ? AND origin_server_ts < ? AND type IN ({types})"
            " AND sender != ? AND NOT outlier"
            " GROUP BY room_id, sender",
            [*chunk, position, start, end, *MESSAGE_TYPES, skip],
        )
        out.extend((str(r), str(s), int(n)) for r, s, n in txn.fetchall())
    return out


def active_rooms_txn(
    txn: LoggingTransaction, room_ids: Sequence[str], start: int, end: int, skip: str
) -> set[str]:
    """Of these rooms, those with a message in ``[start, end)``."""
    return {room for room, _sender, _n in messages_txn(txn, room_ids, start, end, skip)}
