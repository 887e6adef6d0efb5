"""A worker process: students' peer connections and their slots (docs/sfu.md).

Started by the main process (``sfu.worker_pool``) as ``python -m <launcher> --worker N
--control-fd C --media-fd M --audio-fd A``, with the same launcher as the main process (so the
tests' codec guard holds here too). It answers the offers the main process passes on,
keeps each subscriber's :class:`~sfu.forwarding.Slot` s exactly as the single process
does (header rewrite, NACK buffer, sender reports), and feeds them from the packets
the main process relays, once per stream for the whole worker. Streams its own
participants publish go back to the main process, which ranks and fans them out.
Keyframe requests go to the main process, which rate-limits them per stream.
"""

import asyncio
import dataclasses
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any, Final

from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtp import RtpPacket

from sfu.aiortc_hooks import RtpWriter, hook_receiver, hook_sender, sender_ssrc
from sfu.errors import LessonError
from sfu.forwarding import Clock, PublishedStream, Slot
from sfu.metrics import ForwardingStats
from sfu.peer import answer_offer, ice_servers_from, new_peer_connection
from sfu.sources import Source
from sfu.worker_channel import (
    HAS_LEVEL,
    KEYFRAME,
    MARKER,
    ControlLink,
    MediaLink,
    decode_parameters,
    encode_parameters,
    unpack_bytes,
)

logger = logging.getLogger(__name__)

TICK: Final = 0.25
REPORT_EVERY: Final = 4
# Keyframe requests of one stream closer together than this are one request.
COALESCE: Final = 0.05


class _NoWriter:
    def send_rtp(self, data: bytes) -> bool:
        return False

    def send_rtcp(self, data: bytes) -> bool:
        return False


class RelayedStream(PublishedStream):
    """A stream published elsewhere, as the main process relays it to this worker."""

    def __init__(
        self,
        stream_id: int,
        kind: str,
        parameters: RTCRtpReceiveParameters,
        stats: ForwardingStats,
        ask: Callable[[int, str], None],
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(kind, parameters, _NoWriter(), 0, stats, 0.0, clock)
        self.id = stream_id
        self.reported_unused = False
        self._ask = ask
        self._asked_at = -1e9
        self._asked_reason = ""

    def request_keyframe(self, reason: str) -> bool:
        """Ask the main process, which holds the publisher and the rate limit."""
        if self.kind != "video":
            return False
        now = self._clock()
        if now - self._asked_at < COALESCE and (reason != "join" or self._asked_reason == "join"):
            return False
        self._asked_at = now
        self._asked_reason = reason
        self._ask(self.id, reason)
        return True

    def relay(
        self, payload_type: int, flags: int, level: int, seq: int, ts: int, data: bytes
    ) -> None:
        codec = self.codecs.get(payload_type)
        if codec is None:
            return
        audio_level = level if flags & HAS_LEVEL else None
        marker = bool(flags & MARKER)
        keyframe = bool(flags & KEYFRAME)
        for slot in self.consumers.copy():
            slot.forward(self, codec, seq, ts, marker, data, audio_level, keyframe)

    def tick(self, bitrate: int) -> None:
        return


class WorkerPeer:
    def __init__(self, key: int, pc: RTCPeerConnection) -> None:
        self.key = key
        self.pc = pc
        self.slots: dict[str, Slot] = {}
        # Upstream id by the mid of each source this participant publishes.
        self.upstreams: dict[str, int] = {}
        self.writer: RtpWriter | None = None


class Worker:
    def __init__(
        self, index: int, control: ControlLink, media: socket.socket, audio: socket.socket
    ) -> None:
        self.index = index
        self.control = control
        self.stats = ForwardingStats()
        self.peers: dict[int, WorkerPeer] = {}
        self.streams: dict[int, RelayedStream] = {}
        self.relaying: dict[int, bool] = {}
        self.media = MediaLink(media, self._on_record)
        # Relayed audio comes on its own channel (receive only here).
        self.audio = MediaLink(audio, self._on_record)
        self._ice_servers: list[dict[str, Any]] = []
        self._next_upstream = 1
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        ticker = asyncio.get_running_loop().create_task(self._tick())
        try:
            while (message := await self.control.receive()) is not None:
                if message.get("op") == "stop":
                    break
                try:
                    self._handle(message)
                except Exception:
                    logger.exception(
                        "worker %d: control message %s failed", self.index, message.get("op")
                    )
        finally:
            ticker.cancel()
            for peer in list(self.peers.values()):
                await peer.pc.close()
            self.media.close()
            self.audio.close()
            self.control.close()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "config":
            self._ice_servers = message["ice_servers"]
        elif op == "offer":
            self._spawn(self._offer(message))
        elif op == "close":
            peer = self.peers.pop(message["key"], None)
            if peer is not None:
                for slot in peer.slots.values():
                    slot.close()
                for upstream in peer.upstreams.values():
                    self.relaying.pop(upstream, None)
                self._spawn(peer.pc.close())
        elif op == "stream":
            self.streams[message["id"]] = RelayedStream(
                message["id"],
                message["kind"],
                decode_parameters(message["parameters"]),
                self.stats,
                self._ask_keyframe,
            )
        elif op == "forget":
            stream = self.streams.pop(message["id"], None)
            if stream is not None:
                stream.close()
        elif op == "assign":
            peer = self.peers.get(message["key"])
            target = peer.slots.get(message["mid"]) if peer is not None else None
            if target is not None:
                sid = message["stream"]
                target.assign(self.streams.get(sid) if sid is not None else None)
        elif op == "relay":
            if message["up"] in self.relaying:
                self.relaying[message["up"]] = bool(message["on"])
        elif op == "rtcp":
            peer = self.peers.get(message["key"])
            if peer is not None and peer.writer is not None:
                peer.writer.send_rtcp(unpack_bytes(message["data"]))
        else:
            logger.warning("worker %d: unknown control message %s", self.index, op)

    async def _offer(self, message: dict[str, Any]) -> None:
        key: int = message["key"]
        peer = self.peers.get(key)
        if peer is None:
            peer = self.peers[key] = WorkerPeer(
                key, new_peer_connection(ice_servers_from(self._ice_servers))
            )
        new_slots: list[list[str]] = []
        reply: dict[str, Any] = {"op": "answer", "rid": message["rid"]}
        try:
            answer = await answer_offer(
                peer.pc,
                message["sdp"],
                message["sources"],
                frozenset(Source(s) for s in message["permitted"]),
                lambda t, s: self._hook_publisher(peer, t),
                lambda t: self._hook_slot(peer, t, new_slots),
            )
        except LessonError as e:
            reply["error"] = e.code
            reply["detail"] = str(e.details.get("detail", ""))
        except Exception:
            logger.exception("worker %d: answering an offer failed", self.index)
            reply["error"] = "internal"
        else:
            reply["sdp"] = answer.sdp
            reply["publishing"] = {str(s): mid for s, mid in answer.publishing.items()}
            reply["forbidden"] = [str(s) for s in answer.forbidden]
            reply["slots"] = new_slots
        self.control.send(reply)

    def _hook_publisher(self, peer: WorkerPeer, transceiver: RTCRtpTransceiver) -> None:
        mid = transceiver.mid
        assert mid is not None
        receiver = transceiver.receiver
        kind = transceiver.kind
        media = self.media
        relaying = self.relaying

        def on_start(parameters: RTCRtpReceiveParameters) -> None:
            upstream = self._next_upstream
            self._next_upstream += 1
            peer.upstreams[mid] = upstream
            peer.writer = RtpWriter.shared(receiver.transport, self.stats)
            # Audio always (the main process ranks by loudness); video once it is wanted.
            relaying[upstream] = kind == "audio"
            self.control.send(
                {
                    "op": "published",
                    "key": peer.key,
                    "mid": mid,
                    "kind": kind,
                    "up": upstream,
                    "parameters": encode_parameters(parameters),
                }
            )

        def on_rtp(packet: RtpPacket) -> None:
            upstream = peer.upstreams.get(mid)
            if upstream is None or not relaying.get(upstream):
                return
            flags = MARKER if packet.marker else 0
            level = packet.extensions.audio_level
            value = 0
            if level is not None:
                flags |= HAS_LEVEL
                value = level[1]
            media.send(
                upstream,
                packet.payload_type,
                flags,
                value,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
                packet.payload,
            )
            self.stats.packets_relayed_up += 1

        hook_receiver(receiver, on_start, on_rtp)

    def _hook_slot(
        self, peer: WorkerPeer, transceiver: RTCRtpTransceiver, new_slots: list[list[str]]
    ) -> None:
        mid = transceiver.mid
        assert mid is not None
        if mid in peer.slots:
            return
        sender = transceiver.sender
        slot = Slot(mid, transceiver.kind, sender_ssrc(sender), self.stats)
        peer.slots[mid] = slot
        new_slots.append([mid, transceiver.kind])

        def on_start(parameters: RTCRtpSendParameters) -> None:
            slot.start(parameters, RtpWriter.shared(sender.transport, self.stats))

        hook_sender(sender, on_start, slot.on_rtcp)

    def _on_record(
        self,
        ident: int,
        payload_type: int,
        flags: int,
        level: int,
        seq: int,
        ts: int,
        ssrc: int,
        payload: bytes,
    ) -> None:
        stream = self.streams.get(ident)
        if stream is not None:
            stream.relay(payload_type, flags, level, seq, ts, payload)

    def _ask_keyframe(self, stream_id: int, reason: str) -> None:
        self.control.send({"op": "keyframe", "id": stream_id, "reason": reason})

    async def _tick(self) -> None:
        count = 0
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            late = loop.time() - due
            if late > TICK:
                logger.warning("worker %d: event loop %.0f ms late", self.index, late * 1000)
            count += 1
            try:
                for stream in self.streams.values():
                    # Said again once a second: the main process keeps feeding a stream
                    # while one of its slots here has it assigned.
                    unused = not stream.consumers
                    if unused and (not stream.reported_unused or count % REPORT_EVERY == 0):
                        self.control.send({"op": "unused", "id": stream.id})
                    stream.reported_unused = unused
                if count % REPORT_EVERY == 0:
                    for peer in self.peers.values():
                        for slot in peer.slots.values():
                            slot.sender_report()
                            slot.remind()
                # Counters for the main process's /metrics, at most a tick old.
                self.stats.packets_relay_dropped = self.media.records_dropped
                self.control.send(
                    {
                        "op": "stats",
                        "stats": dataclasses.asdict(self.stats),
                        "peers": len(self.peers),
                    }
                )

            except Exception:
                logger.exception("worker %d: periodic work failed", self.index)


async def _serve(index: int, control_fd: int, media_fd: int, audio_fd: int) -> None:
    control = await ControlLink.open(socket.socket(fileno=control_fd))
    media = socket.socket(fileno=media_fd)
    audio = socket.socket(fileno=audio_fd)
    worker = Worker(index, control, media, audio)
    await worker.run()


def run_worker(index: int, control_fd: int, media_fd: int, audio_fd: int) -> int:
    # The main process stops its workers; a terminal's Ctrl-C must not beat it to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(index, control_fd, media_fd, audio_fd))
    return 0
