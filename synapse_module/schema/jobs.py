"""Tables of the module's background jobs: one row per run (which process ran it)."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "background job runs",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_job_runs (
                job TEXT NOT NULL,
                instance TEXT NOT NULL,
                started_ts BIGINT NOT NULL,
                finished_ts BIGINT,
                result TEXT
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_job_runs_job ON parta_job_runs (job, started_ts)",
        ],
    ),
]
