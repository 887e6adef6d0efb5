"""Debian's coturn on loopback, as ``docker-compose.yml`` runs it: TURN REST API secret."""

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from devtools.homeserver import turn_secret


def coturn_config(port: int, secret_file: Path, directory: Path) -> str:
    """A turnserver.conf for loopback; the secret comes from ``secret_file``."""
    return "\n".join(
        [
            f"listening-port={port}",
            "listening-ip=127.0.0.1",
            "relay-ip=127.0.0.1",
            # Both peers' relay addresses are on 127.0.0.1: allow them as peers.
            "allow-loopback-peers",
            "use-auth-secret",
            f"static-auth-secret={turn_secret(secret_file)}",
            "realm=localhost",
            "no-tls",
            "no-dtls",
            "no-cli",
            f"userdb={directory / 'turndb'}",
            f"pidfile={directory / 'turnserver.pid'}",
            f"log-file={directory / 'turnserver.log'}",
            "simple-log",
            "",
        ]
    )


@contextlib.contextmanager
def running_coturn(directory: Path, port: int, secret_file: Path) -> Iterator[None]:
    """``turnserver`` on 127.0.0.1:``port`` until the block ends (it must be installed)."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise RuntimeError(
            "coturn is not installed: `make test` installs it (apt-get install coturn)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "turnserver.conf"
    conf.write_text(coturn_config(port, secret_file, directory))
    conf.chmod(0o600)
    out = (directory / "turnserver.out").open("ab")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited with {proc.returncode}; see {directory}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"turnserver did not listen on {port}; see {directory}")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
