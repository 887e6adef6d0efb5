"""Tables of roster imports made through the module's API (the console's import)."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "roster imports: the files, the plan, progress; OneRoster people → accounts",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_imports (
                import_id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                actor TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                state TEXT NOT NULL,
                files TEXT NOT NULL,
                plan TEXT NOT NULL,
                stage TEXT NOT NULL,
                done INTEGER NOT NULL,
                total INTEGER NOT NULL,
                result TEXT,
                error TEXT
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_imports_school ON parta_imports (school_id)",
            """
            CREATE TABLE IF NOT EXISTS parta_import_people (
                school_id TEXT NOT NULL,
                source_id TEXT NOT NULL,
                user_id TEXT NOT NULL UNIQUE,
                display_name TEXT NOT NULL,
                state TEXT NOT NULL,
                sign_in_code TEXT NOT NULL,
                import_id TEXT NOT NULL,
                PRIMARY KEY (school_id, source_id)
            )
            """,
        ],
    ),
    Step(
        2,
        "one running import per school: two at once made every class twice",
        [
            # Any second one a crash left running is failed first (start-up fails
            # every running import anyway; applying it again resumes it).
            """
            UPDATE parta_imports SET state = 'failed' WHERE state = 'running'
            AND import_id NOT IN (
                SELECT MIN(import_id) FROM parta_imports WHERE state = 'running'
                GROUP BY school_id
            )
            """,
            "CREATE UNIQUE INDEX IF NOT EXISTS parta_imports_running"
            " ON parta_imports (school_id) WHERE state = 'running'",
        ],
    ),
]
