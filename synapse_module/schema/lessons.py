"""Tables of video lessons: the lessons of each room and who was in them when."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "lessons and attendance sessions",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_lessons (
                lesson_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                title TEXT NOT NULL,
                status TEXT NOT NULL,
                scheduled_start BIGINT NOT NULL,
                started_at BIGINT,
                ended_at BIGINT,
                created_by TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_lessons_room ON parta_lessons (room_id, status)",
            """
            CREATE TABLE IF NOT EXISTS parta_lesson_sessions (
                lesson_id TEXT NOT NULL,
                session_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                display_name TEXT,
                joined_at BIGINT NOT NULL,
                left_at BIGINT,
                PRIMARY KEY (lesson_id, session_id)
            )
            """,
        ],
    ),
]
