"""The main process's side of the worker processes (docs/sfu.md, "Several processes").

:class:`WorkerPool` starts ``workers`` processes (``sfu.worker_process``), places students'
peer connections on the least-loaded one, restarts a worker that dies (after telling
its participants to reconnect) and adds the workers' counters to the metrics.

For a participant on a worker the lesson holds a :class:`RemotePeer`: offers go to the
worker and come back answered; each receive slot is a :class:`RemoteSlot`, whose
assignment the worker mirrors. A published stream reaches a worker through one
:class:`StreamFeed` (one of the stream's consumers), however many of the worker's
slots show it. Streams published by a worker's participants come to this process
as records on the media channel and become ordinary :class:`PublishedStream` s here,
whose keyframe requests and REMBs go back over the control channel.
"""

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import socket
import sys
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtp import RtpPacket

from sfu.config import SfuConfig
from sfu.errors import LessonError
from sfu.forwarding import Codec, PublishedStream
from sfu.metrics import ForwardingStats, WorkerState, WorkersView, add_stats
from sfu.sources import Source
from sfu.worker_channel import (
    HAS_LEVEL,
    KEYFRAME,
    MARKER,
    ControlLink,
    MediaLink,
    decode_parameters,
    media_pair,
    pack_bytes,
)

logger = logging.getLogger(__name__)

OFFER_TIMEOUT: Final = 30.0
RESTART_DELAY: Final = 1.0
STOP_TIMEOUT: Final = 5.0

# (mid, kind, parameters, peer) → what takes the stream's packets, or None: not wanted.
PublishedCallback = Callable[
    [str, str, RTCRtpReceiveParameters, "RemotePeer"], Callable[[RtpPacket], None] | None
]


def launcher_argv() -> list[str]:
    """How this process was started (``python -m <module>``), to start workers alike."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None) or "sfu"
    if name.endswith(".__main__"):
        name = name.removesuffix(".__main__")
    return [sys.executable, "-m", name]


class RemotePeer:
    """A participant whose peer connection lives in a worker."""

    def __init__(
        self,
        worker: "WorkerHandle",
        key: int,
        on_published: PublishedCallback,
        on_lost: Callable[[], None],
    ) -> None:
        self.worker = worker
        self.key = key
        self.on_published = on_published
        self.on_lost = on_lost
        # Upstream id by mid of each stream the participant publishes, and whether the
        # worker relays it to us (audio always; video while someone receives it).
        self.upstreams: dict[str, int] = {}
        self.relaying: dict[str, bool] = {}

    async def offer(
        self, sdp: str, sources: Mapping[str, str], permitted: Collection[Source]
    ) -> dict[str, Any]:
        return await self.worker.request(
            {
                "op": "offer",
                "key": self.key,
                "sdp": sdp,
                "sources": dict(sources),
                "permitted": sorted(str(s) for s in permitted),
            }
        )

    def route(self, mid: str, upstream: int, handler: Callable[[RtpPacket], None]) -> None:
        self.upstreams[mid] = upstream
        self.relaying[mid] = False
        self.worker.upstreams[upstream] = handler

    def update_relays(self, published: Mapping[str, PublishedStream]) -> None:
        """Ask the worker for the video streams someone receives, and no others."""
        for mid, stream in published.items():
            upstream = self.upstreams.get(mid)
            if upstream is None:
                continue
            wanted = stream.kind == "audio" or (bool(stream.consumers) and not stream.closed)
            if self.relaying.get(mid) != wanted:
                self.relaying[mid] = wanted
                self.worker.send({"op": "relay", "up": upstream, "on": wanted})

    def close(self) -> None:
        for upstream in self.upstreams.values():
            self.worker.upstreams.pop(upstream, None)
        self.worker.detach(self)


class RemoteSlot:
    """A receive slot that lives in a worker; assignments are mirrored there."""

    def __init__(self, peer: RemotePeer, mid: str, kind: str) -> None:
        self.peer = peer
        self.mid = mid
        self.kind = kind
        self.assigned: PublishedStream | None = None

    def assign(self, stream: PublishedStream | None) -> None:
        if stream is self.assigned:
            return
        worker = self.peer.worker
        old = self.assigned
        self.assigned = stream
        stream_id = worker.feed(stream) if stream is not None else None
        if old is not None:
            worker.unfeed(old)
        worker.send({"op": "assign", "key": self.peer.key, "mid": self.mid, "stream": stream_id})

    def sender_report(self) -> None:
        """The worker writes the slot's sender reports."""

    def remind(self) -> None:
        """The worker repeats the slot's keyframe requests."""

    def close(self) -> None:
        self.assign(None)


class StreamFeed:
    """A published stream's packets to one worker (one consumer of the stream)."""

    def __init__(self, worker: "WorkerHandle", stream: PublishedStream, stream_id: int) -> None:
        self.worker = worker
        self.stream = stream
        self.id = stream_id
        # Remote slots on the worker that have this stream assigned.
        self.refs = 0

    def forward(
        self,
        stream: PublishedStream,
        codec: Codec,
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        audio_level: int | None,
        keyframe: bool,
    ) -> None:
        flags = MARKER if marker else 0
        if keyframe:
            flags |= KEYFRAME
        if audio_level is not None:
            flags |= HAS_LEVEL
        self.worker.media_send(
            self.id,
            codec.payload_type,
            flags,
            audio_level or 0,
            seq,
            timestamp,
            payload,
            audio=stream.kind == "audio",
        )

    def assign(self, stream: PublishedStream | None) -> None:
        """The stream closed (``None``): stop feeding, the worker forgets it."""
        if stream is None:
            self.worker.drop_feed(self)


class RemoteRtcpWriter:
    """RTCP to a publisher whose peer connection lives in a worker (PLI, REMB)."""

    def __init__(self, peer: RemotePeer) -> None:
        self._peer = peer

    def send_rtp(self, data: bytes) -> bool:
        return False

    def send_rtcp(self, data: bytes) -> bool:
        worker = self._peer.worker
        worker.send({"op": "rtcp", "key": self._peer.key, "data": pack_bytes(data)})
        return worker.alive


class WorkerHandle:
    """One worker process as the main process sees it."""

    def __init__(self, pool: "WorkerPool", index: int) -> None:
        self.pool = pool
        self.index = index
        self.alive = False
        self.pid: int | None = None
        self.stats = ForwardingStats()
        self.reported_peers = 0
        self.peers: dict[int, RemotePeer] = {}
        self.upstreams: dict[int, Callable[[RtpPacket], None]] = {}
        self.feeds: dict[int, StreamFeed] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._control: ControlLink | None = None
        self._media: MediaLink | None = None
        # Audio has its own channel: a worker short of CPU loses video, not speech.
        self._audio: MediaLink | None = None
        self._requests: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._request_ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        control_ours, control_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        media_ours, media_theirs = media_pair()
        audio_ours, audio_theirs = media_pair()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.pool.argv,
                "--worker",
                str(self.index),
                "--control-fd",
                str(control_theirs.fileno()),
                "--media-fd",
                str(media_theirs.fileno()),
                "--audio-fd",
                str(audio_theirs.fileno()),
                "--log-level",
                logging.getLevelName(logging.getLogger().getEffectiveLevel()),
                pass_fds=(control_theirs.fileno(), media_theirs.fileno(), audio_theirs.fileno()),
            )
        finally:
            control_theirs.close()
            media_theirs.close()
            audio_theirs.close()
        self.pid = self._process.pid
        self._control = await ControlLink.open(control_ours)
        self._media = MediaLink(media_ours, self._on_record)
        self._audio = MediaLink(audio_ours, self._on_record)
        self.alive = True
        self._control.send(
            {
                "op": "config",
                "ice_servers": [_ice_server(s) for s in self.pool.config.ice_servers],
            }
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._watch())]
        logger.info("SFU worker %d started (pid %d)", self.index, self.pid)

    def counters(self) -> ForwardingStats:
        """The worker's last reported counters, with what our end of the link dropped."""
        counters = dataclasses.replace(self.stats)
        for link in (self._media, self._audio):
            if link is not None:
                counters.packets_relay_dropped += link.records_dropped
        return counters

    # -- towards the worker ------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        if self.alive and self._control is not None:
            self._control.send(message)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message`` and wait for the worker's answer (an offer's)."""
        if not self.alive:
            raise LessonError("internal")
        rid = next(self._request_ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._requests[rid] = future
        self.send({**message, "rid": rid})
        try:
            reply = await asyncio.wait_for(future, OFFER_TIMEOUT)
        except TimeoutError:
            raise LessonError("internal") from None
        finally:
            self._requests.pop(rid, None)
        if "error" in reply:
            raise LessonError(reply["error"], detail=reply.get("detail", ""))
        return reply

    def media_send(
        self,
        ident: int,
        payload_type: int,
        flags: int,
        level: int,
        seq: int,
        ts: int,
        data: bytes,
        audio: bool = False,
    ) -> None:
        media = self._audio if audio else self._media
        if media is not None:
            media.send(ident, payload_type, flags, level, seq, ts, 0, data)
            self.pool.stats.packets_relayed += 1

    def feed(self, stream: PublishedStream) -> int:
        """Make sure the worker receives ``stream``; its id there."""
        stream_id = self.pool.stream_id(stream)
        feed = self.feeds.get(stream_id)
        if feed is None and self.alive:
            feed = self.feeds[stream_id] = StreamFeed(self, stream, stream_id)
            self.send(
                {
                    "op": "stream",
                    "id": stream_id,
                    "kind": stream.kind,
                    "parameters": stream_parameters(stream),
                }
            )
            stream.consumers.append(feed)
        if feed is not None:
            feed.refs += 1
        return stream_id

    def unfeed(self, stream: PublishedStream) -> None:
        """One slot less wants ``stream``; the feed stays until the worker says unused."""
        feed = self.feeds.get(self.pool.stream_id(stream))
        if feed is not None and feed.refs > 0:
            feed.refs -= 1

    def drop_feed(self, feed: StreamFeed) -> None:
        if self.feeds.get(feed.id) is feed:
            del self.feeds[feed.id]
            self.send({"op": "forget", "id": feed.id})
        if feed in feed.stream.consumers:
            feed.stream.consumers.remove(feed)

    def attach(self, peer: RemotePeer) -> None:
        self.peers[peer.key] = peer

    def detach(self, peer: RemotePeer) -> None:
        if self.peers.pop(peer.key, None) is not None:
            self.send({"op": "close", "key": peer.key})

    # -- from the worker ---------------------------------------------------------------

    async def _read(self) -> None:
        assert self._control is not None
        while (message := await self._control.receive()) is not None:
            try:
                self._handle(message)
            except Exception:
                logger.exception("worker %d: message %s failed", self.index, message.get("op"))

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "answer":
            future = self._requests.get(message["rid"])
            if future is not None and not future.done():
                future.set_result(message)
        elif op == "keyframe":
            feed = self.feeds.get(message["id"])
            if feed is not None:
                feed.stream.request_keyframe(message["reason"])
        elif op == "unused":
            feed = self.feeds.get(message["id"])
            if feed is not None and feed.refs == 0:
                self.drop_feed(feed)
        elif op == "published":
            peer = self.peers.get(message["key"])
            if peer is not None:
                parameters = decode_parameters(message["parameters"])
                handler = peer.on_published(message["mid"], message["kind"], parameters, peer)
                if handler is not None:
                    peer.route(message["mid"], message["up"], handler)
        elif op == "stats":
            self.stats = ForwardingStats(**message["stats"])
            self.reported_peers = message["peers"]
        else:
            logger.warning("worker %d: unknown message %s", self.index, op)

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
        handler = self.upstreams.get(ident)
        if handler is None:
            return
        packet = RtpPacket(
            payload_type=payload_type,
            marker=flags & MARKER,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=payload,
        )
        if flags & HAS_LEVEL:
            packet.extensions.audio_level = (False, level)
        handler(packet)

    async def _watch(self) -> None:
        assert self._process is not None
        code = await self._process.wait()
        if self.pool.stopping:
            self._shutdown()
            return
        logger.error(
            "SFU worker %d (pid %s) exited with code %s; its %d participants are told to reconnect",
            self.index,
            self.pid,
            code,
            len(self.peers),
        )
        self._shutdown()
        self.pool.lost(self)

    def _shutdown(self) -> None:
        self.alive = False
        for future in self._requests.values():
            if not future.done():
                future.set_exception(LessonError("internal"))
        for feed in list(self.feeds.values()):
            if feed in feed.stream.consumers:
                feed.stream.consumers.remove(feed)
        self.feeds.clear()
        self.upstreams.clear()
        if self._control is not None:
            self._control.close()
        for link in (self._media, self._audio):
            if link is not None:
                link.close()
        peers = list(self.peers.values())
        self.peers.clear()
        for peer in peers:
            try:
                peer.on_lost()
            except Exception:
                logger.exception("telling a participant of worker %d failed", self.index)

    async def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if self.alive and self._control is not None:
            self._control.send({"op": "stop"})
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.alive:
            self._shutdown()


class WorkerPool:
    """The worker processes of this SFU."""

    def __init__(self, config: SfuConfig, argv: Sequence[str], stats: ForwardingStats) -> None:
        self.config = config
        self.argv = list(argv)
        # The main process's own counters (relayed packets are counted there).
        self.stats = stats
        self.workers: list[WorkerHandle] = []
        self.restarts = 0
        self.stopping = False
        # Counters of workers that died, so totals never go backwards.
        self.retired = ForwardingStats()
        self._stream_ids: weakref.WeakKeyDictionary[PublishedStream, int] = (
            weakref.WeakKeyDictionary()
        )
        self._next_stream = itertools.count(1)
        self._next_key = itertools.count(1)
        self._restarting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for index in range(self.config.workers):
            handle = WorkerHandle(self, index)
            await handle.start()
            self.workers.append(handle)

    async def stop(self) -> None:
        self.stopping = True
        for task in list(self._restarting):
            task.cancel()
        for handle in self.workers:
            await handle.stop()

    def place(
        self, on_published: PublishedCallback, on_lost: Callable[[], None]
    ) -> RemotePeer | None:
        """A new remote peer on the least-loaded live worker; ``None`` if none is up."""
        alive = [w for w in self.workers if w.alive]
        if not alive:
            return None
        worker = min(alive, key=lambda w: (len(w.peers), w.index))
        peer = RemotePeer(worker, next(self._next_key), on_published, on_lost)
        worker.attach(peer)
        return peer

    def stream_id(self, stream: PublishedStream) -> int:
        stream_id = self._stream_ids.get(stream)
        if stream_id is None:
            stream_id = self._stream_ids[stream] = next(self._next_stream)
        return stream_id

    def lost(self, handle: WorkerHandle) -> None:
        add_stats(self.retired, handle.counters())
        handle.stats = ForwardingStats()
        task = asyncio.get_running_loop().create_task(self._restart(handle.index))
        self._restarting.add(task)
        task.add_done_callback(self._restarting.discard)

    async def _restart(self, index: int) -> None:
        await asyncio.sleep(RESTART_DELAY)
        if self.stopping:
            return
        handle = WorkerHandle(self, index)
        try:
            await handle.start()
        except Exception:
            logger.exception("SFU worker %d could not be restarted", index)
            return
        self.restarts += 1
        self.workers[index] = handle

    def totals(self) -> ForwardingStats:
        """Counters of the workers (alive and retired), to add to the main process's."""
        total = ForwardingStats()
        add_stats(total, self.retired)
        for handle in self.workers:
            if handle.alive:
                add_stats(total, handle.counters())
        return total

    def view(self) -> WorkersView:
        return WorkersView(
            totals=self.totals,
            states=lambda: [WorkerState(w.index, w.alive, len(w.peers)) for w in self.workers],
            restarts=lambda: self.restarts,
        )

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"index": w.index, "pid": w.pid, "alive": w.alive, "participants": len(w.peers)}
            for w in self.workers
        ]


def stream_parameters(stream: PublishedStream) -> dict[str, Any]:
    """A published stream's codecs, for the worker's :class:`~sfu.worker_process.RelayedStream`."""
    codecs = [
        {
            "mime": codec.mime_type,
            "rate": codec.clock_rate,
            "channels": 2 if codec.mime_type == "audio/opus" else None,
            "pt": pt,
            "parameters": _codec_parameters(codec),
        }
        for pt, codec in stream.codecs.items()
    ]
    return {"codecs": codecs, "ssrcs": []}


def _codec_parameters(codec: Codec) -> dict[str, Any]:
    if codec.mime_type == "video/h264" and len(codec.key) > 1:
        return {"packetization-mode": codec.key[1]}
    return {}


def _ice_server(server: Any) -> dict[str, Any]:
    return {"urls": list(server.urls), "username": server.username, "credential": server.credential}
