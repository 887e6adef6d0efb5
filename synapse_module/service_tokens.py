"""Service tokens are single-use: the module accepts each one once.

The SFU and the broadcast relay sign a fresh service token for every request
(``parta_common.tokens.sign_service_token``, a minute long, with a random ``jti``). A
token seen again — a request captured and replayed within its minute — is refused. The
spent IDs live in the database, so a replay to another worker is refused too; rows are
dropped once the token would have expired anyway.
"""

import time

from synapse.module_api import LoggingTransaction

from parta_common import tokens
from synapse_module.store import Step, Store

# Migrations of this table (registered in ``migrations.py`` as area "service_tokens").
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


def spend_txn(txn: LoggingTransaction, token_id: str, expires_ts: int, now: int) -> bool:
    """Record ``token_id`` as spent; False if it already was."""
    txn.execute("DELETE FROM parta_spent_service_tokens WHERE expires_ts < ?", (now,))
    txn.execute(
        "INSERT INTO parta_spent_service_tokens (token_id, expires_ts) VALUES (?, ?)"
        " ON CONFLICT (token_id) DO NOTHING",
        (token_id, expires_ts),
    )
    return txn.rowcount == 1


async def spend_service_token(
    store: Store, token: str, secret: str, services: frozenset[str]
) -> tokens.ServiceClaims:
    """Verify ``token`` for one of ``services`` and spend it, or :class:`TokenError`."""
    claims = tokens.verify_service_token(token, secret, services)
    # READ COMMITTED: concurrent spends (each also drops expired rows) queue on the rows
    # they share instead of failing to serialize on PostgreSQL.
    fresh = await store.run_read_committed(
        "parta_service_token_spend",
        spend_txn,
        claims.token_id,
        claims.expires_at + tokens.LEEWAY,
        int(time.time()),
    )
    if not fresh:
        raise tokens.TokenError("service token was already used")
    return claims
