"""Load-generation helpers for the SFU benchmarks (not a benchmark by itself).

- :func:`start_process` runs a server as a subprocess on 127.0.0.1 and waits for it.
- :func:`cpu_seconds` reads a process's user + system CPU time from ``/proc``.
- :class:`PacketSink` turns a connected aiortc peer into a cheap receiver: it reads
  the cleartext SRTP header (SSRC, marker bit) of each packet and counts frames,
  without decrypting or depacketizing, so one process can stand in for many
  subscribers. It uses aiortc internals; benchmark code only.
- :class:`SocketSink` does the same one layer lower and cheaper still: it counts RTP
  straight from the UDP socket's datagram callback (before aioice's queue and the
  DTLS transport's task), and hands STUN, DTLS and RTCP on as usual.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator, Sequence
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


def sfu_argv(config: Path, log_level: str = "WARNING") -> list[str]:
    return profiled_argv("sfu", ["-c", str(config), "--log-level", log_level])


def profiled_argv(module: str, args: Sequence[str]) -> list[str]:
    """``python -m module args``, under cProfile if ``PARTA_BENCH_PROFILE`` names a directory.

    The profile (CPU time) is written to ``$PARTA_BENCH_PROFILE/<module>-<n>.prof`` when
    the process exits (``bench/_profiled.py``).
    """
    directory = os.environ.get("PARTA_BENCH_PROFILE")
    if not directory:
        return [sys.executable, "-m", module, *args]
    Path(directory).mkdir(parents=True, exist_ok=True)
    n = len(list(Path(directory).glob(f"{module}-*.prof")))
    out = Path(directory) / f"{module}-{n}.prof"
    return [sys.executable, "-m", "bench._profiled", str(out), "-m", module, *args]


class _ClearHeaderSession:
    """Stands in for the receive SRTP session: RTP is left encrypted (its header is clear)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def unprotect(self, data: bytes) -> bytes:
        return data

    def unprotect_rtcp(self, data: bytes) -> bytes:
        data = self._session.unprotect_rtcp(data)
        return bytes(data)


class PacketSink:
    """Counts RTP packets and frames per SSRC arriving on one peer, without decrypting.

    Once the peer's DTLS is up, its receive path skips SRTP for RTP packets and counts
    them from the cleartext header (SSRC, marker bit) instead of handing them to
    aiortc's receivers; RTCP and everything else go their usual way.
    """

    def __init__(self) -> None:
        self.packets = 0
        self.frames: dict[int, int] = defaultdict(int)
        self.installed = False

    def install(self, pc: RTCPeerConnection) -> bool:
        """Take over the peer's receive path; False until its DTLS is connected."""
        transceivers = pc.getTransceivers()
        if not transceivers:
            return False
        dtls = transceivers[0].receiver.transport
        if dtls.state != "connected":
            return False
        frames = self.frames

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            if len(data) >= 12:
                self.packets += 1
                if data[1] & 0x80:
                    frames[int.from_bytes(data[8:12], "big")] += 1

        dtls._rx_srtp = _ClearHeaderSession(dtls._rx_srtp)  # type: ignore[assignment]
        dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
        self.installed = True
        return True


class SocketSink:
    """Counts RTP frames per SSRC as datagrams arrive on one peer's ICE sockets."""

    def __init__(self) -> None:
        self.packets = 0
        self.frames: dict[int, int] = defaultdict(int)
        self.packets_by_ssrc: dict[int, int] = defaultdict(int)
        self.payload_types: dict[int, int] = {}
        self.installed = False

    def install(self, pc: RTCPeerConnection) -> bool:
        """Take over RTP on the peer's sockets; False until its DTLS is connected."""
        transceivers = pc.getTransceivers()
        if not transceivers:
            return False
        dtls = transceivers[0].receiver.transport
        if dtls.state != "connected":
            return False
        frames = self.frames
        by_ssrc = self.packets_by_ssrc
        payload_types = self.payload_types
        for protocol in dtls.transport._connection._protocols:
            original = protocol.datagram_received

            def datagram_received(data: bytes, addr: Any, original: Any = original) -> None:
                # RTP: version 2 and a payload type outside RTCP's 200-204 (64-95 & 0x7f).
                if len(data) >= 12 and 128 <= data[0] <= 191 and not 64 <= data[1] & 0x7F <= 95:
                    self.packets += 1
                    ssrc = int.from_bytes(data[8:12], "big")
                    by_ssrc[ssrc] += 1
                    if data[1] & 0x80:
                        frames[ssrc] += 1
                    payload_types[ssrc] = data[1] & 0x7F
                    return
                original(data, addr)

            protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]
        self.installed = True
        return True
