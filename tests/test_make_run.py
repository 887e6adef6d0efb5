"""`make run` stopped with Ctrl-C starts again at once.

Its port check must ask whether something *listens*, not whether a plain bind succeeds:
after a stop the ports sit in TIME-WAIT for up to a minute, and the servers themselves
bind with ``SO_REUSEADDR``.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devtools.homeserver import REPO_ROOT
from devtools.run import port_in_use
from tests.harness import free_port


def time_wait_ports() -> set[int]:
    """Local ports of IPv4 connections in TIME-WAIT, from the kernel's table."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "06":  # TCP_TIME_WAIT
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_listener_is_busy_a_port_in_time_wait_is_free() -> None:
    with socket.socket() as server:
        # As Twisted (Synapse) and asyncio (the SFU, the bot) listen.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_in_use(port)
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server closes first, as an HTTP server does
        client.recv(1)
        client.close()
    assert port in time_wait_ports()
    assert not port_in_use(port)


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_running(proc: subprocess.Popen[bytes], log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while "Parta is running." not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.3)


def ctrl_c(proc: subprocess.Popen[bytes]) -> int:
    """What Ctrl-C in the terminal does: SIGINT to the whole process group."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def test_make_run_stopped_starts_again_at_once(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PARTA_VAR": str(tmp_path / "var"),
        "PARTA_PORT": str(port),
        "PARTA_SFU_PORT": str(free_port()),
        "PARTA_BRIDGE_PORT": str(free_port()),
    }
    env.pop("PARTA_SFU_URL", None)
    env.pop("PARTA_DATABASE", None)
    first = start(env, tmp_path / "first.log")
    try:
        wait_running(first, tmp_path / "first.log")
        # A client as Element is one: the server closes, its port keeps a TIME-WAIT.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            assert r.status == 200
    finally:
        code = ctrl_c(first)
    assert code == 0, (tmp_path / "first.log").read_text()
    assert port in time_wait_ports()  # what made the old check refuse

    second = start(env, tmp_path / "second.log")
    try:
        wait_running(second, tmp_path / "second.log")
        log = (tmp_path / "second.log").read_text()
        assert "already in use" not in log
        # The same operator, kept in var/, not a new one.
        assert (tmp_path / "var" / "operator.txt").read_text().split("\n")[1] in log
    finally:
        code = ctrl_c(second)
    assert code == 0, (tmp_path / "second.log").read_text()
