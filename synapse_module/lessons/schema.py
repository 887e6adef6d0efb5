"""Tables of video lessons: the lessons of each room, and who was in its SFU lesson when.

Sessions are kept per room, not per lesson: someone who joins before the teacher starts
the lesson (the teacher, usually) counts from the start; a lesson's attendance is the
room's sessions clipped to the lesson's start and end.
"""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "lessons and the SFU sessions of each room",
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
            CREATE TABLE IF NOT EXISTS parta_room_sessions (
                room_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                session_id TEXT NOT NULL,
                display_name TEXT,
                joined_at BIGINT NOT NULL,
                left_at BIGINT,
                PRIMARY KEY (room_id, user_id, session_id, joined_at)
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_room_sessions_time"
            " ON parta_room_sessions (room_id, joined_at)",
        ],
    ),
    Step(
        2,
        "lessons by start time (statistics: the lessons held on a day)",
        ["CREATE INDEX IF NOT EXISTS parta_lessons_started ON parta_lessons (started_at)"],
    ),
]
