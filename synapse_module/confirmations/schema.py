"""Tables of read confirmations: the messages that ask for one, and who confirmed."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "messages asking for read confirmation, and the confirmations",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_confirm_requests (
                event_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                school_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                ts BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS parta_confirmations (
                request_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (request_id, user_id)
            )
            """,
        ],
    ),
]
