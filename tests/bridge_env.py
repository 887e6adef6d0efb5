"""A real Synapse with the bot's application service registered, and the bot as a process."""

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import attrs
from mautrix.util.async_db import Database

from bridge.api import ModuleClient
from bridge.config import BridgeConfig, load
from bridge.db import create_database as bot_database
from bridge.local import write_config
from bridge.registration import Registration
from devtools.homeserver import REPO_ROOT, Postgres
from tests.harness import (
    RunningHomeserver,
    User,
    create_database,
    drop_database,
    free_port,
    running_homeserver,
)


@attrs.define
class BotProcess:
    config_path: Path
    port: int
    log_path: Path
    database: str
    registration: Registration
    proc: subprocess.Popen[bytes] | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "-c", str(self.config_path)],
            cwd=self.config_path.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bot exited:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the bot was not healthy:\n{self.tail()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def signed_in(self, user: User, login: bool = False) -> list[str]:
        """The roster CLI's arguments to act as ``user``: their access token in a file,
        or (``login``) their name and password as ``make run`` keeps the operator's."""
        path = self.config_path.parent / f"{user.localpart}.{'login' if login else 'token'}"
        path.write_text(
            f"{user.localpart}\n{user.password}\n" if login else f"{user.access_token}\n"
        )
        path.chmod(0o600)
        return ["--login" if login else "--token-file", str(path)]

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``python -m bridge.roster_sync`` with this bot's configuration."""
        return subprocess.run(
            [sys.executable, "-m", "bridge.roster_sync", "-c", str(self.config_path), *args],
            cwd=self.config_path.parent,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@attrs.define
class BridgeEnv:
    hs: RunningHomeserver
    bot: BotProcess

    @property
    def bot_user_id(self) -> str:
        return f"@parta-bot:{self.hs.server_name}"

    @contextlib.asynccontextmanager
    async def bot_side(self) -> AsyncIterator[tuple[BridgeConfig, Database, ModuleClient]]:
        """The bot's configuration, its database and a module client with its token, as
        the bot's own code has them (to schedule or read what the bot keeps)."""
        config = load(self.bot.config_path)
        db = bot_database(config.database)
        await db.start()
        try:
            async with aiohttp.ClientSession() as session:
                yield (
                    config,
                    db,
                    ModuleClient(session, self.hs.base_url, self.bot.registration.as_token),
                )
        finally:
            await db.stop()


@contextlib.contextmanager
def bridge_env(
    directory: Path,
    quiet_hours: dict[str, str] | None = None,
    workers: bool = False,
    pg_admin: Postgres | None = None,
    client_readers: int = 1,
) -> Iterator[BridgeEnv]:
    """Synapse with the module and the bot's registration, and the bot running.

    ``workers``: Synapse as main + client reader + event persister over Redis
    (:func:`tests.harness.running_workers`, always PostgreSQL) instead of one process;
    ``client_readers``: how many client readers (``/sync``) it runs.
    ``pg_admin``: Synapse and the bot on PostgreSQL in that cluster (a private one).
    """
    from tests.harness import PG_ADMIN, choose_backend, running_workers

    backend = "postgres" if workers or pg_admin else choose_backend()
    admin = pg_admin or PG_ADMIN
    port = free_port()
    bot_db_name = None
    database = None
    if backend == "postgres":
        bot_db_name = f"parta_bot_{os.getpid()}_{secrets.token_hex(3)}"
        pg = create_database(bot_db_name, admin)
        auth = pg.user + (f":{pg.password}" if pg.password else "")
        database = f"postgresql://{auth}@{pg.host}:{pg.port}/{pg.database}"
    bot_dir = directory / "bot"

    def configure(homeserver_url: str) -> tuple[Path, Path]:
        return write_config(
            bot_dir,
            homeserver_url,
            "localhost",
            port,
            database,
            # Tests run at any hour: no quiet hours unless a test asks for them.
            quiet_hours=quiet_hours or {"start": "00:00", "end": "00:00"},
            interval_seconds=0.5,
        )

    # The registration (the bot's port and tokens) must exist before Synapse starts;
    # the bot's config learns Synapse's address afterwards.
    _, registration_path = configure("http://127.0.0.1:1")
    try:
        # Lessons on (no SFU needed to create them and read attendance).
        module_config = {
            "media": {
                "enabled": True,
                "token_secret": secrets.token_urlsafe(32),
                "sfu_public_url": "http://127.0.0.1:9/",
            }
        }
        synapse = (
            running_workers(
                directory / "synapse",
                module_config=module_config,
                client_readers=client_readers,
                app_service_files=(registration_path,),
            )
            if workers
            else running_homeserver(
                directory / "synapse",
                module_config=module_config,
                backend=backend,
                app_service_files=(registration_path,),
                pg_admin=admin,
            )
        )
        with synapse as hs:
            config_path, _ = configure(hs.base_url)
            bot = BotProcess(
                config_path=config_path,
                port=port,
                log_path=bot_dir / "bot.log",
                database=database or f"sqlite:{bot_dir / 'bridge.db'}",
                registration=Registration.read(registration_path),
            )
            bot.start()
            try:
                yield BridgeEnv(hs=hs, bot=bot)
            finally:
                bot.stop()
    finally:
        if bot_db_name:
            drop_database(bot_db_name, admin)
