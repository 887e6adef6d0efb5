"""SFU benchmarks: ``python -m bench.sfu_forwarding [--seconds 10] [--lesson 100]``.

In one run, on this machine, with the SFU and the baseline as separate processes whose
CPU time is read from ``/proc``:

1. *CPU per forwarded stream*: one 640x480 VP8 camera (pre-encoded, ~30 fps) to N
   subscribers, through the SFU and through aiortc's MediaRelay (decode once, encode
   per subscriber). The ratio is the figure that matters; both see the same load.
2. *Latency* publisher → subscriber, p50 / p95: frames carry their send time in a
   trailer; subscribers read it from the last packet of each frame (no decoding).
3. *A simulated lesson*: a teacher (camera 640x480, screen 1280x720 at 15 fps,
   microphone), 4 students speaking (camera 320x240, microphone) and listeners up to
   ``--lesson`` participants. Listeners are cheap packet sinks (they count frames from
   the SRTP headers). Reported: cores the SFU used, packets it sent per second and per
   CPU-second, and the frame rate every listener received per stream.

The load generator runs in this process, on the same machine: on a small machine it
competes with the SFU for CPU, which makes the SFU's figures pessimistic, not rosy.
"""

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

from bench.sfu_load import PacketSink, cpu_seconds, free_port, own_cpu_seconds, start_process
from parta_common.roles import Role
from parta_common.tokens import grant_for, sign_media_token
from sfu.aiortc_hooks import hook_receiver
from sfu.client import LessonClient, SlotCounter
from sfu.synthetic import ClipTrack, encode_opus_clip, encode_vp8_clip

# Missed consent checks the load generator tolerates: never gives up during a run.
BROWSER_CONSENT_CHECKS = 6 * 1000
SECRET = "benchmark-secret-0123456789abcdef-0123456789"
ROOM = "!bench:school.test"
logger = logging.getLogger("bench.sfu")


def lesson_token(user: str, role: Role) -> str:
    return sign_media_token(
        SECRET, ROOM, f"@{user}:bench", user, str(role), grant_for(role), ttl=3600
    )


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def forwarded(values: dict[str, float]) -> float:
    return sum(v for k, v in values.items() if k.startswith("parta_sfu_packets_forwarded_total"))


async def wait_until(condition: Any, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark setup did not converge")
        await asyncio.sleep(0.1)


def write_sfu_config(directory: Path, port: int, workers: int = 1) -> Path:
    path = directory / "sfu.yaml"
    path.write_text(
        f"token_secret: {SECRET}\nlisten_port: {port}\nworkers: {workers}\n"
        "lesson:\n  participants: 1000\n"
    )
    return path


def sfu_command(config: Path) -> list[str]:
    from bench.sfu_load import sfu_argv

    return sfu_argv(config)


async def measure_sfu_fanout(
    directory: Path, camera: Sequence[bytes], subscribers: int, seconds: float, workers: int = 1
) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_sfu_config(directory, port, workers)
    with start_process(sfu_command(config), f"{url}/health", directory / "sfu.log") as pid:
        teacher = LessonClient(url, ROOM, lesson_token("teacher", Role.TEACHER))
        await teacher.connect()
        await teacher.start_media({"camera": ClipTrack("video", camera, 30, stamped=True)})
        clients = [teacher]
        counters: list[SlotCounter] = []
        for i in range(subscribers):
            client = LessonClient(url, ROOM, lesson_token(f"s{i}", Role.STUDENT))
            await client.connect()
            await client.start_media({}, audio_slots=0, decode=False)
            clients.append(client)
            counters.extend(client.counters.values())
        await wait_until(lambda: sum(1 for c in counters if c.frames > 10) == subscribers)
        for counter in counters:
            counter.latencies.clear()
        frames0 = sum(c.frames for c in counters)
        before, cpu0, load0, t0 = (
            metrics(url),
            cpu_seconds(pid),
            own_cpu_seconds(),
            time.monotonic(),
        )
        await asyncio.sleep(seconds)
        after, cpu1, load1, t1 = metrics(url), cpu_seconds(pid), own_cpu_seconds(), time.monotonic()
        frames1 = sum(c.frames for c in counters)
        latencies = sorted(x for c in counters for x in c.latencies)
        for client in clients:
            await client.close()
    elapsed = t1 - t0
    cpu = cpu1 - cpu0
    packets = forwarded(after) - forwarded(before)
    return {
        "subscribers": subscribers,
        "seconds": round(elapsed, 2),
        "sfu_cpu_fraction": round(cpu / elapsed, 4),
        "sfu_cpu_per_stream": round(cpu / elapsed / subscribers, 5),
        "load_generator_cpu_fraction": round((load1 - load0) / elapsed, 3),
        "packets_per_second": round(packets / elapsed),
        "packets_per_cpu_second": round(packets / cpu) if cpu > 0 else None,
        "fps_per_subscriber": round((frames1 - frames0) / elapsed / subscribers, 1),
        "cpu_ms_per_delivered_frame": _per_frame(cpu, frames1 - frames0),
        "latency_ms_p50": round(1000 * _percentile(latencies, 0.50), 2) if latencies else None,
        "latency_ms_p95": round(1000 * _percentile(latencies, 0.95), 2) if latencies else None,
        "latency_samples": len(latencies),
    }


async def measure_relay_fanout(
    directory: Path, camera: Sequence[bytes], subscribers: int, seconds: float
) -> dict[str, Any]:
    import sys

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "bench.sfu_relay_baseline", "--port", str(port)]
    peers: list[RTCPeerConnection] = []
    counters: list[SlotCounter] = []
    with start_process(argv, f"{url}/health", directory / "relay.log") as pid:
        async with aiohttp.ClientSession() as http:
            publisher = RTCPeerConnection()
            peers.append(publisher)
            publisher.addTransceiver(ClipTrack("video", camera, 30), direction="sendonly")
            await _exchange(http, f"{url}/publish", publisher)
            for _ in range(subscribers):
                pc = RTCPeerConnection()
                peers.append(pc)
                transceiver = pc.addTransceiver("video", direction="recvonly")
                counter = SlotCounter()
                counters.append(counter)
                hook_receiver(transceiver.receiver, lambda parameters: None, counter.on_rtp)
                await _exchange(http, f"{url}/subscribe", pc)
            await wait_until(lambda: all(c.frames > 10 for c in counters))
            frames0 = sum(c.frames for c in counters)
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            frames1 = sum(c.frames for c in counters)
            packets = sum(c.packets for c in counters)
            for pc in peers:
                await pc.close()
    elapsed = t1 - t0
    return {
        "subscribers": subscribers,
        "seconds": round(elapsed, 2),
        "relay_cpu_fraction": round((cpu1 - cpu0) / elapsed, 4),
        "relay_cpu_per_stream": round((cpu1 - cpu0) / elapsed / subscribers, 5),
        "fps_per_subscriber": round((frames1 - frames0) / elapsed / subscribers, 1),
        "cpu_ms_per_delivered_frame": _per_frame(cpu1 - cpu0, frames1 - frames0),
        "packets_received_total": packets,
    }


async def _exchange(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(url, json={"sdp": pc.localDescription.sdp}) as response:
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))


async def measure_lesson(directory: Path, participants: int, seconds: float) -> dict[str, Any]:
    camera = encode_vp8_clip(frames=30, width=640, height=480, bitrate=800_000, noise=True)
    small = encode_vp8_clip(frames=30, width=320, height=240, bitrate=250_000, noise=True)
    screen = encode_vp8_clip(
        frames=30, width=1280, height=720, fps=15, bitrate=1_500_000, noise=True
    )
    speech = encode_opus_clip(frames=50)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_sfu_config(directory, port)
    speakers = 4
    listeners = participants - 1 - speakers
    clients: list[LessonClient] = []
    with start_process(sfu_command(config), f"{url}/health", directory / "lesson.log") as pid:
        teacher = LessonClient(url, ROOM, lesson_token("teacher", Role.TEACHER))
        await teacher.connect()
        await teacher.start_media(
            {
                "camera": ClipTrack("video", camera, 30),
                "screen": ClipTrack("video", screen, 15),
                "microphone": ClipTrack("audio", speech, 50, audio_level=35),
            },
            video_slots=0,
            audio_slots=0,
        )
        clients.append(teacher)
        for i in range(speakers):
            speaker = LessonClient(url, ROOM, lesson_token(f"speaker{i}", Role.STUDENT))
            await speaker.connect()
            await speaker.start_media(
                {
                    "camera": ClipTrack("video", small, 30),
                    "microphone": ClipTrack("audio", speech, 50, audio_level=25 + i),
                },
                video_slots=0,
                audio_slots=0,
            )
            clients.append(speaker)
        sinks: list[PacketSink] = []

        async def add_listener(i: int) -> None:
            listener = LessonClient(url, ROOM, lesson_token(f"listener{i}", Role.STUDENT))
            await listener.connect()
            await listener.start_media({}, decode=False)
            clients.append(listener)
            sink = PacketSink()
            sinks.append(sink)
            assert listener.pc is not None
            pc = listener.pc
            await wait_until(lambda: sink.install(pc), within=60)

        setup_started = time.monotonic()
        for start in range(0, listeners, 8):
            await asyncio.gather(
                *(add_listener(i) for i in range(start, min(start + 8, listeners)))
            )
        setup = time.monotonic() - setup_started
        streams_each = 2 + speakers + 1 + 3  # teacher camera + screen + 4 cameras; 4 audio
        try:
            await wait_until(lambda: all(len(s.frames) >= streams_each for s in sinks), within=30)
        except TimeoutError:
            logger.warning(
                "not every listener receives all %d streams: %s",
                streams_each,
                sorted(len(s.frames) for s in sinks),
            )
        await asyncio.sleep(2)
        snapshot0 = [dict(s.frames) for s in sinks]
        before, cpu0, load0, t0 = (
            metrics(url),
            cpu_seconds(pid),
            own_cpu_seconds(),
            time.monotonic(),
        )
        await asyncio.sleep(seconds)
        after, cpu1, load1, t1 = metrics(url), cpu_seconds(pid), own_cpu_seconds(), time.monotonic()
        elapsed = t1 - t0
        cameras: list[float] = []
        screens: list[float] = []
        worst_camera: list[float] = []
        complete = 0
        for sink, frames0 in zip(sinks, snapshot0, strict=True):
            rates = sorted((n - frames0.get(ssrc, 0)) / elapsed for ssrc, n in sink.frames.items())
            if len(rates) < streams_each:
                continue
            complete += 1
            # Every audio packet carries the marker bit (~50/s); video marks frames
            # (cameras ~30/s, the screen ~15/s): the lowest six rates are the video.
            video = rates[: 2 + speakers]
            screens.append(video[0])
            cameras.extend(video[1:])
            worst_camera.append(min(video[1:]))
        for client in clients:
            await client.close()
    cpu = cpu1 - cpu0
    packets = forwarded(after) - forwarded(before)
    return {
        "participants": participants,
        "listeners": listeners,
        "setup_seconds": round(setup, 1),
        "seconds": round(elapsed, 2),
        "sfu_cores": round(cpu / elapsed, 3),
        "load_generator_cores": round((load1 - load0) / elapsed, 3),
        "packets_per_second": round(packets / elapsed),
        "packets_per_cpu_second": round(packets / cpu) if cpu > 0 else None,
        "packets_unsent_per_second": round(
            (after["parta_sfu_packets_unsent_total"] - before["parta_sfu_packets_unsent_total"])
            / elapsed
        ),
        "listeners_receiving_everything": complete,
        "camera_fps_median": round(statistics.median(cameras), 1) if cameras else None,
        "camera_fps_p5": round(_percentile(sorted(cameras), 0.05), 1) if cameras else None,
        "camera_fps_worst_listener": round(min(worst_camera), 1) if worst_camera else None,
        "screen_fps_median": round(statistics.median(screens), 1) if screens else None,
        "machine_load_average": round(os.getloadavg()[0], 1),
    }


def _per_frame(cpu: float, frames: int) -> float | None:
    return round(1000 * cpu / frames, 4) if frames else None


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(
    seconds: float, fanouts: Sequence[int], lesson: int, skip_relay: bool, workers: int = 1
) -> dict[str, Any]:
    camera = encode_vp8_clip(frames=30, width=640, height=480, bitrate=800_000, noise=True)
    results: dict[str, Any] = {"fanout": []}
    with tempfile.TemporaryDirectory(prefix="parta-sfu-bench-") as tmp:
        directory = Path(tmp)
        for fanout in fanouts:
            row: dict[str, Any] = {
                "sfu": await measure_sfu_fanout(directory, camera, fanout, seconds)
            }
            if workers > 1:
                # The same fan-out with the subscribers on worker processes (one more hop).
                row["sfu_workers"] = await measure_sfu_fanout(
                    directory, camera, fanout, seconds, workers
                )
            if not skip_relay:
                row["relay"] = await measure_relay_fanout(directory, camera, fanout, seconds)
                sfu_per_stream = row["sfu"]["sfu_cpu_per_stream"]
                relay_per_stream = row["relay"]["relay_cpu_per_stream"]
                row["cpu_ratio_relay_over_sfu"] = (
                    round(relay_per_stream / sfu_per_stream, 1) if sfu_per_stream else None
                )
                # The relay may fall behind (fewer frames for less CPU): per frame is fair.
                sfu_frame = row["sfu"]["cpu_ms_per_delivered_frame"]
                relay_frame = row["relay"]["cpu_ms_per_delivered_frame"]
                row["cpu_per_frame_ratio_relay_over_sfu"] = (
                    round(relay_frame / sfu_frame, 1) if sfu_frame and relay_frame else None
                )
            print(json.dumps({"fanout": row}), flush=True)
            results["fanout"].append(row)
        if lesson:
            results["lesson"] = await measure_lesson(directory, lesson, seconds)
            print(json.dumps({"lesson": results["lesson"]}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--fanout", default="3,8", help="subscriber counts for the SFU/relay runs, comma-separated"
    )
    parser.add_argument("--lesson", type=int, default=100, help="participants; 0 skips")
    parser.add_argument("--skip-relay", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=1, help="also measure the fan-out with this many workers"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # aioice gives each consent check one try with a 0.5 s timeout and drops the
    # connection after 6 misses; browsers wait 30 s for any answer. With a hundred
    # peers in this process on a busy 2-core machine the strict rule cut publishers
    # off mid-run (a late answer counts as a miss), so the load generator is lenient.
    aioice.ice.CONSENT_FAILURES = BROWSER_CONSENT_CHECKS
    fanouts = [int(n) for n in args.fanout.split(",") if n]
    results = asyncio.run(run(args.seconds, fanouts, args.lesson, args.skip_relay, args.workers))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
