"""The SFU's whole forward path for instruction counting (callgrind), not for timing.

``valgrind --tool=callgrind python -m bench._forward_instructions 30 1`` and ``... 30 4``:
the 640x480 VP8 clip, 1 or 4 times over, arrives SRTP-protected in a UDP socket and goes
through the SFU's burst reader (read, unprotect, parse, route) to N subscribers' slots
and batched writers (protect, UDP GSO), a frame per read, as ``bench.sfu_send_path``'s
*whole path* way. The difference of the two totals over the packets delivered in the
three extra passes is the instruction count per delivered packet: unlike CPU time it
does not move with the machine's load. (Counts include draining the receiving socket,
the same for any version of the SFU.) The clip is encoded in the same process; its
instructions cancel out between the two runs.
"""

import asyncio
import socket
import sys
from typing import Any

from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from bench.sfu_forwarding import _CountingWriter, _slot, _vp8_payloads
from bench.sfu_send_path import _fake_dtls, _frames, _protected, _session, _whole_path
from sfu.aiortc_hooks import RtpWriter
from sfu.forwarding import PublishedStream
from sfu.metrics import ForwardingStats
from sfu.synthetic import encode_vp8_clip


async def run(subscribers: int, passes: int) -> int:
    clip = encode_vp8_clip(frames=30, width=640, height=480, bitrate=800_000, noise=True)
    arriving = _protected(_frames(_vp8_payloads(clip)), passes)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sink.setblocking(False)
    stats = ForwardingStats()
    parameters = RTCRtpReceiveParameters(
        codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)]
    )
    stream = PublishedStream("video", parameters, _CountingWriter(), 1, stats, 1.0)
    for _ in range(subscribers):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.setblocking(False)
        writer: Any = RtpWriter(_fake_dtls(_session(), sock, sink.getsockname()), stats)
        _slot(stats, writer, stream)
    reader, inbound = _whole_path(stream)
    feeder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    delivered = 0
    for frame in arriving:
        for data in frame:
            feeder.sendto(data, inbound.getsockname())
        reader()
        await asyncio.sleep(0)
        while True:
            try:
                sink.recv(2048)
            except BlockingIOError:
                break
            delivered += 1
    return delivered


if __name__ == "__main__":
    subscribers, passes = int(sys.argv[1]), int(sys.argv[2])
    print(f"delivered {asyncio.run(run(subscribers, passes))} packets")
