"""Shared pieces of the broadcast benchmarks: a relay in this process, fixed module answers."""

import tempfile
from pathlib import Path

from aiohttp import web

from broadcast_relay import SERVICE_KEY, BroadcastConfig, setup_broadcasts
from broadcast_relay.broadcast import Broadcast
from broadcast_relay.directory import BroadcastInfo, LinkInfo
from parta_common.roles import Role
from parta_common.tokens import grant_for, sign_media_token, sign_viewer_link
from tests.broadcast_support import StaticDirectory
from tests.harness import free_port

SECRET = "bench-secret-0123456789abcdef0123"
BID = "bench"


class BenchRelay:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="parta-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        directory = StaticDirectory()
        directory.broadcasts[BID] = BroadcastInfo(
            BID, "!r", "Bench", "live", ("@s:x",), True, False
        )
        directory.links["l"] = LinkInfo("l", BID, revoked=False)
        self.config = BroadcastConfig(
            token_secret=SECRET, data_dir=str(self.dir), listen_port=self.port
        )
        self.app = web.Application()
        setup_broadcasts(self.app, self.config, directory)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.speaker_token = sign_media_token(
            SECRET, "!r", "@s:x", "S", "teacher", grant_for(Role.TEACHER)
        )
        self.link = f"{self.url}/watch/{sign_viewer_link(SECRET, BID, 'l', 3600)}/"

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self.runner.cleanup()

    def broadcast(self) -> Broadcast:
        return self.app[SERVICE_KEY].broadcasts[BID]
