"""The event a bot names as a person's command, read from Synapse's own ``events`` table.

Reading an event by id is not offered by ``synapse.module_api``; :func:`command_txn`
reads Synapse's ``events`` table through ``run_db_interaction`` (the columns used have
been stable since Synapse 1.68) — with scheduled_posts/store.py's look-up, the only places
the module depends on Synapse's schema.
"""

from synapse.module_api import LoggingTransaction

from .rules import CommandEvent


def command_txn(txn: LoggingTransaction, event_id: str) -> CommandEvent | None:
    txn.execute(
        "SELECT room_id, sender, received_ts, rejection_reason, outlier FROM events"
        " WHERE event_id = ?",
        (event_id,),
    )
    row = txn.fetchone()
    if row is None or row[1] is None or row[2] is None:
        return None
    room_id, sender, received_ts, rejection, outlier = row
    return CommandEvent(str(room_id), str(sender), int(received_ts), bool(rejection or outlier))
