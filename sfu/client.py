"""A lesson client in Python, speaking docs/sfu-protocol.md over aiohttp + aiortc.

Tests and benchmarks use it as the other side of the SFU; it is also a reference for
anyone writing a client. It publishes ``MediaStreamTrack``s (``sfu.synthetic.ClipTrack``
needs no encoder) and receives its slots either decoded (aiortc's normal receiver) or,
with ``decode=False``, as raw packets counted by :class:`SlotCounter` (no decoder, so
one process can simulate many subscribers).
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, AnyRtcpPacket, RtcpPsfbPacket, RtpPacket

from sfu.aiortc_hooks import hook_receiver
from sfu.synthetic import ClipTrack, read_stamp


class LessonRefused(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        self.code = str(error.get("code"))
        self.error = error
        super().__init__(f"{self.code}: {error.get('message')}")


class SlotCounter:
    """Counts what arrives in one receive slot without decoding it."""

    def __init__(self) -> None:
        self.packets = 0
        self.frames = 0
        self.ssrcs: set[int] = set()
        self.latencies: list[float] = []
        self.first_frame_at: float | None = None
        # Set to a list to keep every packet (tests that look into payloads).
        self.record: list[RtpPacket] | None = None

    def on_rtp(self, packet: RtpPacket) -> None:
        self.packets += 1
        if self.record is not None:
            self.record.append(packet)
        self.ssrcs.add(packet.ssrc)
        if packet.marker:
            self.frames += 1
            if self.first_frame_at is None:
                self.first_frame_at = time.monotonic()
            sent = read_stamp(packet.payload)
            if sent is not None:
                self.latencies.append(time.perf_counter() - sent)


class LessonClient:
    def __init__(self, base_url: str, room_id: str, token: str) -> None:
        ws_base = base_url.replace("http://", "ws://").replace("https://", "wss://")
        self.url = f"{ws_base}/lesson/{room_id}/ws"
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.joined: dict[str, Any] | None = None
        self.closed_with: int | None = None
        self.pc: RTCPeerConnection | None = None
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.counters: dict[str, SlotCounter] = {}
        self.published: dict[str, ClipTrack] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def id(self) -> str:
        assert self.joined is not None
        return str(self.joined["you"])

    async def connect(self, within: float = 10.0) -> dict[str, Any]:
        """Join; return ``joined`` (or ``waiting_for_admission``), or raise LessonRefused."""
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.send({"type": "join", "protocol": 1, "token": self.token})
        first = await self.wait_for(
            lambda m: m["type"] in ("joined", "waiting_for_admission", "error"), within
        )
        if first["type"] == "error":
            raise LessonRefused(first)
        if first["type"] == "joined":
            self.joined = first
        return first

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type is aiohttp.WSMsgType.TEXT:
                message = json.loads(frame.data)
                if message["type"] == "joined":
                    self.joined = message
                self.messages.append(message)
                self._changed.set()
        self.closed_with = self._ws.close_code
        self._changed.set()

    def mark(self) -> int:
        """A position in the received messages, for ``wait_for(since=...)``."""
        return len(self.messages)

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        within: float = 10.0,
        since: int = 0,
    ) -> dict[str, Any]:
        """The first message from position ``since`` on (received or arriving) that matches."""
        async with asyncio.timeout(within):
            seen = since
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                if self.closed_with is not None:
                    raise ConnectionError(f"closed with {self.closed_with}")
                self._changed.clear()
                await self._changed.wait()

    async def wait_closed(self, within: float = 10.0) -> int:
        async with asyncio.timeout(within):
            while self.closed_with is None:
                self._changed.clear()
                await self._changed.wait()
        return self.closed_with

    def last(self, kind: str) -> dict[str, Any] | None:
        for message in reversed(self.messages):
            if message["type"] == kind:
                return dict(message)
        return None

    async def start_media(
        self,
        publish: dict[str, MediaStreamTrack],
        video_slots: int | None = None,
        audio_slots: int | None = None,
        decode: bool = True,
    ) -> None:
        """Publish ``publish`` (source → track) and receive the slots ``joined`` offered."""
        assert self.joined is not None
        slots = self.joined["slots"]
        pc = self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        senders: dict[RTCRtpTransceiver, str] = {}
        for source, track in publish.items():
            transceiver = pc.addTransceiver(track, direction="sendonly")
            senders[transceiver] = source
            if isinstance(track, ClipTrack):
                self._watch_keyframe_requests(transceiver, track)
                self.published[source] = track
        receivers = [
            pc.addTransceiver("video", direction="recvonly")
            for _ in range(slots["video"] if video_slots is None else video_slots)
        ] + [
            pc.addTransceiver("audio", direction="recvonly")
            for _ in range(slots["audio"] if audio_slots is None else audio_slots)
        ]
        counters = [SlotCounter() for _ in receivers] if not decode else []
        for transceiver, counter in zip(receivers, counters, strict=False):
            hook_receiver(transceiver.receiver, _ignore, counter.on_rtp)
        await pc.setLocalDescription(await pc.createOffer())
        for i, transceiver in enumerate(receivers):
            assert transceiver.mid is not None
            if counters:
                self.counters[transceiver.mid] = counters[i]
        sources = {t.mid: source for t, source in senders.items()}
        await self.send({"type": "offer", "sdp": pc.localDescription.sdp, "sources": sources})
        answer = await self.wait_for(lambda m: m["type"] in ("answer", "error"))
        if answer["type"] == "error":
            raise LessonRefused(answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        for transceiver in receivers:
            assert transceiver.mid is not None
            self.tracks[transceiver.mid] = transceiver.receiver.track

    @staticmethod
    def _watch_keyframe_requests(transceiver: RTCRtpTransceiver, track: ClipTrack) -> None:
        """Answer PLI/FIR like a camera encoder: restart the clip at its keyframe."""
        sender = transceiver.sender
        original = sender._handle_rtcp_packet

        async def handle(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                track.request_keyframe()
            await original(packet)

        sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
        if track.audio_level is not None:
            next_frame = sender._next_encoded_frame
            level = track.audio_level

            async def with_level(codec: Any) -> Any:
                frame = await next_frame(codec)
                if frame is not None:
                    # aiortc negates the level it is given (it expects dBov).
                    frame.audio_level = -level
                return frame

            sender._next_encoded_frame = with_level  # type: ignore[method-assign]

    def slot_of(self, participant_id: str, source: str) -> str | None:
        """The mid that carries ``participant_id``'s ``source`` now, per the last ``slots``."""
        slots = self.last("slots")
        if slots is None:
            return None
        for mid, value in slots["assignments"].items():
            if value == {"participant_id": participant_id, "source": source}:
                return str(mid)
        return None

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ConnectionError):
                await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.pc is not None:
            await self.pc.close()
        if self._session is not None:
            await self._session.close()


def _ignore(parameters: RTCRtpReceiveParameters) -> None:
    return
