"""Service tokens already presented: each is good for one request (see ``service_tokens``)."""

from synapse_module.store import Step

STEPS = [
    Step(
        1,
        "spent service tokens",
        [
            """
            CREATE TABLE IF NOT EXISTS parta_spent_service_tokens (
                token_id TEXT NOT NULL PRIMARY KEY,
                expires_ts BIGINT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS parta_spent_service_tokens_expiry"
            " ON parta_spent_service_tokens (expires_ts)",
        ],
    ),
]
