"""A roster ZIP sent to the bot: plan, confirmation («да»/«yes»), import, sign-in codes.

A ZIP carries no words to tell the language by, so what the bot says about it comes in
both; the answer to «да»/«yes» comes in the language of the answer (docs/i18n.md).

The ZIP is kept in ``roster_import`` until the person answers; a confirmed import is
``running`` until it finishes, and a bot restarted in the middle resumes it (the sync
itself skips what is already done).
"""

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
import time
from typing import Any

from mautrix.types import (
    MessageEvent,
    RoomID,
    UserID,
)
from mautrix.util.async_db import Database

from bridge.api import COMMAND, ApiError, ModuleClient, carrying_out
from bridge.bot import SchoolBot, refusal
from bridge.roster_sync import (
    CODES_LANGUAGE,
    RosterSync,
    import_id_for,
    in_every_language,
    sign_in_csv,
)
from parta_common import catalogue
from parta_common.catalogue import LANGUAGES
from parta_common.oneroster import RosterErrors, read_files, zip_files

logger = logging.getLogger(__name__)

MAX_ZIP_MB = 20
MAX_ZIP_BYTES = MAX_ZIP_MB * 1024 * 1024
# Problems shown in the answer to a rejected ZIP; the rest are counted.
SHOWN_PROBLEMS = 30


def _say(language: str, what: str, **params: object) -> str:
    return catalogue.text(f"roster_import.{what}", language, **params)


def _both(what: str, **params: object) -> str:
    """One line per language."""
    return "\n".join(_say(lang, what, **params) for lang in LANGUAGES)


class RosterConversation:
    def __init__(self, db: Database, module: ModuleClient, bot: SchoolBot):
        self.db = db
        self.module = module
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()
        bot.on_zip = self.on_zip
        bot.on_confirm = self.on_confirm

    def _sync(self, actor: str) -> RosterSync:
        return RosterSync(self.db, self.module, actor, self.bot.mxid.split(":", 1)[1])

    async def on_zip(self, event: MessageEvent, data: bytes, name: str) -> str:
        if len(data) > MAX_ZIP_BYTES:
            return _both("too_large", limit_mb=MAX_ZIP_MB)
        try:
            roster = read_files(zip_files(data))
        except RosterErrors as e:
            return in_every_language(functools.partial(_rejected, e))
        try:
            plan = await self._sync(event.sender).plan(roster)
        except ApiError as e:
            return refusal(e)
        if plan.empty:
            return plan.describe()
        digest = hashlib.sha256(data).hexdigest()
        # One plan waits per room: a newer ZIP replaces the older one.
        await self.db.execute(
            "DELETE FROM roster_import WHERE room_id=$1 AND state='awaiting'", event.room_id
        )
        await self.db.execute(
            "INSERT INTO roster_import (id, digest, requested_by, room_id, state, source,"
            " created_at) VALUES ($1, $2, $3, $4, 'awaiting', $5, $6)",
            f"{import_id_for(digest)}-{int(time.time())}",
            digest,
            event.sender,
            event.room_id,
            base64.b64encode(data).decode(),
            int(time.time() * 1000),
        )
        return in_every_language(
            lambda lang: (
                f"{_say(lang, 'plan', name=name)}\n{plan.describe(lang)}\n\n" + _say(lang, "apply")
            )
        )

    async def on_confirm(
        self, room_id: RoomID, sender: UserID, yes: bool, language: str
    ) -> str | None:
        row = await self.db.fetchrow(
            "SELECT id FROM roster_import WHERE room_id=$1 AND requested_by=$2"
            " AND state='awaiting'",
            room_id,
            sender,
        )
        if row is None:
            return None
        if not yes:
            await self.db.execute(
                "UPDATE roster_import SET state='rejected' WHERE id=$1", row["id"]
            )
            return _say(language, "cancelled")
        # The import acts on this answer (the «да»): the module lets the bot act for the
        # person for a while after it (bot_command_window_seconds).
        await self.db.execute(
            "UPDATE roster_import SET state='running', command_event=$1 WHERE id=$2",
            COMMAND.get(),
            row["id"],
        )
        self._start(row["id"])
        return _say(language, "started")

    async def resume(self) -> None:
        for row in await self.db.fetch("SELECT id FROM roster_import WHERE state='running'"):
            logger.info("resuming roster import %s", row["id"])
            self._start(row["id"])

    def _start(self, import_id: str) -> None:
        task = asyncio.create_task(self._run(import_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, import_id: str) -> None:
        row = await self.db.fetchrow(
            "SELECT requested_by, room_id, source, command_event FROM roster_import WHERE id=$1",
            import_id,
        )
        if row is None:
            return
        with carrying_out(row["command_event"]):
            await self._run_import(import_id, row["requested_by"], RoomID(row["room_id"]), row)

    async def _run_import(
        self, import_id: str, requested_by: str, room_id: RoomID, row: Any
    ) -> None:
        try:
            data = base64.b64decode(row["source"])
            roster = read_files(zip_files(data))
            sync = self._sync(requested_by)
            plan = await sync.plan(roster)
            result = await sync.apply(plan, import_id)
        except ApiError as e:
            await self.db.execute("UPDATE roster_import SET state='failed' WHERE id=$1", import_id)
            await self.bot.reply(room_id, _both("stopped") + "\n" + refusal(e))
            return
        except Exception:
            logger.exception("roster import %s failed", import_id)
            await self.db.execute("UPDATE roster_import SET state='failed' WHERE id=$1", import_id)
            await self.bot.reply(room_id, _both("stopped_on_error"))
            return
        await self.db.execute(
            "UPDATE roster_import SET state='done', finished_at=$1, source='' WHERE id=$2",
            int(time.time() * 1000),
            import_id,
        )
        await self.bot.reply(room_id, result.describe())
        if result.sign_ins:
            await self._send_codes(room_id, sign_in_csv(result.sign_ins, self._server()))

    def _server(self) -> str:
        return str(self.bot.intent.api.base_url)

    async def _send_codes(self, room_id: RoomID, data: bytes) -> None:
        name = _say(CODES_LANGUAGE, "codes_file")
        await self.bot.send_file(room_id, data, name, "text/csv")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _rejected(error: RosterErrors, language: str) -> str:
    shown = [p.text(language) for p in error.found[:SHOWN_PROBLEMS]]
    hidden = len(error.found) - len(shown)
    more = [_say(language, "more_problems", count=hidden)] if hidden else []
    return "\n".join([_say(language, "rejected"), *shown, *more])
