"""Test speakers for the broadcast relay: aiortc peers that publish over WHIP.

Video is H.264 encoded in the test process (PyAV's libx264), each frame a flat picture
whose brightness identifies the speaker; a keyframe is encoded whenever the relay asks
(PLI), as a browser does, and otherwise only every ``gop`` frames. Audio is a tone or
silence, so the relay's active-speaker choice can be steered.
"""

import asyncio
import contextlib
import fractions
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
import av
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from broadcast_relay import BroadcastConfig, setup_broadcasts
from broadcast_relay.directory import BroadcastInfo, LinkInfo, VideoInfo

if TYPE_CHECKING:
    from tests.harness import RunningHomeserver, User

VIDEO_CLOCK = 90_000


class H264Track(MediaStreamTrack):
    kind = "video"

    def __init__(
        self, luma: int, width: int = 320, height: int = 240, fps: int = 15, gop: int = 600
    ) -> None:
        super().__init__()
        self.luma = luma
        self.fps = fps
        self.width, self.height = width, height
        self.encoder = av.CodecContext.create("libx264", "w")
        self.encoder.width, self.encoder.height = width, height
        self.encoder.pix_fmt = "yuv420p"
        self.encoder.time_base = fractions.Fraction(1, fps)
        self.encoder.gop_size = gop
        self.encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
        self.keyframe_requests = 0
        self._want_keyframe = True
        self._index = 0
        self._start: float | None = None
        self._pending: list[Any] = []

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._want_keyframe = True

    async def recv(self) -> Any:
        if self._start is None:
            self._start = time.monotonic()
        while not self._pending:
            due = self._start + self._index / self.fps
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            frame = av.VideoFrame(self.width, self.height, "yuv420p")
            frame.planes[0].update(bytes([self.luma]) * frame.planes[0].buffer_size)
            for plane in frame.planes[1:]:
                plane.update(bytes([128]) * plane.buffer_size)
            frame.pts = self._index
            frame.time_base = self.encoder.time_base
            if self._want_keyframe:
                frame.pict_type = av.video.frame.PictureType.I
                self._want_keyframe = False
            for packet in self.encoder.encode(frame):
                packet.pts = packet.dts = self._index * VIDEO_CLOCK // self.fps
                packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
                self._pending.append(packet)
            self._index += 1
        return self._pending.pop(0)


class ToneTrack(MediaStreamTrack):
    """48 kHz mono: a 440 Hz tone while ``loud``, else silence."""

    kind = "audio"

    def __init__(self, loud: bool) -> None:
        super().__init__()
        self.loud = loud
        self._samples = 0
        self._start: float | None = None
        tone = [int(8000 * math.sin(2 * math.pi * 440 * i / 48_000)) for i in range(960)]
        self._tone = b"".join(s.to_bytes(2, "little", signed=True) for s in tone)

    async def recv(self) -> Any:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._samples / 48_000
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._tone if self.loud else b"\x00" * 1920)
        frame.sample_rate = 48_000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48_000)
        self._samples += 960
        return frame


@attrs.define
class WhipSpeaker:
    pc: RTCPeerConnection
    location: str
    video: H264Track | None
    audio: ToneTrack | None


def h264_only() -> list[Any]:
    caps = RTCRtpSender.getCapabilities("video")
    return [
        c
        for c in caps.codecs
        if c.mimeType.lower() == "video/h264"
        and str(c.parameters.get("packetization-mode", "0")) == "1"
    ]


async def publish(
    base_url: str,
    broadcast_id: str,
    token: str,
    video: H264Track | None,
    audio: ToneTrack | None,
    screen: bool = False,
) -> WhipSpeaker:
    """Publish over WHIP; keyframe requests (PLI) reach ``video.request_keyframe``."""
    pc = RTCPeerConnection()
    if audio is not None:
        pc.addTransceiver(audio, direction="sendonly")
    if video is not None:
        transceiver = pc.addTransceiver(video, direction="sendonly")
        transceiver.setCodecPreferences(h264_only())
        transceiver.sender._send_keyframe = video.request_keyframe  # type: ignore[method-assign]
    await pc.setLocalDescription(await pc.createOffer())
    url = f"{base_url}/whip/{broadcast_id}" + ("?kind=screen" if screen else "")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=pc.localDescription.sdp, headers=headers) as resp,
    ):
        body = await resp.text()
        if resp.status != 201:
            await pc.close()
            raise AssertionError(f"WHIP refused: {resp.status} {body}")
        location = resp.headers["Location"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return WhipSpeaker(pc, location, video, audio)


@attrs.define
class StaticDirectory:
    """The module's answers, fixed in advance (the module itself is tested against Synapse)."""

    broadcasts: dict[str, BroadcastInfo] = attrs.field(factory=dict)
    links: dict[str, LinkInfo] = attrs.field(factory=dict)
    recordings: list[tuple[Path, VideoInfo]] = attrs.field(factory=list)
    live: list[str] = attrs.field(factory=list)

    async def broadcast(self, broadcast_id: str, fresh: bool = False) -> BroadcastInfo | None:
        return self.broadcasts.get(broadcast_id)

    async def viewer_link(self, link_id: str, max_age: float | None = None) -> LinkInfo | None:
        return self.links.get(link_id)

    async def publish_recording(self, broadcast_id: str, mp4: Path, info: VideoInfo) -> None:
        self.recordings.append((mp4, info))

    async def went_live(self, broadcast_id: str) -> None:
        self.live.append(broadcast_id)


def decode_lumas(paths: Sequence[Path]) -> list[int]:
    """The mean centre brightness of every decoded video frame of the segments, in order."""
    lumas = []
    for path in paths:
        with av.open(str(path)) as container:
            if not container.streams.video:
                continue  # audio only: before the first picture arrived
            for frame in container.decode(video=0):
                plane = frame.planes[0]
                row = bytes(plane)[plane.line_size * (frame.height // 2) :][: frame.width]
                lumas.append(sum(row) // len(row))
    return lumas


@contextlib.asynccontextmanager
async def relay_asking(
    hs: "RunningHomeserver", secret: str, port: int, data_dir: Path, **config: Any
) -> AsyncIterator[web.Application]:
    """The relay on 127.0.0.1:``port`` asking the module of ``hs`` (``config`` overrides)."""
    settings = BroadcastConfig(
        token_secret=secret,
        homeserver_url=hs.base_url,
        data_dir=str(data_dir),
        listen_port=port,
        **config,
    )
    app = web.Application()
    setup_broadcasts(app, settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app
    finally:
        await runner.cleanup()


async def module_api(
    hs: "RunningHomeserver", user: "User", method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """A module API call as ``user``: (status, JSON body)."""
    async with hs.http(user) as http, http.request(method, path, json=body) as resp:
        return resp.status, await resp.json()


@contextlib.contextmanager
def homeserver_with_media(
    directory: Path, secret: str, relay: str
) -> Iterator["RunningHomeserver"]:
    """Synapse with the module, media on (``secret``), broadcasts served by ``relay``."""
    from tests.harness import running_homeserver

    config = {"media": {"enabled": True, "token_secret": secret, "sfu_public_url": relay + "/"}}
    with running_homeserver(directory, module_config=config) as running:
        yield running
