"""Running the real SFU for tests: a subprocess on 127.0.0.1 with the codec guard."""

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import yaml

from parta_common.roles import Role
from parta_common.tokens import Grants, grant_for, sign_media_token
from tests.harness import free_port

REPO = Path(__file__).resolve().parent.parent
SECRET = "test-secret-0123456789abcdef-0123456789"
ROOM = "!lesson:school.test"


@attrs.frozen
class RunningSfu:
    url: str
    process: "subprocess.Popen[bytes]"
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/health", timeout=5) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body

    def metrics(self) -> dict[str, float]:
        """Sample values by ``name{labels}`` from /metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_sfu(directory: Path, **overrides: Any) -> Iterator[RunningSfu]:
    port = free_port()
    config = {"token_secret": SECRET, "listen_port": port, **overrides}
    config_path = directory / "sfu.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = directory / "sfu.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.sfu_guard", "-c", str(config_path)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    sfu = RunningSfu(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if not sfu.alive():
                raise RuntimeError(f"the SFU exited: {sfu.log_text()}")
            try:
                sfu.health()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the SFU did not start: {sfu.log_text()}") from None
                time.sleep(0.1)
        yield sfu
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def token(
    user: str,
    role: Role = Role.STUDENT,
    room: str = ROOM,
    secret: str = SECRET,
    grants: Grants | None = None,
    ttl: int = 600,
    now: float | None = None,
) -> str:
    return sign_media_token(
        secret,
        room,
        f"@{user}:school.test",
        user.capitalize(),
        str(role),
        grants if grants is not None else grant_for(role),
        ttl=ttl,
        now=now,
    )
