"""Generate a Synapse configuration with Parta loaded, start it, and talk to it."""

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import yaml

from devtools.workers import Topology
from synapse_module.content.config import largest_upload_mib

REPO_ROOT = Path(__file__).resolve().parent.parent

# Rate limits high enough that a school's bulk actions (enrolling a whole school,
# a class of 30 joining a lesson at once) and the test suite never trip them.
_GENEROUS = {"per_second": 10000, "burst_count": 100000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _GENEROUS,
    "rc_registration": _GENEROUS,
    "rc_registration_token_validity": _GENEROUS,
    "rc_login": {
        "address": _GENEROUS,
        "account": _GENEROUS,
        "failed_attempts": _GENEROUS,
    },
    "rc_admin_redaction": _GENEROUS,
    "rc_joins": {"local": _GENEROUS, "remote": _GENEROUS},
    "rc_joins_per_room": _GENEROUS,
    "rc_invites": {"per_room": _GENEROUS, "per_user": _GENEROUS, "per_issuer": _GENEROUS},
    "rc_3pid_validation": _GENEROUS,
    "rc_media_create": _GENEROUS,
    "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "reject_limit": 1000},
    "rc_presence": {"per_user": _GENEROUS},
    "rc_delayed_event_mgmt": _GENEROUS,
    "rc_room_creation": _GENEROUS,
    "rc_reports": _GENEROUS,
}

# Synapse's in-memory caches, sized so one process's RSS stays bounded when a whole
# school syncs at once (docs/benchmarks.md, "The school morning"). Measured there: the
# largest holders are finished /sync answers (kept for a retry of the same request) and
# per-user sets (who shares a room with whom, which rooms a user is in).
CACHES: dict[str, Any] = {
    "caches": {
        # Every cache at half Synapse's default size …
        "global_factor": 0.5,
        # … and entries unused for 10 minutes dropped (Synapse: 30 minutes).
        "expire_caches": True,
        "cache_entry_ttl": "10m",
        # A finished /sync answer is kept for a client's retry of the same request for
        # 30 s (Synapse: 2 minutes): a thousand initial syncs held for 2 minutes are
        # the RSS peak of a school morning.
        "sync_response_cache_duration": "30s",
    },
    # Events kept decoded in memory (Synapse's default, written down: 10,000).
    "event_cache_size": "10K",
    # Python's garbage collector less often. Synapse runs it itself (automatic
    # collection off): the youngest generation at most once a second when over the
    # first threshold of new objects, the middle one after the second threshold of
    # those, a full collection after the third (Python's default 700 / 10 / 10). With
    # a school long-polling, the collector was 10–14 % of Synapse's busy time, half of
    # it with these (docs/benchmarks.md, "The school morning", the delivery profile).
    # (Synapse's gc_min_interval is read but does not reach its collector in 1.163.)
    "gc_thresholds": [10000, 50, 20],
    # No presence: a pupil's "online" would be shown to everyone who shares a room with
    # them — the whole school — and every change of it wakes every one of their /sync
    # streams (a school-wide room makes that a thousand). Parta uses none of it.
    "presence": {"enabled": False},
}


@attrs.frozen
class Postgres:
    """Where a PostgreSQL database is, parsed from a ``postgresql://`` DSN."""

    database: str
    user: str = "postgres"
    password: str | None = None
    host: str = "127.0.0.1"
    port: int = 5432

    @classmethod
    def from_dsn(cls, dsn: str) -> "Postgres":
        url = urllib.parse.urlsplit(dsn)
        if url.scheme not in ("postgres", "postgresql") or not url.path.strip("/"):
            raise ValueError(
                f"expected postgresql://user[:password]@host[:port]/database, got {dsn!r}"
            )
        return cls(
            database=url.path.strip("/"),
            user=url.username or "postgres",
            password=url.password,
            host=url.hostname or "127.0.0.1",
            port=url.port or 5432,
        )

    def connect_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "user": self.user,
            "database": self.database,
            "host": self.host,
            "port": self.port,
        }
        if self.password:
            args["password"] = self.password
        return args


@attrs.frozen
class Turn:
    """TURN for Element's 1:1 calls: Synapse hands out short-lived credentials.

    The credentials are coturn's "TURN REST API" kind (``use-auth-secret``): the user name
    is an expiry time, the password an HMAC of it with the secret both sides read from
    ``secret_file``.
    """

    uris: tuple[str, ...]
    secret_file: Path
    user_lifetime: str = "1h"

    def synapse_config(self) -> dict[str, Any]:
        return {
            "turn_uris": list(self.uris),
            "turn_shared_secret_path": str(self.secret_file),
            "turn_user_lifetime": self.user_lifetime,
            # Guests do not exist in a school; nobody without an account gets a relay.
            "turn_allow_guests": False,
        }


def turn_secret(path: Path) -> str:
    """The TURN shared secret in ``path``, made once (mode 600) and kept."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


@attrs.frozen
class Homeserver:
    """One Synapse installation in ``directory`` with Parta loaded."""

    directory: Path
    server_name: str = "localhost"
    port: int = 8008
    postgres: Postgres | None = None
    module_config: dict[str, Any] = attrs.Factory(dict)
    app_service_files: tuple[Path, ...] = ()
    # Extra top-level Synapse settings (tests raise limits, enable features).
    extra: dict[str, Any] = attrs.Factory(dict)
    load_module: bool = True
    # A TLS federation listener (for tests of two homeservers talking over loopback):
    # the port and a certificate/key pair; server_name is then "127.0.0.1:<port>".
    federation_port: int | None = None
    tls_files: tuple[Path, Path] | None = None
    # TURN for 1:1 calls; None leaves calls to direct (host/STUN) connections only.
    turn: Turn | None = None
    # Synapse workers over Redis (PostgreSQL only); ``port`` is then the router's.
    topology: Topology | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.directory / "homeserver.log"

    def secrets(self) -> dict[str, str]:
        """Secrets made once and kept, so a second start reuses sessions and data."""
        path = self.directory / "secrets.json"
        if path.exists():
            data: dict[str, str] = json.loads(path.read_text())
            return data
        data = {
            name: secrets.token_urlsafe(32)
            for name in ("registration_shared_secret", "macaroon_secret_key", "form_secret")
        }
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o600)
        return data

    def write_config(self) -> Path:
        """Write homeserver.yaml, the log config and (once) the signing key."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "media_store").mkdir(exist_ok=True)
        key_path = self.directory / "signing.key"
        if not key_path.exists():
            from signedjson.key import generate_signing_key, write_signing_keys

            with key_path.open("w") as f:
                write_signing_keys(f, [generate_signing_key("a_" + secrets.token_hex(2))])
            key_path.chmod(0o600)
        log_config = self.directory / "log.yaml"
        log_config.write_text(yaml.safe_dump(_log_config(self.log_path)))

        database: dict[str, Any]
        if self.postgres is None:
            database = {
                "name": "sqlite3",
                "args": {"database": str(self.directory / "homeserver.db")},
            }
        else:
            database = {
                "name": "psycopg2",
                "args": {**self.postgres.connect_args(), "cp_min": 1, "cp_max": 5},
            }

        listeners: list[dict[str, Any]] = [
            {
                "port": self.topology.main_http_port if self.topology else self.port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "x_forwarded": False,
                "resources": [{"names": ["client", "federation", "openid"], "compress": False}],
            }
        ]
        if self.topology is not None:
            listeners.append(self.topology.main_listener())
        federation: dict[str, Any] = {
            # One machine, nobody else to talk to: no federation.
            "federation_domain_whitelist": [],
        }
        if self.federation_port is not None and self.tls_files is not None:
            listeners.append(
                {
                    "port": self.federation_port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": True,
                    "resources": [{"names": ["federation"], "compress": False}],
                }
            )
            federation = {
                "tls_certificate_path": str(self.tls_files[0]),
                "tls_private_key_path": str(self.tls_files[1]),
                "federation_verify_certificates": False,
                "ip_range_whitelist": ["127.0.0.1"],
                "ip_range_blacklist": [],
            }
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"http://127.0.0.1:{self.port}/",
            "pid_file": str(self.directory / "homeserver.pid"),
            "listeners": listeners,
            "database": database,
            "log_config": str(log_config),
            "media_store_path": str(self.directory / "media_store"),
            "signing_key_path": str(key_path),
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            **federation,
            "url_preview_enabled": False,
            # Synapse checks this before the module's per-role limits: the largest of them.
            "max_upload_size": f"{largest_upload_mib(self.module_config)}M",
            # Parents and students find teachers by name; the module hides students
            # from everyone outside their school.
            "user_directory": {"enabled": True, "search_all_users": True},
            # Schools' retention rules become m.room.retention in their rooms (the
            # module's job); Synapse's purge job deletes what is older, daily.
            "retention": {"enabled": True, "purge_jobs": [{"interval": "1d"}]},
            "enable_registration": False,
            "allow_guest_access": False,
            **self.secrets(),
            **RATE_LIMITS,
            **CACHES,
            "modules": (
                [{"module": "synapse_module.PartaModule", "config": self.parta_config()}]
                if self.load_module
                else []
            ),
            "app_service_config_files": [str(p) for p in self.app_service_files],
            **(self.turn.synapse_config() if self.turn else {}),
            **(self.topology.shared_config() if self.topology else {}),
            **self.well_known(),
            **self.extra,
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        self._write_worker_configs()
        return self.config_path

    def parta_config(self) -> dict[str, Any]:
        """The module's config, told where this Synapse keeps uploads (the export of a
        person's data reads their files from there) unless it says so itself."""
        privacy = {"media_store_path": str(self.directory / "media_store")}
        privacy.update(self.module_config.get("privacy") or {})
        return {**self.module_config, "privacy": privacy}

    def well_known(self) -> dict[str, Any]:
        """With a LiveKit cluster configured: Synapse serves ``.well-known/matrix/client``
        advertising the module's token service as the MatrixRTC focus (Element Call)."""
        if not (self.module_config.get("media") or {}).get("livekit"):
            return {}
        from synapse_module.media_tokens.rules import well_known_rtc_foci

        return {
            "serve_client_wellknown": True,
            "extra_well_known_client_content": well_known_rtc_foci(self.base_url),
        }

    def _write_worker_configs(self) -> None:
        if self.topology is None:
            return
        if self.postgres is None:
            raise ValueError("Synapse workers need PostgreSQL (set a postgres database)")
        for worker in self.topology.workers:
            log_config = self.directory / f"{worker.name}.log.yaml"
            log_config.write_text(
                yaml.safe_dump(_log_config(self.directory / f"{worker.name}.log"))
            )
            path = self.worker_config_path(worker.name)
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump(worker.config(log_config)))

    def worker_config_path(self, name: str) -> Path:
        return self.directory / "workers" / f"{name}.yaml"

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """Start one worker of :attr:`topology`; output to ``<name>.out``."""
        return self._spawn(
            [
                "synapse.app.generic_worker",
                "-c",
                str(self.config_path),
                "-c",
                str(self.worker_config_path(name)),
            ],
            f"{name}.out",
        )

    def start_router(self) -> subprocess.Popen[bytes]:
        """The development router on :attr:`port` in front of main and the workers."""
        assert self.topology is not None
        return self._spawn(
            [
                "devtools.router",
                "--port",
                str(self.port),
                "--upstreams",
                json.dumps(self.topology.upstreams()),
            ],
            "router.out",
        )

    def start(self) -> subprocess.Popen[bytes]:
        """Start Synapse in the background; its output goes to ``homeserver.out``."""
        return self._spawn(
            ["synapse.app.homeserver", "-c", str(self.config_path)], "homeserver.out"
        )

    def _spawn(self, module_args: list[str], out_name: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        out = (self.directory / out_name).open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", *module_args],
            cwd=self.directory,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Synapse exited with code {proc.returncode}:\n{self.tail_output()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"Synapse was not healthy in {timeout} s:\n{self.tail_output()}")

    def tail_output(self, lines: int = 60) -> str:
        chunks = []
        for name in ("homeserver.out", "homeserver.log"):
            path = self.directory / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(chunks)

    def register_user(
        self, localpart: str, password: str, admin: bool = False, displayname: str | None = None
    ) -> dict[str, Any]:
        """Register through the shared-secret admin API; the answer has ``access_token``."""
        shared = self.secrets()["registration_shared_secret"]
        url = f"{self.base_url}/_synapse/admin/v1/register"
        with urllib.request.urlopen(url, timeout=30) as r:
            nonce = json.loads(r.read())["nonce"]
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": _mac(shared, nonce, localpart, password, admin),
        }
        if displayname:
            body["displayname"] = displayname
        answer: dict[str, Any] = http_json("POST", url, body)
        return answer


def _mac(shared: str, nonce: str, user: str, password: str, admin: bool) -> str:
    mac = hmac.new(shared.encode(), digestmod=hashlib.sha1)
    mac.update(nonce.encode())
    mac.update(b"\x00")
    mac.update(user.encode())
    mac.update(b"\x00")
    mac.update(password.encode())
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


class HttpError(Exception):
    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {body}")


def http_json(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30
) -> Any:
    """A JSON request with the standard library; raises :class:`HttpError` on non-2xx."""
    return http_json_status(method, url, body, token, timeout)[1]


def http_json_status(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30
) -> tuple[int, Any]:
    """:func:`http_json` with the 2xx status code it got."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status: int = r.status
            raw = r.read()
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        raise HttpError(e.code, parsed) from None
    return status, json.loads(raw) if raw else None


def _log_config(log_file: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                "%(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.handlers.RotatingFileHandler",
                "formatter": "precise",
                "filename": str(log_file),
                "maxBytes": 50 * 1024 * 1024,
                "backupCount": 2,
                "encoding": "utf8",
            }
        },
        "loggers": {
            "synapse.storage.SQL": {"level": "WARNING"},
            "synapse_module": {"level": "DEBUG"},
        },
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
