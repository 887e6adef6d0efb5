"""The bot's own database: ``mautrix.util.async_db`` with an upgrade table.

One SQL dialect (``$1`` placeholders) for SQLite and PostgreSQL. Each numbered step is
one transaction; a database newer than this code is refused at startup.
"""

import logging
from typing import Any

from mautrix.util.async_db import Connection, Database, UpgradeTable
from mautrix.util.logging import TraceLogger

upgrade_table = UpgradeTable(database_name="Parta bot", log=logging.getLogger("bridge.db"))


async def upgrade_v1(conn: Connection) -> None:
    # A message the bot sends later: announcements and homework reminders. `state` goes
    # pending → claimed → sent; a claimed row is only ever sent with the transaction id
    # derived from its id, so a retry after a crash is deduplicated by the homeserver.
    await conn.execute(
        """CREATE TABLE scheduled_message (
            id          TEXT PRIMARY KEY,
            kind        TEXT NOT NULL,
            school_id   TEXT,
            room_id     TEXT NOT NULL,
            body        TEXT NOT NULL,
            due_at      BIGINT NOT NULL,
            created_by  TEXT NOT NULL,
            state       TEXT NOT NULL DEFAULT 'pending',
            claimed_at  BIGINT,
            sent_at     BIGINT,
            event_id    TEXT,
            attempts    INTEGER NOT NULL DEFAULT 0,
            last_error  TEXT
        )"""
    )
    await conn.execute("CREATE INDEX scheduled_message_due ON scheduled_message (state, due_at)")
    # One roster import: the files' digest, who asked, where to answer, the plan.
    await conn.execute(
        """CREATE TABLE roster_import (
            id          TEXT PRIMARY KEY,
            digest      TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            room_id     TEXT,
            state       TEXT NOT NULL,
            source      TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            finished_at BIGINT
        )"""
    )
    # Who a OneRoster person is on this server, across imports. The row is written
    # (state 'claimed', with the sign-in code) *before* the account is registered, so a
    # restart knows the account may exist and checks it with that code instead of
    # making a second one.
    await conn.execute(
        """CREATE TABLE roster_person (
            source_id   TEXT PRIMARY KEY,
            user_id     TEXT NOT NULL UNIQUE,
            state       TEXT NOT NULL,
            sign_in_code TEXT,
            import_id   TEXT
        )"""
    )


upgrade_table.register(upgrade_v1, description="Scheduled messages, roster imports, roster people")


async def upgrade_v2(conn: Connection) -> None:
    # The name the roster last gave a person, so a changed name (a new surname) is seen
    # and set on their account. NULL for people imported before this step.
    await conn.execute("ALTER TABLE roster_person ADD COLUMN display_name TEXT")


upgrade_table.register(upgrade_v2, description="Roster people's names")


async def upgrade_v3(conn: Connection) -> None:
    # The messages the bot has taken up, so each command is answered exactly once: the
    # live push, the catch-up after joining a room and the catch-up after a restart may
    # all bring the same event. Rows older than a month are pruned at start.
    await conn.execute(
        """CREATE TABLE answered_event (
            event_id    TEXT PRIMARY KEY,
            room_id     TEXT NOT NULL,
            answered_at BIGINT NOT NULL
        )"""
    )


upgrade_table.register(upgrade_v3, description="Commands the bot has answered")


async def upgrade_v4(conn: Connection) -> None:
    # The bot no longer posts as people: a scheduled message is the module's post
    # (POST /scheduled_posts), sent by the module as its author. Rows from before have
    # no post and fail with a note. An import keeps the command («да») it carries out,
    # to resume with after a restart.
    await conn.execute("ALTER TABLE scheduled_message ADD COLUMN post_id TEXT")
    await conn.execute("ALTER TABLE roster_import ADD COLUMN command_event TEXT")


upgrade_table.register(upgrade_v4, description="Scheduled posts in the module; import commands")


async def upgrade_v5(conn: Connection) -> None:
    # Reminders to confirm reading an announcement (bridge/reminders.py): each one a
    # row, sent exactly once; the bot's direct chat with each person it reminds.
    await conn.execute(
        """CREATE TABLE confirm_reminder (
            request_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            child_id TEXT NOT NULL,
            room_id TEXT NOT NULL,
            language TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            claimed_at BIGINT,
            attempts INTEGER NOT NULL DEFAULT 0,
            event_id TEXT,
            last_error TEXT,
            PRIMARY KEY (request_id, user_id, child_id)
        )"""
    )
    await conn.execute("CREATE TABLE direct_room (user_id TEXT PRIMARY KEY, room_id TEXT NOT NULL)")


upgrade_table.register(upgrade_v5, description="Reminders to confirm reading; direct rooms")


async def upgrade_v6(conn: Connection) -> None:
    # A request to erase waiting for the person's «да» (bridge/erasure_requests.py): one
    # per person and chat; a newer «удалить …» replaces it.
    await conn.execute(
        """CREATE TABLE erasure_ask (
            room_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            schools TEXT NOT NULL,
            asked_at BIGINT NOT NULL,
            PRIMARY KEY (room_id, user_id)
        )"""
    )


upgrade_table.register(upgrade_v6, description="Requests to erase waiting for a yes")


def create_database(url: str) -> Database:
    """A :class:`Database` for ``sqlite:path`` or ``postgresql://…`` with our upgrades."""
    log: Any = logging.getLogger("bridge.db")
    if not isinstance(log, TraceLogger):
        log = TraceLogger("bridge.db")
    # The bot's queries are small and few: a small pool leaves PostgreSQL's connection
    # slots to Synapse.
    db_args = {"min_size": 1, "max_size": 4} if url.startswith("postgres") else None
    return Database.create(url, upgrade_table=upgrade_table, log=log, db_args=db_args)
