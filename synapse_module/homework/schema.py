"""Tables of homework: the assignments teachers post and the work students hand in
(both indexed from the room events, which stay the record)."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "homework assignments and hand-ins",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_homework (
                event_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                school_id TEXT NOT NULL,
                class_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                body TEXT NOT NULL,
                due TEXT NOT NULL,
                files TEXT NOT NULL,
                sender TEXT NOT NULL,
                ts BIGINT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_homework_class ON parta_homework (class_id, due)",
            """
            CREATE TABLE IF NOT EXISTS parta_handins (
                event_id TEXT PRIMARY KEY,
                homework_id TEXT NOT NULL,
                student TEXT NOT NULL,
                name TEXT NOT NULL,
                url TEXT NOT NULL,
                ts BIGINT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_handins_homework ON parta_handins (homework_id, ts)",
        ],
    ),
]
