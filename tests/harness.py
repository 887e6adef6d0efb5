"""The integration-test harness: a real Synapse with Parta, real users, real clients.

The homeserver runs on PostgreSQL when PostgreSQL answers on 127.0.0.1:5432 (a fresh
database per run, UTF8 with C collation, dropped afterwards), otherwise on SQLite.
``PARTA_TEST_DB=sqlite`` or ``=postgres`` forces one; ``postgres`` then fails loudly
when PostgreSQL is not there.
"""

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
from nio import AsyncClient

from devtools.homeserver import Homeserver, HttpError, Postgres, Turn, http_json_status
from devtools.workers import ports_needed, standard_topology
from tests import openapi_check

PG_ADMIN = Postgres(database="postgres")

# Synapse settings of every test homeserver (a test's ``extra`` may override them).
# Passwords hashed with bcrypt's fewest rounds, as in Synapse's own tests: at Synapse's
# default of 12 each of the suite's registrations and password logins cost a quarter of
# a second of a core (a built school alone registers eight people). No test is about the
# hash's cost; ``make run`` and deployments keep Synapse's default.
TEST_SYNAPSE: dict[str, Any] = {"bcrypt_rounds": 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def postgres_answers() -> bool:
    import psycopg2

    try:
        psycopg2.connect(**PG_ADMIN.connect_args(), connect_timeout=3).close()
    except psycopg2.OperationalError:
        return False
    return True


def create_database(name: str, admin: Postgres = PG_ADMIN) -> Postgres:
    """A new database ``name`` on ``admin``'s cluster (the shared one unless told)."""
    import psycopg2

    conn = psycopg2.connect(**admin.connect_args())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            f'CREATE DATABASE "{name}" '
            "ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0"
        )
    conn.close()
    return attrs.evolve(admin, database=name)


def drop_database(name: str, admin: Postgres = PG_ADMIN) -> None:
    import psycopg2

    conn = psycopg2.connect(**admin.connect_args())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def choose_backend() -> str:
    forced = os.environ.get("PARTA_TEST_DB", "").strip().lower()
    if forced in ("sqlite", "postgres"):
        return forced
    return "postgres" if postgres_answers() else "sqlite"


@attrs.define
class User:
    user_id: str
    localpart: str
    password: str
    access_token: str
    device_id: str


@attrs.define
class RunningHomeserver:
    """A started Synapse and what tests need to talk to it."""

    hs: Homeserver
    proc: subprocess.Popen[bytes]
    backend: str
    # Workers, the router and Redis of a worker topology (name, process), started after
    # main and stopped before it.
    others: list[tuple[str, subprocess.Popen[bytes]]] = attrs.Factory(list)

    @property
    def base_url(self) -> str:
        return self.hs.base_url

    @property
    def server_name(self) -> str:
        return self.hs.server_name

    @property
    def api_url(self) -> str:
        return f"{self.hs.base_url}/_synapse/client/parta/v1"

    def register(
        self, prefix: str = "user", admin: bool = False, displayname: str | None = None
    ) -> User:
        """A new user with a unique name, logged in once (the registration's session)."""
        localpart = f"{prefix}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        resp = self.hs.register_user(localpart, password, admin=admin, displayname=displayname)
        return User(
            user_id=resp["user_id"],
            localpart=localpart,
            password=password,
            access_token=resp["access_token"],
            device_id=resp["device_id"],
        )

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """A synchronous JSON request to the homeserver (``path`` from the root).

        Module API answers are recorded for the OpenAPI check (tests/openapi_check.py).
        """
        url = f"{self.base_url}{path}"
        try:
            status, answer = http_json_status(method, url, body, token)
        except HttpError as e:
            openapi_check.record(method, url, e.status, e.body)
            raise
        openapi_check.record(method, url, status, answer)
        return answer

    def sql(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        """Write straight into the homeserver's database (``?`` placeholders), as a row
        from an older version or a hand-edited table would be."""
        if self.hs.postgres is not None:
            import psycopg2

            conn = psycopg2.connect(**self.hs.postgres.connect_args())
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(statement.replace("?", "%s"), args)
            finally:
                conn.close()
        else:
            import sqlite3

            lite = sqlite3.connect(self.hs.directory / "homeserver.db")
            try:
                with lite:
                    lite.execute(statement, args)
            finally:
                lite.close()

    def rows(self, statement: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read from the homeserver's database (``?`` placeholders): what Synapse keeps
        beside what its APIs show (the user directory's tables)."""
        if self.hs.postgres is not None:
            import psycopg2

            conn = psycopg2.connect(**self.hs.postgres.connect_args())
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(statement.replace("?", "%s"), args)
                    return [tuple(r) for r in cur.fetchall()]
            finally:
                conn.close()
        import sqlite3

        lite = sqlite3.connect(self.hs.directory / "homeserver.db")
        try:
            return [tuple(r) for r in lite.execute(statement, args).fetchall()]
        finally:
            lite.close()

    def restart(self) -> None:
        self.stop()
        self.proc = self.hs.start()
        self.hs.wait_healthy(self.proc)

    @contextlib.contextmanager
    def module_config_changed(self, **changes: Any) -> Iterator[None]:
        """Synapse (one process) restarted with the module's config changed by
        ``changes``, and restarted as it was afterwards: for a test that wants a setting
        other than the one its module-scoped homeserver runs with."""
        running = self.hs
        self.hs = attrs.evolve(running, module_config={**running.module_config, **changes})
        self.hs.write_config()
        self.restart()
        try:
            yield
        finally:
            self.hs = running
            self.hs.write_config()
            self.restart()

    def stop(self) -> None:
        for _, proc in reversed(self.others):
            _terminate(proc)
        _terminate(self.proc)

    @contextlib.asynccontextmanager
    async def client(self, user: User) -> AsyncIterator[AsyncClient]:
        """A matrix-nio client already logged in as ``user``."""
        client = AsyncClient(self.base_url, user.user_id, device_id=user.device_id)
        client.access_token = user.access_token
        client.user_id = user.user_id
        try:
            yield client
        finally:
            await client.close()

    @contextlib.asynccontextmanager
    async def http(self, user: User | None = None) -> AsyncIterator[aiohttp.ClientSession]:
        """An aiohttp session for the module API, with ``user``'s token when given."""
        headers = {"Authorization": f"Bearer {user.access_token}"} if user else {}
        async with aiohttp.ClientSession(base_url=self.api_url + "/", headers=headers) as s:
            yield s


@contextlib.contextmanager
def running_homeserver(
    directory: Path,
    module_config: dict[str, Any] | None = None,
    load_module: bool = True,
    backend: str | None = None,
    extra: dict[str, Any] | None = None,
    app_service_files: tuple[Path, ...] = (),
    federation_port: int | None = None,
    tls_files: tuple[Path, Path] | None = None,
    turn: Turn | None = None,
    federation_host: str = "127.0.0.1",
    pg_admin: Postgres = PG_ADMIN,
) -> Iterator[RunningHomeserver]:
    """``federation_host``: the host part of the server name when federating ("localhost"
    makes a name a server ACL can allow; ACLs refuse IP literals). ``pg_admin``: the
    cluster of the PostgreSQL backend (a private one for a test that restarts it)."""
    backend = backend or choose_backend()
    db_name = None
    postgres = None
    if backend == "postgres":
        db_name = f"parta_test_{os.getpid()}_{secrets.token_hex(3)}"
        postgres = create_database(db_name, pg_admin)
    hs = Homeserver(
        directory=directory,
        port=free_port(),
        postgres=postgres,
        module_config=module_config or {},
        load_module=load_module,
        extra={**TEST_SYNAPSE, **(extra or {})},
        app_service_files=app_service_files,
        federation_port=federation_port,
        tls_files=tls_files,
        turn=turn,
        server_name=f"{federation_host}:{federation_port}" if federation_port else "localhost",
    )
    hs.write_config()
    proc = hs.start()
    running = RunningHomeserver(hs=hs, proc=proc, backend=backend)
    try:
        hs.wait_healthy(proc)
        yield running
    finally:
        running.stop()
        if db_name:
            drop_database(db_name, pg_admin)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 180) -> None:
    """Wait until ``url`` answers 200 (a liveness bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} was not healthy at {url} in {timeout} s")


def start_redis(directory: Path) -> tuple[int, subprocess.Popen[bytes]]:
    """A private Redis on a free loopback port: two topologies on one machine (other test
    runs, ``make run-workers``) must not hear each other's replication (Synapse's channel
    is named after the server name, and every test server is "localhost")."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian's redis-server package)")
    port = free_port()
    out = (directory / "redis.out").open("ab")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return port, proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc)
            raise RuntimeError(
                f"redis-server did not start: {(directory / 'redis.out').read_text()}"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def running_workers(
    directory: Path,
    module_config: dict[str, Any] | None = None,
    client_readers: int = 1,
    federation_sender: bool = False,
    extra: dict[str, Any] | None = None,
    app_service_files: tuple[Path, ...] = (),
) -> Iterator[RunningHomeserver]:
    """Synapse as main + client reader(s) + an event persister (+ a federation sender) on
    a fresh PostgreSQL database and a private Redis, behind the development router
    (``devtools/router.py``) on :attr:`RunningHomeserver.base_url`. Always PostgreSQL:
    Synapse's workers do not run on SQLite."""
    directory.mkdir(parents=True, exist_ok=True)
    redis_port, redis = start_redis(directory)
    db_name = f"parta_test_{os.getpid()}_{secrets.token_hex(3)}"
    postgres = create_database(db_name)
    ports = [free_port() for _ in range(ports_needed(client_readers, federation_sender))]
    topology = standard_topology(
        ports,
        redis_port=redis_port,
        federation_sender=federation_sender,
        client_readers=client_readers,
    )
    hs = Homeserver(
        directory=directory,
        port=free_port(),
        postgres=postgres,
        module_config=module_config or {},
        extra={**TEST_SYNAPSE, **(extra or {})},
        topology=topology,
        app_service_files=app_service_files,
    )
    hs.write_config()
    running: RunningHomeserver | None = None
    try:
        proc = hs.start()
        running = RunningHomeserver(hs=hs, proc=proc, backend="postgres")
        running.others.append(("redis", redis))
        router = hs.start_router()
        running.others.append(("router", router))
        # Main first (it migrates the database), then the workers.
        with urllib_ok_or_tail(hs):
            wait_http_ok(f"http://127.0.0.1:{topology.main_http_port}/health", proc, "Synapse main")
            for worker in topology.workers:
                wproc = hs.start_worker(worker.name)
                running.others.append((worker.name, wproc))
            for worker in topology.workers:
                wproc = dict(running.others)[worker.name]
                wait_http_ok(worker.health_url, wproc, worker.name)
            wait_http_ok(f"{hs.base_url}/_parta_router/health", router, "router")
        yield running
    finally:
        if running is not None:
            running.stop()
        else:
            _terminate(redis)
        drop_database(db_name)


@contextlib.contextmanager
def urllib_ok_or_tail(hs: Homeserver) -> Iterator[None]:
    """Re-raise a start-up failure with the tails of every process's log."""
    try:
        yield
    except (RuntimeError, TimeoutError) as e:
        logs = [hs.tail_output()]
        for path in sorted(hs.directory.glob("*.out")) + sorted(hs.directory.glob("*.log")):
            if path.name.startswith(("homeserver",)):
                continue
            logs.append(
                f"--- {path.name} ---\n"
                + "\n".join(path.read_text(errors="replace").splitlines()[-40:])
            )
        raise RuntimeError(f"{e}\n" + "\n".join(logs)) from None
