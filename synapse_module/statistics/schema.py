"""Tables of statistics (issue 11): one row per school per day, written by the daily job,
so a track over months is one query; and who has been seen signed in."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "daily figures per school; people seen signed in and how far user_ips was read",
        [
            """CREATE TABLE parta_stats_daily (
                school_id TEXT NOT NULL,
                day TEXT NOT NULL,
                teachers INTEGER NOT NULL,
                teachers_registered INTEGER NOT NULL,
                teachers_signed_in INTEGER NOT NULL,
                students INTEGER NOT NULL,
                students_registered INTEGER NOT NULL,
                students_signed_in INTEGER NOT NULL,
                parents INTEGER NOT NULL,
                parents_registered INTEGER NOT NULL,
                parents_signed_in INTEGER NOT NULL,
                classes INTEGER NOT NULL,
                active_classes INTEGER NOT NULL,
                messages INTEGER NOT NULL,
                senders INTEGER NOT NULL,
                lessons INTEGER NOT NULL,
                lesson_minutes INTEGER NOT NULL,
                lesson_attendees INTEGER NOT NULL,
                broadcasts INTEGER NOT NULL,
                viewers INTEGER NOT NULL,
                computed_ts BIGINT NOT NULL,
                PRIMARY KEY (school_id, day)
            )""",
            "CREATE INDEX parta_stats_daily_day ON parta_stats_daily (day)",
            """CREATE TABLE parta_stats_seen (
                user_id TEXT PRIMARY KEY,
                first_seen_ts BIGINT NOT NULL
            )""",
            """CREATE TABLE parta_stats_cursor (
                id INTEGER PRIMARY KEY,
                seen_until BIGINT NOT NULL
            )""",
            "INSERT INTO parta_stats_cursor (id, seen_until) VALUES (1, 0)",
        ],
    ),
]
