"""Pre-encoded media for tests and benchmarks: peers that publish without encoding.

A clip is encoded once (here, in the test or benchmark process, never in the SFU) and
replayed as ``av.Packet``s, which aiortc's sender only packetizes. A keyframe request
from the SFU restarts the clip at its keyframe, as a camera encoder would answer it.
Each packet may end in a *stamp* (magic + send time) so a receiver that does not decode
can measure latency; decoders are given unstamped clips.
"""

import asyncio
import fractions
import math
import random
import struct
import time
from array import array
from collections.abc import Sequence
from typing import Any, Final

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

VIDEO_CLOCK: Final = 90000
AUDIO_CLOCK: Final = 48000
STAMP_MAGIC: Final = b"PARTA\xff\x01\x02"
STAMP: Final = struct.Struct("!8sd")


def encode_vp8_clip(
    frames: int = 30,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    bitrate: int = 400_000,
    noise: bool = False,
) -> list[bytes]:
    """``frames`` VP8 frames of a moving pattern; only the first is a keyframe.

    ``noise`` makes every frame need the whole ``bitrate`` (a realistic packet count)."""
    rng = random.Random(7)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = width
    codec.height = height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.bit_rate = bitrate
    codec.options = {
        "g": str(frames * 10),
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
    }
    out: list[bytes] = []
    for i in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        x0 = (i * 8) % width
        row = bytearray(b"\x10" * width)
        row[x0 : x0 + 16] = b"\xeb" * len(row[x0 : x0 + 16])
        band = (i * 4) % height
        luma = b"".join(
            b"\x80" * width if band <= r < band + 8 else bytes(row) for r in range(height)
        )
        if noise:
            # A moving square of noise: content a camera encoder has to work for.
            patch = bytearray(luma)
            side = min(width, height) // 5
            left = (i * 12) % (width - side)
            top = (i * 7) % (height - side)
            for r in range(top, top + side):
                patch[r * width + left : r * width + left + side] = rng.randbytes(side)
            luma = bytes(patch)
        _fill(frame.planes[0], luma, width, height)
        _fill(frame.planes[1], bytes((128,)) * (width * height // 4), width // 2, height // 2)
        _fill(
            frame.planes[2], bytes((100 + i % 50,)) * (width * height // 4), width // 2, height // 2
        )
        frame.pts = i
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[:frames]


def encode_opus_clip(frames: int = 50, tone: float = 440.0, amplitude: float = 0.3) -> list[bytes]:
    """``frames`` 20 ms Opus packets of a tone (``amplitude`` 0 gives silence)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_CLOCK
    codec.layout = "stereo"
    codec.format = "s16"
    codec.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    codec.bit_rate = 32000
    samples = AUDIO_CLOCK // 50
    out: list[bytes] = []
    for i in range(frames + 5):
        pcm = array("h")
        for n in range(i * samples, (i + 1) * samples):
            value = int(amplitude * 32767 * math.sin(2 * math.pi * tone * n / AUDIO_CLOCK))
            pcm.extend((value, value))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = AUDIO_CLOCK
        frame.pts = i * samples
        out.extend(bytes(p) for p in codec.encode(frame))
    return out[:frames]


def _fill(plane: "av.video.plane.VideoPlane", data: bytes, width: int, height: int) -> None:
    """Copy tightly packed rows into a plane whose rows may be padded."""
    stride = plane.line_size
    if stride == width:
        plane.update(data)
        return
    padded = b"".join(
        data[r * width : (r + 1) * width] + bytes(stride - width) for r in range(height)
    )
    plane.update(padded)


def stamp(payload: bytes, at: float) -> bytes:
    return payload + STAMP.pack(STAMP_MAGIC, at)


def read_stamp(payload: bytes) -> float | None:
    if len(payload) < STAMP.size or payload[-STAMP.size : -STAMP.size + 8] != STAMP_MAGIC:
        return None
    return float(STAMP.unpack_from(payload, len(payload) - STAMP.size)[1])


class ClipTrack(MediaStreamTrack):
    """Replays pre-encoded frames in real time; restarts on a keyframe request.

    Like a camera encoder, it sends a keyframe only at the start and when asked: the
    loop goes back to the second frame, not the first (a video clip's first frame is
    its only keyframe).
    """

    def __init__(
        self,
        kind: str,
        frames: Sequence[bytes],
        fps: float,
        stamped: bool = False,
        audio_level: int | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames
        self._interval = 1.0 / fps
        self._clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
        self._step = int(self._clock / fps)
        self._stamped = stamped
        self._index = 0
        self._count = 0
        self._start: float | None = None
        self.keyframe_requests = 0
        # The ssrc-audio-level to announce (0 loud … 127 silent), for audio peers.
        self.audio_level = audio_level

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._index = 0

    async def recv(self) -> "av.Packet[Any]":
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count * self._interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self._frames[self._index]
        if self._stamped:
            data = stamp(data, time.perf_counter())
        packet = av.Packet(data)
        packet.pts = self._count * self._step
        packet.time_base = fractions.Fraction(1, self._clock)
        self._count += 1
        self._index += 1
        if self._index == len(self._frames):
            self._index = 1 if self.kind == "video" and len(self._frames) > 1 else 0
        return packet
