"""A 100-person lesson through the SFU with workers=1 and workers=2, in one run.

``python -m bench.sfu_lesson100 [--participants 100] [--workers 1,2] [--seconds 10]
[--receivers 3]``

The lesson: a teacher publishing a camera (640x480, 30 fps), a screen (1280x720, 15
fps) and a microphone; 4 students speaking (camera 320x240 + microphone); everybody
else listens, receiving 6 video + 4 audio streams. Publishers are aiortc peers in this
process replaying pre-encoded clips (no encoder anywhere). Listeners are split over
``--receivers`` child processes; each listener is a real aiortc peer (ICE, DTLS,
SRTP keys) whose RTP is then counted straight off its UDP socket
(:class:`bench.sfu_load.SocketSink`: frames per SSRC from the cleartext header).

For each ``workers`` setting the same lesson is set up from scratch, and over the same
window it reports: CPU seconds per second of every SFU process (main, each worker),
of the receivers and of the publisher process; packets the SFU forwarded per second
and per SFU CPU-second (all SFU processes); the frame rate every listener received
(min / median over listeners of the worst camera, the screen); the machine's load.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc.sdp import SessionDescription

from bench.sfu_forwarding import (
    BROWSER_CONSENT_CHECKS,
    ROOM,
    SECRET,
    forwarded,
    lesson_token,
    metrics,
    wait_until,
)
from bench.sfu_load import REPO, SocketSink, cpu_seconds, free_port, sfu_argv, start_process
from parta_common.roles import Role
from sfu.client import LessonClient
from sfu.synthetic import ClipTrack, encode_opus_clip, encode_vp8_clip

SPEAKERS = 4
VIDEO_STREAMS = 2 + SPEAKERS  # teacher camera + screen + the speakers' cameras
AUDIO_STREAMS = 4  # teacher + the 3 loudest speakers
logger = logging.getLogger("bench.sfu_lesson100")


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
        body: dict[str, Any] = json.loads(r.read())
        return body


def udp_receive_drops() -> int:
    """The kernel's count of UDP datagrams dropped for a full receive buffer."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    for names, values in itertools.pairwise(lines):
        if names[0] == "Udp:" and values[0] == "Udp:" and "RcvbufErrors" in names:
            return int(values[names.index("RcvbufErrors")])
    return 0


# -- a receiver process ------------------------------------------------------------------


def _payload_kinds(sdp: str) -> dict[int, str]:
    kinds: dict[int, str] = {}
    for media in SessionDescription.parse(sdp).media:
        for codec in media.rtp.codecs:
            if codec.payloadType is not None:
                kinds[codec.payloadType] = media.kind
    return kinds


async def _child(url: str, first: int, count: int) -> None:
    """Listeners ``first`` .. ``first + count - 1``, driven by lines on stdin."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    clients: list[LessonClient] = []
    sinks: list[tuple[SocketSink, dict[int, str]]] = []

    async def add(i: int) -> None:
        client = LessonClient(url, ROOM, lesson_token(f"listener{i}", Role.STUDENT))
        clients.append(client)
        await client.connect(within=60)
        await client.start_media({}, decode=False)
        sink = SocketSink()
        pc = client.pc
        assert pc is not None
        await wait_until(lambda: sink.install(pc), within=120)
        sinks.append((sink, _payload_kinds(pc.localDescription.sdp)))

    for start in range(first, first + count, 8):
        await asyncio.gather(*(add(i) for i in range(start, min(start + 8, first + count))))

    def complete(sink: SocketSink, kinds: dict[int, str]) -> bool:
        video = [s for s, pt in sink.payload_types.items() if kinds.get(pt) == "video"]
        audio = [s for s, pt in sink.payload_types.items() if kinds.get(pt) == "audio"]
        return len(video) >= VIDEO_STREAMS and len(audio) >= AUDIO_STREAMS

    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: all(complete(s, k) for s, k in sinks), within=30)
    print(json.dumps({"ready": sum(complete(s, k) for s, k in sinks)}), flush=True)
    await stdin.readline()  # measure
    t0 = time.monotonic()
    frames0 = [dict(s.frames) for s, _ in sinks]
    received0 = sum(s.packets for s, _ in sinks)
    packets0 = [dict(s.packets_by_ssrc) for s, _ in sinks]
    await stdin.readline()  # report
    elapsed = time.monotonic() - t0
    listeners = []
    for (sink, kinds), f0, p0 in zip(sinks, frames0, packets0, strict=True):
        video = sorted(
            (n - f0.get(ssrc, 0)) / elapsed
            for ssrc, n in sink.frames.items()
            if kinds.get(sink.payload_types[ssrc]) == "video"
        )
        audio = sorted(
            (n - p0.get(ssrc, 0)) / elapsed
            for ssrc, n in sink.packets_by_ssrc.items()
            if kinds.get(sink.payload_types[ssrc]) == "audio"
        )
        listeners.append({"video_fps": video, "audio_pps": audio})
    received = sum(s.packets for s, _ in sinks) - received0
    print(json.dumps({"listeners": listeners, "received": received / elapsed}), flush=True)
    await stdin.readline()  # stop
    for client in clients:
        await client.close()


# -- the run ----------------------------------------------------------------------------


async def _line(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    while True:
        raw = await process.stdout.readline()
        if not raw:
            raise RuntimeError("a receiver process ended early")
        try:
            message: dict[str, Any] = json.loads(raw)
            return message
        except ValueError:
            continue


async def _tell(process: asyncio.subprocess.Process, word: str) -> None:
    assert process.stdin is not None
    process.stdin.write(word.encode() + b"\n")
    await process.stdin.drain()


async def measure(
    directory: Path, participants: int, workers: int, seconds: float, receivers: int
) -> dict[str, Any]:
    camera = encode_vp8_clip(frames=30, width=640, height=480, bitrate=800_000, noise=True)
    small = encode_vp8_clip(frames=30, width=320, height=240, bitrate=250_000, noise=True)
    screen = encode_vp8_clip(
        frames=30, width=1280, height=720, fps=15, bitrate=1_500_000, noise=True
    )
    speech = encode_opus_clip(frames=50)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = directory / f"sfu-{workers}.yaml"
    config.write_text(
        f"token_secret: {SECRET}\nlisten_port: {port}\nworkers: {workers}\n"
        "lesson:\n  participants: 1000\n"
    )
    listeners = participants - 1 - SPEAKERS
    load_before = os.getloadavg()
    log = directory / f"sfu-{workers}.log"
    with start_process(sfu_argv(config, "INFO"), f"{url}/health", log) as pid:
        worker_pids = [w["pid"] for w in health(url).get("workers", [])]
        publishers: list[LessonClient] = []
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
        publishers.append(teacher)
        for i in range(SPEAKERS):
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
            publishers.append(speaker)
        setup_started = time.monotonic()
        shares = [
            listeners // receivers + (1 if r < listeners % receivers else 0)
            for r in range(receivers)
        ]
        children: list[asyncio.subprocess.Process] = []
        first = 0
        for share in shares:
            if share == 0:
                continue
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.sfu_lesson100",
                    "--child",
                    url,
                    "--first",
                    str(first),
                    "--count",
                    str(share),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    cwd=REPO,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )
            )
            first += share
        try:
            ready = [(await _line(child))["ready"] for child in children]
            setup = time.monotonic() - setup_started
            await asyncio.sleep(2)
            sfu_pids = {"main": pid, **{f"worker{i}": p for i, p in enumerate(worker_pids)}}
            child_pids = [c.pid for c in children]
            before = metrics(url)
            cpu0 = {name: cpu_seconds(p) for name, p in sfu_pids.items()}
            receivers0 = sum(cpu_seconds(p) for p in child_pids)
            own0 = cpu_seconds(os.getpid())
            drops0 = udp_receive_drops()
            t0 = time.monotonic()
            for child in children:
                await _tell(child, "measure")
            await asyncio.sleep(seconds)
            for child in children:
                await _tell(child, "report")
            after = metrics(url)
            cpu1 = {name: cpu_seconds(p) for name, p in sfu_pids.items()}
            receivers1 = sum(cpu_seconds(p) for p in child_pids)
            own1 = cpu_seconds(os.getpid())
            drops1 = udp_receive_drops()
            elapsed = time.monotonic() - t0
            reports = [await _line(child) for child in children]
            alive = health(url).get("workers", [])
        finally:
            for child in children:
                if child.returncode is None:
                    await _tell(child, "stop")
            for child in children:
                try:
                    await asyncio.wait_for(child.wait(), 60)
                except TimeoutError:
                    child.kill()
                    await child.wait()
            for client in publishers:
                await client.close()
    load_after = os.getloadavg()
    per_listener = [listener for report in reports for listener in report["listeners"]]
    (directory / f"listeners-{workers}.json").write_text(json.dumps(per_listener))
    cores = {name: round((cpu1[name] - cpu0[name]) / elapsed, 3) for name in cpu0}
    sfu_cpu = sum(cpu1[name] - cpu0[name] for name in cpu0)
    packets = forwarded(after) - forwarded(before)
    relayed = {
        direction: after.get(f'parta_sfu_packets_relayed_total{{direction="{direction}"}}', 0.0)
        - before.get(f'parta_sfu_packets_relayed_total{{direction="{direction}"}}', 0.0)
        for direction in ("to_workers", "to_main")
    }
    worst_camera: list[float] = []
    screens: list[float] = []
    audio: list[float] = []
    complete = 0
    shapes: dict[str, int] = {}
    for listener in per_listener:
        shape = f"{len(listener['video_fps'])}v{len(listener['audio_pps'])}a"
        shapes[shape] = shapes.get(shape, 0) + 1
        video = listener["video_fps"]
        audio.extend(listener["audio_pps"])
        if len(video) >= VIDEO_STREAMS and len(listener["audio_pps"]) >= AUDIO_STREAMS:
            complete += 1
        if len(video) >= VIDEO_STREAMS:
            # The screen runs at 15 fps, the cameras at 30: the lowest rate is the screen.
            screens.append(video[-VIDEO_STREAMS])
            worst_camera.append(video[-VIDEO_STREAMS + 1])
        else:
            worst_camera.append(0.0)
            screens.append(video[0] if video else 0.0)
    return {
        "workers": workers,
        "participants": participants,
        "listeners": listeners,
        "receiver_processes": len(children),
        "listeners_ready": sum(ready),
        "setup_seconds": round(setup, 1),
        "seconds": round(elapsed, 2),
        "sfu_cores": cores,
        "sfu_cores_total": round(sfu_cpu / elapsed, 3),
        "receivers_cores": round((receivers1 - receivers0) / elapsed, 3),
        "publishers_cores": round((own1 - own0) / elapsed, 3),
        "packets_per_second": round(packets / elapsed),
        "packets_per_sfu_cpu_second": round(packets / sfu_cpu) if sfu_cpu > 0 else None,
        "packets_received_per_second": round(sum(r["received"] for r in reports)),
        # Datagrams the kernel dropped because a receiving socket's buffer was full
        # (machine-wide, UDP RcvbufErrors): a starved receiver shows here.
        "udp_receive_buffer_drops_per_second": round((drops1 - drops0) / elapsed),
        "relayed_per_second": {k: round(v / elapsed) for k, v in relayed.items()},
        "relay_dropped_per_second": round(
            (
                after.get("parta_sfu_packets_relay_dropped_total", 0.0)
                - before.get("parta_sfu_packets_relay_dropped_total", 0.0)
            )
            / elapsed
        ),
        "packets_unsent_per_second": round(
            (after["parta_sfu_packets_unsent_total"] - before["parta_sfu_packets_unsent_total"])
            / elapsed
        ),
        "listeners_receiving_everything": complete,
        # Listeners by how many video and audio streams reached them in the window.
        "streams_per_listener": shapes,
        "worst_camera_fps_min": round(min(worst_camera), 1) if worst_camera else None,
        "worst_camera_fps_median": round(statistics.median(worst_camera), 1)
        if worst_camera
        else None,
        "screen_fps_min": round(min(screens), 1) if screens else None,
        "screen_fps_median": round(statistics.median(screens), 1) if screens else None,
        "audio_pps_median": round(statistics.median(audio), 1) if audio else None,
        "workers_alive_after": all(w["alive"] for w in alive),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in load_after],
    }


async def run(
    participants: int, workers: list[int], seconds: float, receivers: int, logs: Path | None
) -> dict[str, Any]:
    results: dict[str, Any] = {"runs": []}
    with tempfile.TemporaryDirectory(prefix="parta-lesson100-") as tmp:
        directory = logs or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        for count in workers:
            row = await measure(directory, participants, count, seconds, receivers)
            print(json.dumps(row), flush=True)
            results["runs"].append(row)
    runs = results["runs"]
    if len(runs) >= 2 and runs[0]["packets_per_sfu_cpu_second"]:
        base, other = runs[0], runs[-1]
        results["ratios_last_over_first"] = {
            "packets_per_second": round(
                other["packets_per_second"] / max(base["packets_per_second"], 1), 2
            ),
            "packets_per_sfu_cpu_second": round(
                (other["packets_per_sfu_cpu_second"] or 0) / base["packets_per_sfu_cpu_second"], 2
            ),
            "sfu_cores_total": round(
                other["sfu_cores_total"] / max(base["sfu_cores_total"], 1e-9), 2
            ),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--workers", default="1,2", help="workers settings to compare")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--receivers", type=int, default=3, help="listener processes")
    parser.add_argument("--logs", type=Path, help="keep the SFU logs in this directory")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # As in bench.sfu_forwarding: a starved load generator must not drop its peers.
    aioice.ice.CONSENT_FAILURES = BROWSER_CONSENT_CHECKS
    if args.child:
        asyncio.run(_child(args.child, args.first, args.count))
        return
    settings = [int(n) for n in args.workers.split(",") if n]
    results = asyncio.run(run(args.participants, settings, args.seconds, args.receivers, args.logs))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
