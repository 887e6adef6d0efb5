"""A PostgreSQL cluster of one's own, to restart in the middle of work (#16 item 4).

The machine's shared cluster on 5432 serves every other test run, so a fault test never
restarts it: ``initdb`` makes a throwaway cluster in a temporary folder, listening on a
free port of 127.0.0.1 (trust authentication, no fsync), run as the ``postgres`` user
when started as root (``initdb`` refuses root).
"""

import contextlib
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from devtools.homeserver import Postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_postgres(*argv: str) -> None:
    command = shlex.join(argv)
    if os.geteuid() == 0:
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True)
    else:
        subprocess.run(argv, check=True, capture_output=True)


@attrs.define
class PrivateCluster:
    data: Path
    port: int

    @property
    def admin(self) -> Postgres:
        return Postgres(database="postgres", port=self.port)

    def _ctl(self, *args: str) -> None:
        _as_postgres(shutil.which("pg_ctl") or "pg_ctl", "-D", str(self.data), "-w", *args)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c max_connections=60"
        )
        self._ctl("-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self, down: float = 1.0) -> None:
        """Stop (closing every connection, as ``systemctl restart`` does), wait, start."""
        self.stop()
        time.sleep(down)
        self.start()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivateCluster]:
    top = Path(tempfile.mkdtemp(prefix="parta-pg-"))
    data = top / "data"
    try:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(top, entry.pw_uid, entry.pw_gid)
        initdb = shutil.which("initdb") or "initdb"
        _as_postgres(
            initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"
        )
        cluster = PrivateCluster(data, _free_port())
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(top, ignore_errors=True)
