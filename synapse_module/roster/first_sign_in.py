"""First sign-ins: the login answers at once, the person's rooms are joined behind it.

Joining a person's school rooms is one membership event per room (two where an
invitation comes first), each a few dozen database transactions in Synapse; a whole
school signing in at 08:00 must not wait on that in its logins. So ``on_user_login``
records the first sign-in and puts the person on this queue; a few people at a time are
joined in the background, spaces first, and only then is the person marked signed in.

The journal is the roster's own table (``parta_sign_in_codes``): ``first_sign_in_ts`` set
and ``signed_in_ts`` not yet set means "signed in, rooms not all joined". The process that
runs Synapse's background tasks resumes those people at start-up, so a restart in the
middle of the morning loses nobody.

The same queue, with its own ``join``, puts people an import brings into a school into
the school-wide rooms before they sign in (``open_rooms_at_import``, see
``SignInApi._join_open_rooms``): best effort, no journal — a join a restart lost is made
at the person's first sign-in, which joins whatever is still missing.
"""

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from synapse.module_api import ModuleApi

logger = logging.getLogger(__name__)

# Seconds before a person whose joins failed is tried again, and how many times.
RETRY_AFTER_S: Final = 30.0
RETRIES: Final = 5


class FirstSignInQueue:
    """People whose rooms are still to be joined, ``concurrency`` of them at a time.

    ``join(user_id)`` does the work for one person (for first sign-ins: and marks them
    signed in); it may be called again for someone it already finished (it must then do
    nothing new). ``desc`` names the background process in Synapse's metrics and logs.
    """

    def __init__(
        self,
        api: ModuleApi,
        join: Callable[[str], Awaitable[None]],
        concurrency: int,
        desc: str = "parta_first_sign_in",
    ) -> None:
        self._api = api
        self._join = join
        self._concurrency = concurrency
        self._desc = desc
        self._waiting: deque[str] = deque()
        self._queued: set[str] = set()
        self._failures: dict[str, int] = {}
        self._running = 0

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._queued

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, user_id: str) -> None:
        """Queue ``user_id`` (once: a second sign-in while queued changes nothing)."""
        if user_id in self._queued:
            return
        self._queued.add(user_id)
        self._waiting.append(user_id)
        while self._running < self._concurrency and self._waiting:
            self._running += 1
            self._api.run_as_background_process(self._desc, self._work)

    async def _work(self) -> None:
        try:
            while self._waiting:
                user_id = self._waiting.popleft()
                try:
                    await self._join(user_id)
                    self._failures.pop(user_id, None)
                except Exception:
                    failures = self._failures.get(user_id, 0) + 1
                    self._failures[user_id] = failures
                    logger.exception(
                        "Could not join %s to their school rooms (try %d of %d)",
                        user_id,
                        failures,
                        RETRIES,
                    )
                    if failures < RETRIES:
                        self._api.delayed_background_call(
                            RETRY_AFTER_S * 1000, self.add, user_id, desc=self._desc
                        )
                    else:
                        # First sign-ins: the journal keeps them, the next sign-in or
                        # start-up tries again; joins at an import: the first sign-in.
                        self._failures.pop(user_id, None)
                finally:
                    self._queued.discard(user_id)
        finally:
            self._running -= 1
