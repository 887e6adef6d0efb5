"""Load-generation helpers for the SFU benchmarks (not a benchmark by itself).

- :func:`start_process` runs a server as a subprocess on 127.0.0.1 and waits for it.
- :func:`cpu_seconds` reads a process's user + system CPU time from ``/proc``.
- :class:`PacketSink` turns a connected aiortc peer into a cheap receiver: it reads
  the cleartext SRTP header (SSRC, marker bit) of each packet straight off the socket
  and counts frames, without decrypting, so one process can stand in for many
  subscribers. It uses aioice internals; benchmark code only.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    return cpu_seconds(os.getpid())


@contextmanager
def start_process(argv: Sequence[str], health_url: str, log: Path) -> Iterator[int]:
    """Run ``argv`` until the block ends; yields its pid once ``health_url`` answers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(health_url, timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv} did not start") from None
                time.sleep(0.1)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sfu_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "sfu", "-c", str(config), "--log-level", "WARNING"]


class PacketSink:
    """Counts RTP packets and frames per SSRC arriving on one peer, without SRTP."""

    def __init__(self) -> None:
        self.packets = 0
        self.frames: dict[int, int] = defaultdict(int)
        self.installed = False

    def install(self, pc: RTCPeerConnection) -> bool:
        """Take over the peer's nominated ICE pair; False until ICE has nominated one."""
        transceivers = pc.getTransceivers()
        if not transceivers:
            return False
        connection = transceivers[0].receiver.transport.transport._connection
        pair = connection._nominated.get(1)
        if pair is None:
            return False
        protocol = pair.protocol
        original: Callable[[bytes | str, tuple[Any, ...]], None] = protocol.datagram_received
        frames = self.frames

        def datagram_received(data: bytes | str, addr: tuple[Any, ...]) -> None:
            if isinstance(data, bytes) and len(data) >= 12 and data[0] >= 128:
                second = data[1]
                if not 192 <= second <= 223:  # RTP, not RTCP
                    self.packets += 1
                    if second & 0x80:
                        frames[int.from_bytes(data[8:12], "big")] += 1
                    return
            original(data, addr)

        protocol.datagram_received = datagram_received  # type: ignore[method-assign]
        self.installed = True
        return True
