"""Tables of privacy (issue 12): the audit log's hash chain, consents, the erasure journal,
retention rules, subject requests to erase."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "audit log hash chain: each entry's number, the previous entry's hash, its own",
        [
            "ALTER TABLE parta_audit ADD COLUMN seq BIGINT",
            "ALTER TABLE parta_audit ADD COLUMN prev_hash TEXT",
            "ALTER TABLE parta_audit ADD COLUMN hash TEXT",
            "CREATE UNIQUE INDEX parta_audit_seq ON parta_audit (seq)",
            # The chain's head: one row, updated first by every writer (serializes them).
            """CREATE TABLE parta_audit_head (
                id INTEGER PRIMARY KEY,
                seq BIGINT NOT NULL,
                hash TEXT NOT NULL
            )""",
            # Entries written before this step are chained by the first seal.
            "INSERT INTO parta_audit_head (id, seq, hash) VALUES (1, 0, '')",
        ],
    ),
    Step(
        2,
        "consents: per school, person and purpose — who granted, how, when, withdrawn when",
        [
            """CREATE TABLE parta_consents (
                school_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                purpose TEXT NOT NULL,
                granted BOOLEAN NOT NULL,
                recorded_by TEXT NOT NULL,
                via TEXT NOT NULL,
                document_number TEXT,
                granted_ts BIGINT,
                withdrawn_ts BIGINT,
                PRIMARY KEY (school_id, user_id, purpose)
            )""",
        ],
    ),
    Step(
        3,
        "erasure journal: one row per erasure, the steps done; the person's ID only while it runs",
        [
            """CREATE TABLE parta_erasures (
                erasure_id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                user_id TEXT,
                subject_sha256 TEXT NOT NULL,
                requested_by TEXT NOT NULL,
                messages TEXT NOT NULL,
                done TEXT NOT NULL,
                started_ts BIGINT NOT NULL,
                finished_ts BIGINT
            )""",
            "CREATE INDEX parta_erasures_subject ON parta_erasures (subject_sha256)",
        ],
    ),
    Step(
        4,
        "retention: a school's rule per room kind and data kind, in days",
        [
            """CREATE TABLE parta_retention (
                school_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                days INTEGER NOT NULL,
                set_by TEXT NOT NULL,
                set_ts BIGINT NOT NULL,
                PRIMARY KEY (school_id, kind)
            )""",
        ],
    ),
    Step(
        5,
        "audit log anchors: where the kept chain starts after retention removed its oldest entries",
        [
            """CREATE TABLE parta_audit_anchors (
                seq BIGINT PRIMARY KEY,
                hash TEXT NOT NULL,
                ts BIGINT NOT NULL,
                removed BIGINT NOT NULL,
                audit_id TEXT NOT NULL
            )""",
        ],
    ),
    Step(
        6,
        "erasure scope: school (the account stays, another school holds them) or account;"
        " what was asked (the operator: the whole account)",
        [
            "ALTER TABLE parta_erasures ADD COLUMN scope TEXT",
            "ALTER TABLE parta_erasures ADD COLUMN asked TEXT",
        ],
    ),
    Step(
        7,
        "erasure requests: a person (or a guardian for a child) asks the school to erase;"
        " the school carries it out (linking the erasure) or declines with a reason",
        [
            """CREATE TABLE parta_erasure_requests (
                request_id TEXT PRIMARY KEY,
                school_id TEXT NOT NULL,
                user_id TEXT,
                subject_sha256 TEXT NOT NULL,
                requested_by TEXT,
                relation TEXT NOT NULL,
                language TEXT NOT NULL,
                status TEXT NOT NULL,
                created_ts BIGINT NOT NULL,
                due_date TEXT NOT NULL,
                erasure_id TEXT,
                decided_by TEXT,
                decided_ts BIGINT,
                reason TEXT,
                finished_ts BIGINT,
                told_ts BIGINT
            )""",
            "CREATE INDEX parta_erasure_requests_school ON parta_erasure_requests"
            " (school_id, status)",
            # One request at a time per person and school is waiting (open or in progress).
            "CREATE UNIQUE INDEX parta_erasure_requests_waiting ON parta_erasure_requests"
            " (school_id, subject_sha256) WHERE status IN ('open', 'in_progress')",
            "CREATE INDEX parta_erasure_requests_erasure ON parta_erasure_requests (erasure_id)",
        ],
    ),
]
