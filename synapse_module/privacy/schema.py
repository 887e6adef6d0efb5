"""Tables of privacy (issue 12): the audit log's hash chain."""

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
]
