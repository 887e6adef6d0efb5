"""The SFU's attendance reports, posted to the module (``POST …/internal/attendance``).

Each report carries a fresh service token (``parta_common.tokens.sign_service_token``,
audience ``parta-module``) signed with the ``token_secret`` the SFU and the module share.
The module resolves the room's live lesson and keeps the session; a report for a room
without a live lesson is accepted and ignored there.
"""

import asyncio
import logging
from typing import Any, Final

import aiohttp

from parta_common import tokens

from .attendance import AttendanceEvent, AttendanceKind

logger = logging.getLogger(__name__)

PATH: Final = "/_synapse/client/parta/v1/internal/attendance"


class AttendanceRejected(Exception):
    """The module refused a report (4xx): retrying would not help."""


class ModuleAttendance:
    """An :class:`sfu.attendance.AttendanceSink` that reports to the Parta module.

    ``homeserver_url`` is where the SFU reaches Synapse (e.g. ``http://127.0.0.1:8008``).
    Transient failures (connection errors, 5xx) are retried ``attempts`` times with a
    growing pause; the caller (the SFU) runs each report as its own task.
    """

    def __init__(
        self,
        homeserver_url: str,
        token_secret: str,
        attempts: int = 3,
        retry_pause: float = 0.5,
        timeout: float = 10.0,
    ):
        self._url = homeserver_url.rstrip("/") + PATH
        self._secret = token_secret
        self._attempts = max(1, attempts)
        self._retry_pause = retry_pause
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def payload(event: AttendanceEvent) -> dict[str, Any]:
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
        return {"events": [entry]}

    async def report(self, event: AttendanceEvent) -> None:
        body = self.payload(event)
        for attempt in range(1, self._attempts + 1):
            try:
                await self._post(body)
                return
            except AttendanceRejected:
                raise
            except (aiohttp.ClientError, TimeoutError) as e:
                if attempt == self._attempts:
                    raise
                logger.info("attendance report failed (%s), retry %d", e, attempt)
                await asyncio.sleep(self._retry_pause * attempt)

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
            if resp.status >= 400:
                raise AttendanceRejected(f"HTTP {resp.status}: {await resp.text()}")

    async def on_cleanup(self, app: object) -> None:
        """For ``aiohttp.web.Application.on_cleanup``."""
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
