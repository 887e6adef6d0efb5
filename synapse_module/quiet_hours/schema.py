"""Tables of quiet hours: the messages held until the school's quiet hours end."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "messages held during quiet hours, sent once as their author when they end",
        [
            """CREATE TABLE parta_held_messages (
                held_id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                event_type TEXT NOT NULL,
                content TEXT NOT NULL,
                digest TEXT NOT NULL,
                held_at BIGINT NOT NULL,
                release_at BIGINT NOT NULL,
                sending_at BIGINT,
                event_id TEXT,
                sent_at BIGINT,
                failed TEXT
            )""",
            "CREATE INDEX parta_held_messages_due ON parta_held_messages (release_at)"
            " WHERE event_id IS NULL AND failed IS NULL",
            "CREATE INDEX parta_held_messages_sender ON parta_held_messages (sender, held_at)",
        ],
    ),
]
