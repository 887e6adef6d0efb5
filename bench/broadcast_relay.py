"""Relay CPU for one 720p30 H.264 speaker, against decoding that same stream (the baseline).

The speaker runs in a child process (its encoding is not the relay's cost); the relay runs
here and its CPU time is read with ``time.process_time()`` over a steady window.
Also measured: the one VP8→H.264 transcode a VP8-only speaker costs.
``python -m bench.broadcast_relay [seconds] [--video-only] [--profile OUT.prof]``
(``--video-only``: just the video path and its baseline; ``--profile``: cProfile, in CPU
time, of the relay's video-only window, for ``python -m pstats``).
"""

import argparse
import asyncio
import cProfile
import fractions
import multiprocessing
import os
import random
import time
from typing import Any

import av
from aiortc import MediaStreamTrack

from bench.broadcast_common import BID, BenchRelay
from broadcast_relay import SERVICE_KEY

W, H, FPS = 1280, 720, 30


def encoded_clip(codec: str, frames: int) -> list[bytes]:
    """A moving 720p test picture, encoded once (a keyframe every second)."""
    enc: Any = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = W, H, "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.gop_size = FPS
    enc.bit_rate = 2_500_000
    if codec == "libx264":
        enc.options = {"preset": "veryfast", "tune": "zerolatency", "bf": "0", "nal-hrd": "cbr"}
    out = []
    noise = random.Random(7)
    for i in range(frames):
        frame = av.VideoFrame(W, H, "yuv420p")
        y = bytearray(frame.planes[0].buffer_size)
        stride = frame.planes[0].line_size
        # Camera-like detail: a moving textured band over a flat background.
        x0 = (i * 16) % (W - 480)
        for row in range(H // 4, 3 * H // 4):
            y[row * stride + x0 : row * stride + x0 + 480] = noise.randbytes(480)
        frame.planes[0].update(bytes(y))
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = i
        out += [bytes(p) for p in enc.encode(frame)]
    out += [bytes(p) for p in enc.encode(None)]
    return out


def speaker_process(url: str, token: str, seconds: float, mode: str) -> None:
    from tests.broadcast_support import ToneTrack, publish

    async def run() -> None:
        track = H264Clip(encoded_clip("libx264", 2 * FPS)) if mode != "audio" else None
        tone = ToneTrack(loud=True) if mode != "video" else None
        speaker = await publish(url, BID, token, track, tone)  # type: ignore[arg-type]
        await asyncio.sleep(seconds)
        await speaker.pc.close()

    asyncio.run(run())


class H264Clip(MediaStreamTrack):
    """Replays pre-encoded access units at 30 fps, looping (keyframe every second)."""

    kind = "video"

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__()
        self.clip = clip
        self.index = 0
        self.start: float | None = None

    def request_keyframe(self) -> None:
        pass  # the clip has a keyframe every second anyway

    async def recv(self) -> Any:
        if self.start is None:
            self.start = time.monotonic()
        await asyncio.sleep(max(0.0, self.start + self.index / FPS - time.monotonic()))
        packet = av.Packet(self.clip[self.index % len(self.clip)])
        packet.pts = packet.dts = self.index * 3000
        packet.time_base = fractions.Fraction(1, 90_000)
        self.index += 1
        return packet


def decode_baseline(seconds: float) -> float:
    """CPU seconds to decode ``seconds`` of the same 720p30 stream (what aiortc would do)."""
    clip = encoded_clip("libx264", 2 * FPS)
    dec: Any = av.CodecContext.create("h264", "r")
    dec.thread_count = 1
    start = time.process_time()
    for i in range(int(seconds * FPS)):
        for _ in dec.decode(av.Packet(clip[i % len(clip)])):
            pass
    return time.process_time() - start


def transcode_cost(seconds: float) -> float:
    """CPU seconds of the VP8→H.264 transcode for ``seconds`` of 720p30 VP8."""
    clip = encoded_clip("libvpx", FPS)
    dec: Any = av.CodecContext.create("vp8", "r")
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = W, H, "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0", "threads": "1"}
    frames = int(min(seconds, 5) * FPS)
    start = time.process_time()
    for i in range(frames):
        for frame in dec.decode(av.Packet(clip[i % len(clip)])):
            frame.pts = i
            for _ in enc.encode(frame):
                pass
    return (time.process_time() - start) * seconds / (frames / FPS)


async def relay_share(
    seconds: float, mode: str, profile: str | None = None
) -> tuple[float, float, int]:
    """(share of a core, video frames/s, segments) of the relay with one speaker."""
    relay = BenchRelay()
    await relay.start()
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(
        target=speaker_process, args=(relay.url, relay.speaker_token, seconds + 8, mode)
    )
    child.start()
    deadline = time.monotonic() + 30
    while BID not in relay.app[SERVICE_KEY].broadcasts or not relay.broadcast().writer.segments:
        if time.monotonic() > deadline:
            raise SystemExit("the speaker did not go live")
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # steady state
    frames0 = relay.broadcast().writer.video_packets
    profiler = cProfile.Profile(time.process_time) if profile else None
    if profiler is not None:
        profiler.enable()
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    frames = relay.broadcast().writer.video_packets - frames0
    segments = len(relay.broadcast().writer.all_segments)
    await relay.broadcast().end()
    child.join(30)
    await relay.stop()
    return cpu / wall, frames / wall, segments


async def main(seconds: float, video_only: bool, profile: str | None) -> None:
    load = f"{os.getloadavg()[0]:.2f}"
    if video_only:
        video, fps, _ = await relay_share(seconds, "video", profile)
        decode = decode_baseline(seconds) / seconds
        print(f"relay video path: {video * 100:.1f} % of a core ({fps:.1f} frames/s)")
        print(f"baseline, decoding that video: {decode * 100:.1f} % of a core")
        print(f"ratio relay video path / decode: {video / decode:.2f} (load average {load})")
        print(f"goal ≤ 5 % of a core: the video path alone {_met(video)}")
        return
    both, fps, segments = await relay_share(seconds, "both")
    video, _, _ = await relay_share(seconds, "video", profile)
    audio, _, _ = await relay_share(seconds, "audio")
    decode = decode_baseline(seconds) / seconds
    transcode = transcode_cost(seconds) / seconds
    clip = encoded_clip("libx264", 2 * FPS)
    kbps = sum(map(len, clip)) * 8 / 2 / 1000
    print(
        f"relay, one 720p30 H.264 speaker ({kbps:.0f} kbit/s) + Opus: {both * 100:.1f} % of a core"
    )
    print(f"  ({fps:.1f} video frames/s muxed, {segments} segments)")
    print(f"  video only: {video * 100:.1f} %, audio only (Opus→mix→AAC): {audio * 100:.1f} %")
    print(f"baseline, decoding that video (aiortc's default): {decode * 100:.1f} % of a core")
    print(f"ratio relay video path / decode: {video / decode:.2f}")
    print(f"VP8-only speaker, the one transcode (720p30): {transcode * 100:.0f} % of a core")
    print(f"load average at the start: {load}")
    print(f"goal ≤ 5 % of a core for one 720p H.264 speaker (with audio): {_met(both)}")


def _met(share: float) -> str:
    return f"{share * 100:.1f} %, {'met' if share <= 0.05 else 'missed'}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seconds", type=float, nargs="?", default=20.0)
    parser.add_argument("--video-only", action="store_true")
    parser.add_argument("--profile", help="write a cProfile of the video-only window here")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.video_only, args.profile))
