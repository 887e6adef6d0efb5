"""Tables of reports: the complaints rooms of each school and class, where the reading of
Synapse's ``event_reports`` has got to, and each reporter's notice room."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "complaints rooms, the report cursor and reporters' notice rooms",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_complaint_rooms (
                school_id TEXT NOT NULL,
                class_id TEXT NOT NULL,
                room_id TEXT NOT NULL,
                PRIMARY KEY (school_id, class_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS parta_report_cursor (
                name TEXT PRIMARY KEY,
                last_report_id BIGINT NOT NULL
            )
            """,
            # Reports made before the module was installed stay with the operator.
            "INSERT INTO parta_report_cursor (name, last_report_id)"
            " SELECT 'event_reports', COALESCE(MAX(id), 0) FROM event_reports",
            """
            CREATE TABLE IF NOT EXISTS parta_notice_rooms (
                user_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL
            )
            """,
        ],
    ),
]
