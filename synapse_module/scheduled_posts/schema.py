"""Tables of the scheduled-posts area: what the school bot posts later as its author."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "scheduled posts, sent once as their author",
        [
            """CREATE TABLE parta_scheduled_posts (
                post_id TEXT PRIMARY KEY,
                author TEXT NOT NULL,
                room_id TEXT NOT NULL,
                body TEXT NOT NULL,
                schedule_id TEXT NOT NULL,
                command TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                sending_at BIGINT,
                event_id TEXT,
                sent_at BIGINT
            )""",
        ],
    ),
]
