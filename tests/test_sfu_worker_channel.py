"""The local wire between SFU processes: media records, control lines, stream codecs."""

import asyncio
import socket

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
)

from sfu.forwarding import PublishedStream
from sfu.metrics import ForwardingStats
from sfu.worker_channel import (
    HAS_LEVEL,
    KEYFRAME,
    MARKER,
    SOCKET_BUFFER,
    ControlLink,
    MediaLink,
    decode_parameters,
    encode_parameters,
    media_pair,
)
from sfu.worker_pool import stream_parameters

Record = tuple[int, int, int, int, int, int, int, bytes]


async def test_records_cross_batched_and_arrive_whole() -> None:
    ours, theirs = media_pair()
    received: list[Record] = []
    arrived = asyncio.Event()

    def on_record(*record: object) -> None:
        received.append(record)  # type: ignore[arg-type]
        if len(received) == 300:
            arrived.set()

    sender = MediaLink(ours, lambda *r: None)
    receiver = MediaLink(theirs, on_record)
    try:
        payloads = [bytes([i % 256]) * (100 + i) for i in range(300)]
        for i, payload in enumerate(payloads):
            flags = (MARKER if i % 3 == 0 else 0) | (KEYFRAME if i == 0 else 0) | HAS_LEVEL
            sender.send(7, 96, flags, i % 128, (65530 + i) % 65536, i * 3000, 0xABCDEF01, payload)
        await asyncio.wait_for(arrived.wait(), 5)
        assert sender.records_sent == 300
        assert sender.records_dropped == 0
        assert [r[7] for r in received] == payloads
        first = received[0]
        assert first[:7] == (7, 96, MARKER | KEYFRAME | HAS_LEVEL, 0, 65530, 0, 0xABCDEF01)
        assert received[6][4] == 0  # the sequence number wrapped
    finally:
        sender.close()
        receiver.close()


async def test_a_full_channel_drops_instead_of_blocking() -> None:
    ours, theirs = media_pair()
    assert ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= SOCKET_BUFFER
    sender = MediaLink(ours, lambda *r: None)
    try:
        # Nobody reads ``theirs``: after a few hundred kB the kernel refuses.
        for _ in range(2000):
            sender.send(1, 96, 0, 0, 1, 1, 1, bytes(1000))
            sender.flush()
        assert sender.records_dropped > 0
        assert sender.records_sent > 0
    finally:
        sender.close()
        theirs.close()


async def test_control_lines_round_trip() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    left, right = await ControlLink.open(a), await ControlLink.open(b)
    try:
        sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n" * 200
        left.send({"op": "offer", "sdp": sdp, "sources": {"0": "camera"}})
        assert await right.receive() == {"op": "offer", "sdp": sdp, "sources": {"0": "camera"}}
        left.close()
        assert await right.receive() is None
    finally:
        right.close()


def test_a_streams_codecs_survive_the_trip() -> None:
    parameters = RTCRtpReceiveParameters(
        codecs=[
            RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
            ),
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90000,
                payloadType=102,
                parameters={"packetization-mode": "1", "profile-level-id": "42e01f"},
            ),
        ],
        encodings=[RTCRtpDecodingParameters(ssrc=1234, payloadType=96)],
    )
    back = decode_parameters(encode_parameters(parameters))
    assert [(c.mimeType, c.payloadType, c.parameters) for c in back.codecs] == [
        (c.mimeType, c.payloadType, c.parameters) for c in parameters.codecs
    ]
    assert [e.ssrc for e in back.encodings] == [1234]
    # What a worker rebuilds from the main process's stream: the same codecs by type.
    stats = ForwardingStats()
    original = PublishedStream("video", parameters, _Nothing(), 1, stats, 0.5)
    rebuilt = PublishedStream(
        "video", decode_parameters(stream_parameters(original)), _Nothing(), 1, stats, 0.5
    )
    assert rebuilt.codecs == original.codecs


class _Nothing:
    def send_rtp(self, data: bytes) -> bool:
        return False

    def send_rtcp(self, data: bytes) -> bool:
        return False
