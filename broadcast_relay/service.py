"""The relay's running broadcasts, and what happens when one ends."""

import asyncio
import contextlib
import logging

import aiohttp

from .broadcast import Broadcast
from .config import BroadcastConfig
from .directory import BroadcastInfo, Directory, DirectoryUnavailable
from .recording import earlier_runs, remux_to_mp4

logger = logging.getLogger(__name__)

# How often the relay asks the module whether a running broadcast was ended.
WATCH_INTERVAL = 2.0


class BroadcastService:
    def __init__(self, config: BroadcastConfig, directory: Directory) -> None:
        self.config = config
        self.directory = directory
        self.broadcasts: dict[str, Broadcast] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self.recordings: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        self._watch_task = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        for broadcast in list(self.broadcasts.values()):
            broadcast._on_ended = None
            await broadcast.end()
        for task in self.recordings.values():
            task.cancel()

    def get_or_start(self, info: BroadcastInfo) -> Broadcast:
        broadcast = self.broadcasts.get(info.broadcast_id)
        if broadcast is None or broadcast.ended:
            broadcast = Broadcast(info, self.config, on_ended=self._ended, on_live=self._went_live)
            self.broadcasts[info.broadcast_id] = broadcast
        return broadcast

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            for broadcast in [b for b in self.broadcasts.values() if not b.ended]:
                try:
                    info = await self.directory.broadcast(broadcast.id, fresh=True)
                except DirectoryUnavailable as e:
                    logger.warning("broadcast %s: cannot ask the module: %s", broadcast.id, e)
                    continue
                if info is None or info.ended:
                    await broadcast.end()

    async def _went_live(self, broadcast: Broadcast) -> None:
        try:
            await self.directory.went_live(broadcast.id)
        except (DirectoryUnavailable, aiohttp.ClientError, TimeoutError) as e:
            logger.warning(
                "broadcast %s: could not tell the module it is live: %s", broadcast.id, e
            )

    async def _ended(self, broadcast: Broadcast) -> None:
        if broadcast.info.recording and broadcast.writer.all_segments:
            self.recordings[broadcast.id] = asyncio.ensure_future(self._record(broadcast))

    async def _record(self, broadcast: Broadcast) -> None:
        # What a killed relay had received of this broadcast comes first (a resumed run).
        segments = earlier_runs(broadcast.directory, broadcast.writer.run) + [
            broadcast.directory / s.name for s in broadcast.writer.all_segments
        ]
        target = broadcast.directory / "recording.mp4"
        try:
            loop = asyncio.get_running_loop()
            info = await loop.run_in_executor(None, remux_to_mp4, segments, target)
            await self.directory.publish_recording(broadcast.id, target, info)
            logger.info("broadcast %s: recording published", broadcast.id)
        except Exception:
            logger.exception("broadcast %s: the recording could not be published", broadcast.id)
