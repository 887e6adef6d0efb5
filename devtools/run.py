"""``make run``: Parta on one machine, on SQLite unless ``PARTA_DATABASE`` names PostgreSQL.

``make run-workers`` (``--workers``): Synapse as main + client reader + event persister +
federation sender over Redis (``PARTA_REDIS``, default 127.0.0.1:6379) and PostgreSQL
(``PARTA_DATABASE``, default the database ``parta_workers`` on 127.0.0.1:5432, created if
missing), behind the development router on ``PARTA_PORT``; the processes' own ports
start at ``PARTA_WORKER_PORTS`` (8011). The Makefile keeps its data in ``var-workers/``.

Everything lives under ``var/`` (``PARTA_VAR`` moves it): the generated Synapse
configuration, its database and media, the other processes' configs, and the first
operator's credentials. A second run reuses all of it. Ctrl-C stops every process this
started. ``PARTA_PORT`` moves Synapse off 8008.
"""

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import attrs

from devtools.homeserver import REPO_ROOT, Homeserver, HttpError, Postgres, Turn, turn_secret
from devtools.workers import Topology, ports_needed, standard_topology

VAR = Path(os.environ.get("PARTA_VAR", REPO_ROOT / "var"))
PORT = int(os.environ.get("PARTA_PORT", "8008"))
OPERATOR = "operator"


@attrs.frozen
class Service:
    """A process ``make run`` starts after Synapse and waits for."""

    name: str
    argv: Sequence[str]
    health_url: str
    # Lines printed once the service is healthy.
    describe: Callable[[], list[str]] = lambda: []


def services(hs: Homeserver) -> list[Service]:
    """The processes beside Synapse; each part adds itself here as it appears."""
    return [_sfu_service(), _bridge_service(hs)]


SFU_PORT = int(os.environ.get("PARTA_SFU_PORT", "8090"))
# Where browsers reach the SFU (the lesson page and its WebSocket).
SFU_PUBLIC_URL = os.environ.get("PARTA_SFU_URL", f"http://127.0.0.1:{SFU_PORT}/")


def media_token_secret() -> str:
    """The HS256 secret the module signs media tokens with and the SFU checks (var/)."""
    path = VAR / "media-token-secret.txt"
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _sfu_service() -> Service:
    config = VAR / "sfu.yaml"
    url = f"http://127.0.0.1:{SFU_PORT}"
    config.write_text(
        f"token_secret: {media_token_secret()!r}\n"
        f"listen_host: 127.0.0.1\nlisten_port: {SFU_PORT}\npublic_url: {url!r}\n"
        f"homeserver_url: 'http://127.0.0.1:{PORT}'\ndata_dir: '{VAR}/sfu'\n"
        f"broadcast: {{homeserver_url: 'http://127.0.0.1:{PORT}', data_dir: '{VAR}/broadcasts'}}\n"
    )
    return Service(
        name="sfu",
        argv=[sys.executable, "-m", "sfu", "-c", str(config)],
        health_url=f"{url}/health",
        describe=lambda: [f"SFU (lessons):   {url}  (metrics: {url}/metrics)"],
    )


def module_config() -> dict[str, Any]:
    """The Parta module's config for `make run`: lessons on, with the generated secret."""
    return {
        "media": {
            "enabled": True,
            "token_secret": media_token_secret(),
            "sfu_public_url": SFU_PUBLIC_URL,
        }
    }


# TURN for Element's 1:1 calls: off unless PARTA_TURN_URI names a coturn (docs/calls.md).
TURN_URI = os.environ.get("PARTA_TURN_URI", "").strip()
TURN_SECRET_FILE = VAR / "secrets" / "turn-secret.txt"


def turn() -> Turn | None:
    """Synapse's TURN settings, with the secret coturn must share (var/secrets/)."""
    if not TURN_URI:
        return None
    turn_secret(TURN_SECRET_FILE)
    return Turn(uris=(TURN_URI,), secret_file=TURN_SECRET_FILE)


def describe_turn(settings: Turn | None) -> str:
    if settings is None:
        return (
            "Calls (1:1):     TURN off: on loopback Element's calls connect directly; "
            "set PARTA_TURN_URI (docs/calls.md)"
        )
    return f"Calls (1:1):     TURN {settings.uris[0]}  (secret: {settings.secret_file})"


BRIDGE_PORT = int(os.environ.get("PARTA_BRIDGE_PORT", "29340"))


def _bridge_files() -> tuple[Path, Path]:
    """The bot's config and appservice registration in var/bridge (tokens made once)."""
    from bridge.local import write_config

    return write_config(
        VAR / "bridge",
        f"http://127.0.0.1:{PORT}",
        "localhost",
        BRIDGE_PORT,
        database=f"sqlite:{VAR / 'bridge' / 'bridge.db'}",
    )


def _bridge_service(hs: Homeserver) -> Service:
    config, _ = _bridge_files()
    return Service(
        name="bridge",
        argv=[sys.executable, "-m", "bridge", "-c", str(config)],
        health_url=f"http://127.0.0.1:{BRIDGE_PORT}/health",
        describe=lambda: [
            f"School bot:      @parta-bot:{hs.server_name}  (write «помощь» to it in a DM)"
        ],
    )


def write_operator_file(path: Path, user: str, password: str) -> None:
    """``var/operator.txt``: the account's name (localpart) on the first line, its password
    on the second (the README's shell blocks read it so)."""
    path.write_text(f"{user}\n{password}\n")
    path.chmod(0o600)


def read_operator_file(path: Path) -> tuple[str, str]:
    user, password = path.read_text().split("\n")[:2]
    return user, password


def _ensure_operator(hs: Homeserver) -> tuple[str, str]:
    """Create the first operator (a Synapse server admin) once; return its credentials."""
    path = VAR / "operator.txt"
    if path.exists():
        return read_operator_file(path)
    password = secrets.token_urlsafe(12)
    try:
        hs.register_user(OPERATOR, password, admin=True, displayname="Оператор сервера")
    except HttpError as e:
        if e.status != 400:
            raise
        # The account exists (operator.txt was deleted): keep it.
        print("The operator account exists already; its password is unchanged.")
        return OPERATOR, "<unchanged>"
    write_operator_file(path, OPERATOR, password)
    return OPERATOR, password


def _wait_http(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{name} was not healthy at {url} in {timeout} s")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port``.

    The bind uses ``SO_REUSEADDR``, as Synapse, the SFU and the bot do: a port whose last
    connections sit in TIME-WAIT (a Parta stopped a moment ago) is free, a listener is not.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _busy_ports(ports: Sequence[int]) -> list[int]:
    """Ports on 127.0.0.1 something else already listens on."""
    return [port for port in ports if port_in_use(port)]


WORKER_PORTS = int(os.environ.get("PARTA_WORKER_PORTS", "8011"))
WORKERS_DATABASE = "postgresql://postgres@127.0.0.1:5432/parta_workers"


def ensure_database(postgres: Postgres) -> None:
    """Create ``postgres.database`` (UTF8, C collation, as Synapse wants) if it is missing."""
    import psycopg2

    admin = attrs.evolve(postgres, database="postgres")
    conn = psycopg2.connect(**admin.connect_args())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (postgres.database,))
            if cur.fetchone() is None:
                cur.execute(
                    f"CREATE DATABASE \"{postgres.database}\" ENCODING 'UTF8' "
                    "LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0"
                )
                print(f"Created the PostgreSQL database {postgres.database}.")
    finally:
        conn.close()


def workers_topology() -> Topology:
    host, _, port = os.environ.get("PARTA_REDIS", "127.0.0.1:6379").rpartition(":")
    ports = range(WORKER_PORTS, WORKER_PORTS + ports_needed())
    topology = standard_topology(list(ports), redis_port=int(port))
    return attrs.evolve(topology, redis_host=host or "127.0.0.1")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Parta on this machine (make run).")
    parser.add_argument(
        "--workers",
        action="store_true",
        help="Synapse as main + workers over Redis and PostgreSQL (make run-workers)",
    )
    args = parser.parse_args(argv)
    topology = workers_topology() if args.workers else None
    ports = [PORT, SFU_PORT, BRIDGE_PORT]
    if topology is not None:
        ports += [topology.main_http_port, topology.main_replication_port]
        ports += [w.port for w in topology.workers]
    busy = _busy_ports(ports)
    if busy:
        # Otherwise a Parta already running would answer the health checks of this one.
        print(
            f"Port {', '.join(map(str, busy))} on 127.0.0.1 is already in use: is Parta (or "
            "another server) already running? Stop it first, or choose other ports with "
            "PARTA_PORT, PARTA_SFU_PORT, PARTA_BRIDGE_PORT.",
            file=sys.stderr,
        )
        return 1
    dsn = os.environ.get("PARTA_DATABASE", "").strip()
    if topology is not None and not dsn:
        dsn = WORKERS_DATABASE
    postgres = Postgres.from_dsn(dsn) if dsn else None
    if topology is not None and postgres is not None:
        ensure_database(postgres)
    _, registration = _bridge_files()
    hs = Homeserver(
        directory=VAR / "synapse",
        port=PORT,
        postgres=postgres,
        module_config=module_config(),
        app_service_files=(registration,),
        turn=turn(),
        topology=topology,
    )
    hs.write_config()
    print(f"Parta: starting Synapse with the Parta module on {hs.base_url} ", end="")
    print(f"({'PostgreSQL ' + postgres.database if postgres else 'SQLite'}, data in {VAR})")
    if topology is not None:
        print(
            f"  as main + {', '.join(w.name for w in topology.workers)} over Redis "
            f"{topology.redis_host}:{topology.redis_port}, behind the development router"
        )

    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        synapse = hs.start()
        children.append(("Synapse", synapse))
        if topology is not None:
            start_workers(hs, topology, synapse, children)
        hs.wait_healthy(synapse, timeout=120)
        user, password = _ensure_operator(hs)
        described: list[str] = []
        for service in services(hs):
            log = (VAR / f"{service.name}.log").open("ab")
            proc = subprocess.Popen(
                list(service.argv), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            children.append((service.name, proc))
            _wait_http(service.health_url, proc, service.name)
            described += service.describe()
        print()
        print("Parta is running.")
        print(f"  Homeserver:      {hs.base_url}  (server name: {hs.server_name})")
        print(f"  Module version:  {hs.base_url}/_synapse/client/parta/v1/version")
        if topology is not None:
            print(f"  Workers:         main :{topology.main_http_port}, ", end="")
            print(", ".join(f"{w.name} :{w.port}" for w in topology.workers))
            print(f"                   (routing: devtools/workers.py; logs {hs.directory}/*.log)")
        for line in described:
            print(f"  {line}")
        print(f"  {describe_turn(hs.turn)}")
        print(f"  Operator:        @{user}:{hs.server_name}  password: {password}")
        print(f"                   (kept in {VAR / 'operator.txt'})")
        print()
        print("Log in with Element Desktop or Element Web: choose «Edit» next to the")
        print(f"homeserver, enter {hs.base_url}, then the operator's name and password.")
        print(f"Logs: {hs.log_path} and {VAR}/*.log.  Stop with Ctrl-C.")
        sys.stdout.flush()
        while True:
            for name, child in children:
                code = child.poll()
                if code is not None:
                    print(f"{name} exited with code {code}; stopping.\n{hs.tail_output()}")
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        for _, child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for _, child in reversed(children):
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


def start_workers(
    hs: Homeserver,
    topology: Topology,
    synapse: subprocess.Popen[bytes],
    children: list[tuple[str, subprocess.Popen[bytes]]],
) -> None:
    """After main answers (it migrates the database): the workers, then the router."""
    _wait_http(f"http://127.0.0.1:{topology.main_http_port}/health", synapse, "Synapse", 180)
    for worker in topology.workers:
        children.append((worker.name, hs.start_worker(worker.name)))
    for worker in topology.workers:
        _wait_http(worker.health_url, dict(children)[worker.name], worker.name, 180)
    router = hs.start_router()
    children.append(("router", router))
    _wait_http(f"{hs.base_url}/_parta_router/health", router, "router")


if __name__ == "__main__":
    sys.exit(main())
