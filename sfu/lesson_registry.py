"""All lessons of this process, by Matrix room, and their periodic work."""

import asyncio
import contextlib
import logging
import time

from parta_common.tokens import MediaClaims
from sfu.attendance import AttendanceSink, LeaveReason
from sfu.classroom import BanList
from sfu.config import SfuConfig
from sfu.lesson import Lesson
from sfu.metrics import LessonStats, SfuMetrics
from sfu.participant import Connection, Participant
from sfu.worker_pool import WorkerPool

logger = logging.getLogger(__name__)

TICK = 0.25
REPORT_EVERY = 4  # ticks: sender reports and REMB once a second


class Lessons:
    def __init__(
        self,
        config: SfuConfig,
        metrics: SfuMetrics,
        attendance: AttendanceSink,
        workers: WorkerPool | None = None,
    ) -> None:
        self._config = config
        self._workers = workers
        self._metrics = metrics
        self._attendance = attendance
        self._lessons: dict[str, Lesson] = {}
        self._bans = BanList()
        self._ticker: asyncio.Task[None] | None = None

    def get(self, room_id: str) -> Lesson | None:
        return self._lessons.get(room_id)

    def join(
        self, room_id: str, claims: MediaClaims, connection: Connection
    ) -> tuple[Lesson, Participant]:
        lesson = self._lessons.get(room_id)
        if lesson is None:
            lesson = Lesson(
                room_id,
                self._config,
                self._bans,
                self._metrics.forwarding,
                self._attendance,
                workers=self._workers,
            )
            self._lessons[room_id] = lesson
        try:
            participant = lesson.join(claims, connection)
        except Exception:
            if lesson.empty:
                del self._lessons[room_id]
            raise
        return lesson, participant

    async def leave(self, lesson: Lesson, participant: Participant, reason: LeaveReason) -> None:
        await lesson.leave(participant, reason)
        if lesson.empty and self._lessons.get(lesson.room_id) is lesson:
            del self._lessons[lesson.room_id]

    def refused(self, code: str) -> None:
        self._metrics.refused(code)

    def stats(self) -> LessonStats:
        return LessonStats(
            lessons=len(self._lessons),
            participants=sum(len(x.participants) for x in self._lessons.values()),
            waiting=sum(len(x.waiting) for x in self._lessons.values()),
        )

    def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for lesson in list(self._lessons.values()):
            await lesson.close()
        self._lessons.clear()

    async def _tick(self) -> None:
        count = 0
        while True:
            await asyncio.sleep(TICK)
            count += 1
            started = time.perf_counter()
            for lesson in list(self._lessons.values()):
                try:
                    lesson.tick(reports=count % REPORT_EVERY == 0)
                except Exception:
                    logger.exception("periodic work of lesson %s failed", lesson.room_id)
            spent = time.perf_counter() - started
            if spent > TICK / 2:
                logger.warning("lesson upkeep took %.0f ms", spent * 1000)
