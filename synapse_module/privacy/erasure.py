"""Erasure of a person: a journal of steps (``parta_erasures``) run in order, each one
safe to run again, so an erasure cut short (a crash, a kill -9) finishes when asked again
or when the background process starts (the job ``erasures``), and nothing is done twice.

Steps (:data:`~.rules.SCHOOL_STEPS`, then :data:`~.rules.ACCOUNT_STEPS`):

``roster``       out of the school's roster and rooms; power levels re-derived
``messages``     every message they sent in the school's rooms redacted by the service
                 account, several at a time (``privacy.erasure_concurrency``), or kept,
                 per the request; their membership events there
                 redacted too (display name and avatar gone from the school's rooms);
                 an event a redaction already names is skipped
``school_rows``  the school's rows about them deleted (consents, attendance, answers in
                 its rooms, …), the school's rows that named them marked

then the **scope**, decided once and journalled (:func:`~.rules.scope_of`): ``school``
when another school still holds the person (or they coordinate a unit), or the account is
not the schools' (Parta did not make it for them: the person's own) — the erasure ends
here, the account and the other school's data stay — else ``account``, and:

``media``        their uploads: files from the media store, then Synapse's rows
``module_rows``  every row of Parta's about them deleted, others' rows marked
``account``      deactivated and erased through Synapse's admin API (profile, devices,
                 e-mail and phone gone; Synapse's own erasure flag set)

then the tombstone (``privacy.erased`` in the audit log) and the journal forgets the ID.
Two schools erasing the same person at once each take their own part, one after the
other in a process; whichever decides last finds no school and takes the account (each
account step is safe to run twice, and an account another process's erasure took at the
same moment counts as taken).
"""

import logging
import os
import shutil
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from synapse.api.errors import HttpResponseException, SynapseError

from ..concurrency import KeyedLock, gather_limited
from . import store as db
from .admin import admin_session
from .export import media_path
from .rules import ERASE_ROWS, ERASED, MARK_ROWS, scope_of, steps_left

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

# For the kill -9 test only: after this step ("messages", or "messages:2" for the second
# redaction) the erasure waits for good (and the test kills Synapse); a restart finishes.
PAUSE_AFTER_ENV: Final = "PARTA_ERASURE_PAUSE_AFTER"
REDACT_BATCH: Final = 200


class Erasure:
    def __init__(self, module: "PartaModule"):
        self._module = module
        self._api = module.api
        self._running: set[str] = set()
        self._people = KeyedLock()  # one erasure of a person at a time in this process

    async def run(self, erasure_id: str) -> None:
        """Carry the journalled erasure through its remaining steps (once at a time), one
        erasure of a person after another: the operator's whole-account erasure starts
        every school's part at once, and two parts deciding ``account`` together would
        ask Synapse to erase the account twice at the same moment (its erasure is not
        safe to run concurrently: the second answered 500 and its journal stayed open)."""
        if erasure_id in self._running:
            return
        self._running.add(erasure_id)
        try:
            journal = await self._module.store.run("parta_erasure", db.erasure_txn, erasure_id)
            if journal is None:
                return
            async with self._people.hold(journal["user_id"]):
                await self._run(erasure_id)
        finally:
            self._running.discard(erasure_id)

    async def _run(self, erasure_id: str) -> None:
        store = self._module.store
        journal = await store.run("parta_erasure", db.erasure_txn, erasure_id)
        if journal is None or journal["finished_ts"] is not None:
            return
        user_id: str = journal["user_id"]
        counts: dict[str, int] = {}
        scope: str | None = journal["scope"]
        for step in steps_left(journal["done"], scope):
            await self._step(journal, user_id, step, counts)
        if scope is None:
            scope = await store.run(
                "parta_erasure_scope",
                db.decide_scope_txn,
                erasure_id,
                await self._scope(user_id, journal["asked"] == "account"),
            )
            logger.info("Erasure %s: scope %s", erasure_id, scope)
            await self._pause_if_asked("scope")
            for step in steps_left(journal["done"], scope):
                if step not in counts:
                    await self._step(journal, user_id, step, counts)
        now = self._api.get_current_time_msec()
        await store.run("parta_erasure_finish", db.finish_erasure_txn, now, erasure_id, counts)

    async def _step(
        self, journal: dict[str, Any], user_id: str, step: str, counts: dict[str, int]
    ) -> None:
        counts[step] = await getattr(self, f"_step_{step}")(journal, user_id)
        erasure_id = journal["erasure_id"]
        await self._module.store.run("parta_erasure_step", db.step_done_txn, erasure_id, step)
        logger.info("Erasure %s: %s done (%d)", erasure_id, step, counts[step])
        await self._pause_if_asked(step)

    async def _scope(self, user_id: str, whole_account: bool) -> str:
        """:func:`rules.scope_of`: ``account`` when no school holds the person any more
        (nor a unit) and the account is the schools' (Parta made it for them), else
        ``school``. The operator's erasure of the whole account (``whole_account``) takes
        it whoever made it, a unit or a server operator's account too; Parta's own never."""
        roster = self._module.roster
        person = await roster.get_person(user_id)
        runs_server = user_id == roster.service or (
            not whole_account and await self._api.is_user_admin(user_id)
        )
        return scope_of(
            bool(person.schools),
            bool(person.coordinates) and not whole_account,
            runs_server,
            whole_account or await roster.made_by_parta(user_id),
        )

    async def _pause_if_asked(self, point: str) -> None:
        """The kill -9 test's hook: wait here for good when the environment says so."""
        if os.environ.get(PAUSE_AFTER_ENV) == point:
            logger.warning("Erasure paused after %s (%s)", point, PAUSE_AFTER_ENV)
            while True:
                await self._api.sleep(3600)

    async def _rooms(self, school_id: str) -> list[str]:
        return [r.room_id for r in await self._module.roster.rooms_of_school(school_id)]

    async def _step_roster(self, journal: dict[str, Any], user_id: str) -> int:
        roster = self._module.roster
        removed = await roster.remove_from_school(
            journal["school_id"], user_id, journal["requested_by"]
        )
        # Last years' read-only class rooms too (the roster never takes anyone out of
        # them; an erasure of the whole account leaves every room with the account).
        for room in await roster.rooms_of_school(journal["school_id"]):
            if room.archived:
                try:
                    await roster.structure.ensure_left(room.room_id, user_id)
                except SynapseError as e:  # an old room the service no longer runs
                    logger.warning("Erasure: %s stays in %s: %s", user_id, room.room_id, e)
        return int(removed)

    async def _step_messages(self, journal: dict[str, Any], user_id: str) -> int:
        """Redact, room by room, first every message they sent (``redact``;
        ``keep_anonymised`` keeps them), then their membership events (name and avatar),
        either way: up to ``REDACT_BATCH`` events no redaction names yet,
        ``erasure_concurrency`` redactions in flight at once, all of a batch landed (or
        failed) before the next is read — so an event is never asked twice, and after a
        crash the next run finds only the ones still unredacted."""
        queries = [db.unredacted_txn] if journal["messages"] == "redact" else []
        queries.append(db.unredacted_memberships_txn)
        at_once = self._module.config.privacy.erasure_concurrency
        pause_at = _pause_at_redaction()
        redacted = 0
        store = self._module.store
        rooms = await self._rooms(journal["school_id"])
        for query in queries:  # every message first, then the memberships
            for room_id in rooms:
                after: int | None = None
                while True:
                    batch = await store.run(
                        "parta_erasure_unredacted", query, user_id, room_id, after, REDACT_BATCH
                    )
                    if not batch:
                        break
                    if pause_at is not None and redacted < pause_at:
                        batch = batch[: pause_at - redacted]  # the kill -9 test stops there
                    await gather_limited([self._redaction(room_id, e) for e, _ in batch], at_once)
                    redacted += len(batch)
                    after = batch[-1][1]
                    await self._pause_if_asked(f"messages:{redacted}")
        return redacted

    def _redaction(self, room_id: str, event_id: str) -> Callable[[], Awaitable[object]]:
        return lambda: self._api.create_and_send_event_into_room(
            {
                "type": "m.room.redaction",
                "room_id": room_id,
                "sender": self._module.service_user_id,
                "redacts": event_id,
                "content": {"redacts": event_id, "reason": "erasure"},
            }
        )

    async def _step_school_rows(self, journal: dict[str, Any], user_id: str) -> int:
        school_id = journal["school_id"]
        removed: int = await self._module.store.run(
            "parta_erasure_school_rows",
            db.erase_school_rows_txn,
            user_id,
            school_id,
            await self._rooms(school_id),
            ERASED,
        )
        await self._module.roster._forget([user_id])
        await self._module.privacy.consents_in_rooms.forget(school_id, user_id)
        return removed

    async def _step_media(self, journal: dict[str, Any], user_id: str) -> int:
        uploads = await self._module.store.run("parta_erasure_media", db.uploads_txn, user_id)
        media_ids = [u["media_id"] for u in uploads]
        media_store = self._module.config.privacy.media_store_path
        if media_store is not None:
            await self._api.defer_to_thread(_remove_files, media_store, media_ids)
        await self._module.store.run("parta_erasure_media_rows", db.delete_uploads_txn, media_ids)
        return len(media_ids)

    async def _step_module_rows(self, journal: dict[str, Any], user_id: str) -> int:
        removed: int = await self._module.store.run(
            "parta_erasure_rows", db.erase_rows_txn, user_id, ERASE_ROWS, MARK_ROWS, ERASED
        )
        await self._module.roster._forget([user_id])
        return removed

    async def _step_account(self, journal: dict[str, Any], user_id: str) -> int:
        """Synapse's admin API: deactivate with erase, as the service account with a
        token made for this call and thrown away after it (:mod:`.admin`)."""
        if not self._api.is_mine(user_id):
            return 0
        info = await self._api.get_userinfo_by_id(user_id)
        if info is None or info.is_deactivated:
            return 0  # done before a crash (or never an account here)
        async with admin_session(self._module, "parta-erasure") as admin:
            quoted = urllib.parse.quote(user_id, safe="")
            try:
                await admin.post_json(f"/_synapse/admin/v1/deactivate/{quoted}", {"erase": True})
            except HttpResponseException:
                # Another process's erasure of the same person (a worker) may have taken
                # the account at the same moment: done if Synapse now says so.
                info = await self._api.get_userinfo_by_id(user_id)
                if info is None or not info.is_deactivated:
                    raise
                return 0
        return 1


def _pause_at_redaction() -> int | None:
    """The kill -9 test's redaction count to stop after (``messages:N``), if any."""
    point = os.environ.get(PAUSE_AFTER_ENV, "")
    if point.startswith("messages:") and point[len("messages:") :].isdigit():
        return int(point[len("messages:") :])
    return None


def _remove_files(media_store: str, media_ids: list[str]) -> None:
    for media_id in media_ids:
        path = media_path(media_store, media_id)
        if os.path.isfile(path):
            os.remove(path)
        thumbnails = os.path.join(
            media_store, "local_thumbnails", media_id[0:2], media_id[2:4], media_id[4:]
        )
        shutil.rmtree(thumbnails, ignore_errors=True)
