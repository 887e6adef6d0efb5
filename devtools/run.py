"""``make run``: Parta on one machine, on SQLite unless ``PARTA_DATABASE`` names PostgreSQL.

Everything lives under ``var/``: the generated Synapse configuration, its database and
media, and the first operator's credentials. A second run reuses all of it. Ctrl-C
stops every process this started.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from devtools.homeserver import REPO_ROOT, Homeserver, HttpError, Postgres

VAR = Path(os.environ.get("PARTA_VAR", REPO_ROOT / "var"))
OPERATOR = "operator"


def _ensure_operator(hs: Homeserver) -> tuple[str, str]:
    """Create the first operator (a Synapse server admin) once; return its credentials."""
    path = VAR / "operator.txt"
    if path.exists():
        user, password = path.read_text().split("\n")[:2]
        return user, password
    password = secrets.token_urlsafe(12)
    try:
        hs.register_user(OPERATOR, password, admin=True, displayname="Оператор сервера")
    except HttpError as e:
        if e.status != 400:
            raise
        # The account exists (operator.txt was deleted): keep it, ask for a reset.
        print("The operator account exists already; its password is unchanged.")
        return OPERATOR, "<unchanged>"
    path.write_text(f"{OPERATOR}\n{password}\n")
    path.chmod(0o600)
    return OPERATOR, password


def main() -> int:
    dsn = os.environ.get("PARTA_DATABASE", "").strip()
    postgres = Postgres.from_dsn(dsn) if dsn else None
    hs = Homeserver(directory=VAR / "synapse", port=8008, postgres=postgres)
    hs.write_config()
    print(f"Parta: starting Synapse with the Parta module on {hs.base_url} ", end="")
    print(f"({'PostgreSQL ' + postgres.database if postgres else 'SQLite'}, data in {VAR})")

    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        synapse = hs.start()
        children.append(synapse)
        hs.wait_healthy(synapse, timeout=120)
        user, password = _ensure_operator(hs)
        print()
        print("Parta is running.")
        print(f"  Homeserver:      {hs.base_url}  (server name: {hs.server_name})")
        print(f"  Module version:  {hs.base_url}/_synapse/client/parta/v1/version")
        print(f"  Operator:        @{user}:{hs.server_name}  password: {password}")
        print(f"                   (kept in {VAR / 'operator.txt'})")
        print()
        print("Log in with Element Desktop or Element Web: choose «Edit» next to the")
        print(f"homeserver, enter {hs.base_url}, then the operator's name and password.")
        print(f"Logs: {hs.log_path}.  Stop with Ctrl-C.")
        sys.stdout.flush()
        while True:
            for child in children:
                code = child.poll()
                if code is not None:
                    print(f"A process exited with code {code}; stopping.\n{hs.tail_output()}")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in reversed(children):
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
