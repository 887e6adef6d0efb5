"""The SFU's attendance reports, posted to the module (``POST …/internal/attendance``).

Each report carries a fresh service token (``parta_common.tokens.sign_service_token``,
audience ``parta-module``) signed with the ``token_secret`` the SFU and the module share.
The module resolves the room's live lesson and keeps the session; a report for a room
without a live lesson is accepted and ignored there.

Reports are written to a journal (a small SQLite file in the SFU's ``data_dir``) before
they are sent and removed only when the module has confirmed them, oldest first; what is
left when the module is down, or when the SFU stops, is sent again on the next start. The
module stores a repeated report once, so sending again after a lost answer is harmless.
"""

import asyncio
import contextlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Final

import aiohttp

from parta_common import tokens

from .attendance import AttendanceEvent, AttendanceKind

logger = logging.getLogger(__name__)

PATH: Final = "/_synapse/client/parta/v1/internal/attendance"


# Reports per request when the journal is replayed.
BATCH: Final = 100
# Longest pause between tries while the module does not answer.
MAX_RETRY_PAUSE: Final = 30.0


class AttendanceRejected(Exception):
    """The module refused a report (4xx): retrying would not help."""


class AttendanceUnauthorized(AttendanceRejected):
    """The module does not accept the SFU's service token (the secrets differ): the
    reports stay in the journal for the next start, after the operator fixes it."""


class AttendanceJournal:
    """Reports not yet confirmed by the module, in order (SQLite; ``None``: in memory)."""

    def __init__(self, path: Path | None):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:")
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS attendance_journal"
                " (seq INTEGER PRIMARY KEY AUTOINCREMENT, report TEXT NOT NULL)"
            )

    def append(self, entry: dict[str, Any]) -> int:
        with self._db:
            cur = self._db.execute(
                "INSERT INTO attendance_journal (report) VALUES (?)",
                (json.dumps(entry, ensure_ascii=False),),
            )
        return int(cur.lastrowid or 0)

    def oldest(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT seq, report FROM attendance_journal ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [(int(seq), json.loads(report)) for seq, report in rows]

    def remove(self, seqs: list[int]) -> None:
        with self._db:
            self._db.executemany(
                "DELETE FROM attendance_journal WHERE seq = ?", [(s,) for s in seqs]
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM attendance_journal").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class ModuleAttendance:
    """An :class:`sfu.attendance.AttendanceSink` that reports to the Parta module.

    ``homeserver_url`` is where the SFU reaches Synapse (e.g. ``http://127.0.0.1:8008``);
    ``journal`` the file that keeps reports until the module confirms them (``None``:
    memory only, for tests). :meth:`report` journals the report and sends everything
    pending in order; if the module does not answer, a background task keeps trying
    with a growing pause (up to :data:`MAX_RETRY_PAUSE`), and :meth:`start` (on the SFU's
    start) sends what an earlier run left.
    """

    def __init__(
        self,
        homeserver_url: str,
        token_secret: str,
        journal: Path | None = None,
        retry_pause: float = 0.5,
        timeout: float = 10.0,
    ):
        self._url = homeserver_url.rstrip("/") + PATH
        self._secret = token_secret
        self._journal = AttendanceJournal(journal)
        self._retry_pause = retry_pause
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Reports not yet confirmed by the module."""
        return len(self._journal)

    @staticmethod
    def entry(event: AttendanceEvent) -> dict[str, Any]:
        """The module's wire format for one report."""
        entry: dict[str, Any] = {
            "kind": "join" if event.kind is AttendanceKind.JOINED else "leave",
            "room_id": event.room_id,
            "user_id": event.user_id,
            "session_id": event.participant_id,
            "ts": int(event.at * 1000),
            "role": event.role,
        }
        if event.display_name:
            entry["display_name"] = event.display_name[:256]
        if event.reason is not None:
            entry["reason"] = str(event.reason)
        return entry

    @classmethod
    def payload(cls, event: AttendanceEvent) -> dict[str, Any]:
        return {"events": [cls.entry(event)]}

    def keep(self, event: AttendanceEvent) -> int:
        """Journal ``event`` (synchronously: a commit to the journal file)."""
        return self._journal.append(self.entry(event))

    async def report(self, event: AttendanceEvent) -> None:
        """:meth:`keep` and :meth:`deliver` in one."""
        await self.deliver(self.keep(event))

    async def deliver(self, seq: int) -> None:
        """Send what is pending; :class:`AttendanceRejected` if the module refused the
        report ``seq`` (it is dropped then: sending again would not help)."""
        try:
            rejected = await self.flush()
        except (aiohttp.ClientError, TimeoutError) as e:
            logger.info("attendance report kept for later (%s)", e)
            self._retry_later()
            return
        except AttendanceUnauthorized:
            logger.error("the module refuses the SFU's service token: is token_secret shared?")
            raise
        if seq in rejected:
            raise AttendanceRejected(rejected[seq])

    async def start(self, app: object = None) -> None:
        """Send what an earlier run left in the journal (``Application.on_startup``)."""
        if self.pending:
            logger.info("replaying %d attendance report(s) from the journal", self.pending)
            self._retry_later()

    async def flush(self) -> dict[int, str]:
        """Send every journaled report, oldest first, removing each the module confirms or
        refuses; the refused ones (seq → reason). Raises on a transient failure."""
        rejected: dict[int, str] = {}
        async with self._lock:
            while batch := self._journal.oldest(BATCH):
                try:
                    await self._post({"events": [entry for _, entry in batch]})
                except AttendanceUnauthorized:
                    raise
                except AttendanceRejected:
                    # Find the refused ones: one at a time.
                    for seq, entry in batch:
                        try:
                            await self._post({"events": [entry]})
                        except AttendanceRejected as e:
                            logger.warning("attendance report refused: %s", e)
                            rejected[seq] = str(e)
                        self._journal.remove([seq])
                    continue
                self._journal.remove([seq for seq, _ in batch])
        return rejected

    def _retry_later(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._retry_loop())

    async def _retry_loop(self) -> None:
        pause = self._retry_pause
        while self.pending:
            try:
                await self.flush()
                return
            except (aiohttp.ClientError, TimeoutError) as e:
                logger.info("attendance journal: %d pending (%s)", self.pending, e)
            except AttendanceUnauthorized:
                logger.error("the module refuses the SFU's service token: is token_secret shared?")
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RETRY_PAUSE)

    async def _post(self, body: dict[str, Any]) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        token = tokens.sign_service_token(self._secret, tokens.SERVICE_SFU)
        headers = {"Authorization": f"Bearer {token}"}
        async with self._session.post(self._url, json=body, headers=headers) as resp:
            if resp.status >= 500:
                raise aiohttp.ClientResponseError(
                    resp.request_info, resp.history, status=resp.status, message=await resp.text()
                )
            if resp.status == 401:
                raise AttendanceUnauthorized(f"HTTP 401: {await resp.text()}")
            if resp.status >= 400:
                raise AttendanceRejected(f"HTTP {resp.status}: {await resp.text()}")

    async def on_cleanup(self, app: object) -> None:
        """For ``aiohttp.web.Application.on_cleanup``."""
        await self.close()

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._journal.close()
