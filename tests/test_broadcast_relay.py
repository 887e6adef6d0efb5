"""aiortc speakers → WHIP → relay → HLS, decoded back with PyAV."""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiortc.rtcrtpreceiver
import av
import pytest
from aiohttp import web

from parta_common.roles import Role
from parta_common.tokens import grant_for, sign_media_token
from sfu.broadcast import SERVICE_KEY, BroadcastConfig, setup_broadcasts
from sfu.broadcast.directory import BroadcastInfo, LinkInfo
from sfu.broadcast.relay import Broadcast
from tests.broadcast_support import (
    H264Track,
    StaticDirectory,
    ToneTrack,
    decode_lumas,
    publish,
)
from tests.harness import free_port

SECRET = "test-secret-for-broadcasts-0123456789"
ROOM = "!school-hall"
BID = "bc-test-1"


async def wait_for(check: Callable[[], bool], what: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Relay:
    def __init__(self, url: str, directory: StaticDirectory, app: web.Application) -> None:
        self.url = url
        self.directory = directory
        self.app = app

    def broadcast(self, bid: str = BID) -> Broadcast:
        return self.app[SERVICE_KEY].broadcasts[bid]


@pytest.fixture
def decoders_created(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every decoder aiortc's receivers create in this test, by codec name."""
    made: list[str] = []
    real = aiortc.rtcrtpreceiver.get_decoder  # type: ignore[attr-defined]

    def recording(codec):  # type: ignore[no-untyped-def]
        made.append(codec.name)
        return real(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", recording)
    return made


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    directory = StaticDirectory()
    directory.broadcasts[BID] = BroadcastInfo(
        BID, ROOM, "Последний звонок", "live", ("@anna:school", "@boris:school"), True, False
    )
    directory.links["link-1"] = LinkInfo("link-1", BID, revoked=False)
    config = BroadcastConfig(token_secret=SECRET, data_dir=str(tmp_path), listen_port=free_port())
    app = web.Application()
    setup_broadcasts(app, config, directory)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", config.listen_port)
    await site.start()
    try:
        yield Relay(f"http://127.0.0.1:{config.listen_port}", directory, app)
    finally:
        await runner.cleanup()


def speaker_token(user: str, room: str = ROOM) -> str:
    return sign_media_token(SECRET, room, user, user, "teacher", grant_for(Role.TEACHER))


async def test_two_speakers_become_hls_switched_at_keyframes_without_decoding(
    relay: Relay, decoders_created: list[str]
) -> None:
    anna = await publish(
        relay.url, BID, speaker_token("@anna:school"), H264Track(luma=40), ToneTrack(loud=True)
    )
    boris = await publish(
        relay.url, BID, speaker_token("@boris:school"), H264Track(luma=200), ToneTrack(False)
    )
    broadcast = relay.broadcast()
    await wait_for(lambda: len(broadcast.writer.segments) >= 3, "three segments with Anna")
    assert broadcast.current is not None
    assert broadcast.current.speaker.user_id == "@anna:school"
    # Boris starts talking, Anna stops: the picture follows him.
    assert anna.audio is not None
    assert boris.audio is not None
    anna.audio.loud, boris.audio.loud = False, True
    await wait_for(
        lambda: (
            broadcast.current is not None and broadcast.current.speaker.user_id == "@boris:school"
        ),
        "the switch to Boris",
    )
    switched_at = len(broadcast.writer.all_segments)
    await wait_for(
        lambda: len(broadcast.writer.all_segments) >= switched_at + 3, "Boris's segments"
    )
    await anna.pc.close()
    await boris.pc.close()
    await broadcast.end()

    segments = [broadcast.directory / s.name for s in broadcast.writer.all_segments]
    lumas = decode_lumas(segments)
    assert len(lumas) >= 5 * 15 * 0.8  # about 15 fps over more than five seconds
    # Every frame is one speaker's picture, Anna's first and Boris's last, one switch.
    kinds = ["anna" if abs(v - 40) < 12 else "boris" if abs(v - 200) < 12 else "?" for v in lumas]
    assert "?" not in kinds
    assert kinds[0] == "anna"
    assert kinds[-1] == "boris"
    assert sum(1 for a, b in itertools.pairwise(kinds) if a != b) == 1
    # Each segment starts with a keyframe the viewer can start from.
    for path in segments:
        with av.open(str(path)) as container:
            if not container.streams.video:
                continue
            video = [p for p in container.demux(video=0) if p.size]
            if video:  # (a segment before the first picture has audio only)
                assert video[0].is_keyframe, path.name
    # The relay asked for keyframes (segment boundaries and the switch).
    assert anna.video is not None
    assert boris.video is not None
    assert anna.video.keyframe_requests >= 3
    assert boris.video.keyframe_requests >= 1
    # ... and never decoded video: aiortc made only Opus decoders.
    assert decoders_created
    assert set(decoders_created) == {"opus"}
    # Audio went in as AAC.
    with av.open(str(segments[-1])) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
