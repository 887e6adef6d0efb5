"""Tables of read confirmations: the messages that ask for one, and who confirmed
(``child_id`` '' for a person's own confirmation, a child's ID when a parent confirms for
that child)."""

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
    Step(
        2,
        "confirmation per child: a request may ask parents to confirm for each child",
        [
            "ALTER TABLE parta_confirm_requests ADD COLUMN per_child BOOLEAN NOT NULL"
            " DEFAULT FALSE",
            """
            CREATE TABLE parta_confirmations_by_child (
                request_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                child_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (request_id, user_id, child_id)
            )
            """,
            "INSERT INTO parta_confirmations_by_child (request_id, user_id, child_id, ts)"
            " SELECT request_id, user_id, '', ts FROM parta_confirmations",
            "DROP TABLE parta_confirmations",
            "ALTER TABLE parta_confirmations_by_child RENAME TO parta_confirmations",
        ],
    ),
    Step(
        3,
        "the bot's single reminder to those who have not confirmed",
        [
            "ALTER TABLE parta_confirm_requests ADD COLUMN language TEXT NOT NULL DEFAULT 'ru'",
            "ALTER TABLE parta_confirm_requests ADD COLUMN reminders_done BOOLEAN NOT NULL"
            " DEFAULT FALSE",
            "CREATE INDEX parta_confirm_requests_reminders ON parta_confirm_requests"
            " (reminders_done, ts)",
            """
            CREATE TABLE parta_confirm_reminders (
                request_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                child_id TEXT NOT NULL,
                ts BIGINT NOT NULL,
                PRIMARY KEY (request_id, user_id, child_id)
            )
            """,
        ],
    ),
]
