"""The wire between the main SFU process and its workers (docs/sfu.md, "Several processes").

Two channels per worker, both ``socketpair``s inherited by the worker process:

- **media**, ``AF_UNIX`` ``SOCK_DGRAM``: RTP packets as records (:data:`RECORD` header +
  payload), several per datagram. Main → worker: a published stream's packets, already
  classified (keyframe start, audio level), by stream id. Worker → main: the packets of
  streams published by the worker's participants, by upstream id. A socketpair has no
  datagram queue limit, only the send buffer, kept small (:data:`SOCKET_BUFFER`, a few
  hundred milliseconds of a lesson's streams): a receiver that falls behind loses
  packets, as a router would, instead of forwarding seconds-old media later.
- **control**, ``AF_UNIX`` ``SOCK_STREAM``: JSON objects, one a line.

Nothing here decodes media.
"""

import asyncio
import base64
import json
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any, Final

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
)

logger = logging.getLogger(__name__)

# payload length, stream or upstream id, payload type, flags, audio level, seq, ts, ssrc
RECORD: Final = struct.Struct("!HIBBBHII")
MARKER: Final = 1
KEYFRAME: Final = 2
HAS_LEVEL: Final = 4
# A batch is sent once the loop turns or when it reaches this size.
BATCH_BYTES: Final = 16_000
SOCKET_BUFFER: Final = 256 << 10
# Bytes of records handled per wake-up (whole datagrams), so ICE, DTLS and signalling
# get their turns in between; the datagrams stay small, one per turn of the sender.
READ_BUDGET: Final = 64_000
CONTROL_LIMIT: Final = 16 << 20

RecordHandler = Callable[[int, int, int, int, int, int, int, bytes], None]


def media_pair() -> tuple[socket.socket, socket.socket]:
    """(main's end, worker's end) of a media channel, with generous buffers."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for sock in (ours, theirs):
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
    ours.setblocking(False)
    return ours, theirs


class MediaLink:
    """One end of a media channel: batches records out, hands records in to ``handler``."""

    def __init__(self, sock: socket.socket, handler: RecordHandler) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._handler = handler
        self._loop = asyncio.get_running_loop()
        self._chunks: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self.records_sent = 0
        self.records_dropped = 0
        self.closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    def send(
        self,
        ident: int,
        payload_type: int,
        flags: int,
        level: int,
        seq: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
    ) -> None:
        if self.closed:
            return
        self._chunks.append(
            RECORD.pack(len(payload), ident, payload_type, flags, level, seq, timestamp, ssrc)
        )
        self._chunks.append(payload)
        self._size += RECORD.size + len(payload)
        if self._size >= BATCH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._chunks or self.closed:
            return
        count = len(self._chunks) // 2
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        try:
            self._sock.send(data)
            self.records_sent += count
        except (BlockingIOError, InterruptedError):
            self.records_dropped += count
        except OSError as e:
            self.records_dropped += count
            logger.warning("media channel closed: %s", e)
            self.close()

    def _readable(self) -> None:
        handler = self._handler
        header = RECORD
        size = header.size
        budget = READ_BUDGET
        while budget > 0:
            try:
                data = self._sock.recv(1 << 17)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if not data:
                return
            budget -= len(data)
            offset = 0
            end = len(data)
            while offset + size <= end:
                length, ident, pt, flags, level, seq, ts, ssrc = header.unpack_from(data, offset)
                offset += size
                payload = data[offset : offset + length]
                offset += length
                try:
                    handler(ident, pt, flags, level, seq, ts, ssrc, payload)
                except Exception:
                    logger.exception("a relayed packet could not be handled")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


class ControlLink:
    """JSON messages, one a line, over a stream socket; ``handler`` gets each one in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.closed = False

    @classmethod
    async def open(cls, sock: socket.socket) -> "ControlLink":
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=CONTROL_LIMIT)
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        if self.closed or self._writer.is_closing():
            return
        self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def receive(self) -> dict[str, Any] | None:
        """The next message, or ``None`` once the other side is gone."""
        try:
            line = await self._reader.readline()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            return None
        if not line:
            return None
        message: dict[str, Any] = json.loads(line)
        return message

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._writer.close()


def encode_parameters(parameters: RTCRtpReceiveParameters) -> dict[str, Any]:
    """What a worker tells the main process about a stream it receives, and back."""
    return {
        "codecs": [
            {
                "mime": c.mimeType,
                "rate": c.clockRate,
                "channels": c.channels,
                "pt": c.payloadType,
                "parameters": dict(c.parameters),
            }
            for c in parameters.codecs
        ],
        "ssrcs": [e.ssrc for e in parameters.encodings],
    }


def decode_parameters(raw: dict[str, Any]) -> RTCRtpReceiveParameters:
    codecs = [
        RTCRtpCodecParameters(
            mimeType=c["mime"],
            clockRate=c["rate"],
            channels=c["channels"],
            payloadType=c["pt"],
            parameters=c["parameters"],
        )
        for c in raw["codecs"]
    ]
    first = (codecs[0].payloadType if codecs else None) or 0
    encodings = [RTCRtpDecodingParameters(ssrc=ssrc, payloadType=first) for ssrc in raw["ssrcs"]]
    return RTCRtpReceiveParameters(codecs=codecs, encodings=encodings)


def pack_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unpack_bytes(text: str) -> bytes:
    return base64.b64decode(text)
