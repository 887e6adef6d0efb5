"""Synapse's worker topology for Parta: which processes run, their configs, who serves what.

One table (:data:`ROUTES`) says which requests a generic worker serves; the development
router (``devtools/router.py``) and the production nginx configuration
(``config/nginx-synapse.conf``, rendered by :func:`nginx_locations` and checked by a test)
both come from it. Everything not in the table goes to the main process — including the
Parta module's own API (``/_synapse/client/parta/``): its writes (roster, imports,
lessons) start on main, which then invalidates the module's caches on every worker over
Redis. Workers still load the module for its callbacks (spam checks, event rules,
password sign-in, ``on_user_login``).
"""

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs

# Roles of generic workers this topology uses.
CLIENT_READER: Final = "client_reader"
EVENT_PERSISTER: Final = "event_persister"
FEDERATION_SENDER: Final = "federation_sender"

_V = r"(api/v1|r0|v3|unstable)"
_R = r"(r0|v3|unstable)"

# Requests a client reader (a "synchrotron" plus the read paths and sign-in) serves, as
# Synapse's docs/workers.md lists them for ``synapse.app.generic_worker``.
CLIENT_READER_PATHS: Final[tuple[str, ...]] = (
    # /sync and its relatives; sliding sync (MSC4186, Element X's) too: Synapse registers
    # it on generic workers, and a connection's state lives in the database.
    r"^/_matrix/client/(r0|v3)/sync$",
    r"^/_matrix/client/unstable/org\.matrix\.simplified_msc3575/sync$",
    rf"^/_matrix/client/{_V}/events$",
    rf"^/_matrix/client/{_V}/initialSync$",
    rf"^/_matrix/client/{_V}/rooms/[^/]+/initialSync$",
    # reading rooms
    rf"^/_matrix/client/{_V}/rooms/[^/]+/(messages|context/.*|members|joined_members|state)$",
    rf"^/_matrix/client/{_V}/rooms/[^/]+/event/",
    rf"^/_matrix/client/{_R}/joined_rooms$",
    rf"^/_matrix/client/{_V}/publicRooms$",
    rf"^/_matrix/client/{_R}/user_directory/search$",
    rf"^/_matrix/client/{_R}/account/whoami$",
    rf"^/_matrix/client/{_R}/devices$",
    rf"^/_matrix/client/{_R}/keys/(query|changes)$",
    rf"^/_matrix/client/{_R}/capabilities$",
    r"^/_matrix/client/versions$",
    rf"^/_matrix/client/{_V}/voip/turnServer$",
    # signing in (the module's password provider and on_user_login run there too)
    rf"^/_matrix/client/{_R}/login$",
)

# (role, path patterns) in the order a router tries them; the rest goes to main.
ROUTES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = ((CLIENT_READER, CLIENT_READER_PATHS),)


def route(path: str) -> str | None:
    """The worker role that serves ``path``, or None for the main process."""
    for role, patterns in ROUTES:
        if any(re.search(p, path) for p in patterns):
            return role
    return None


# What each role's one HTTP listener serves.
_RESOURCES: Final[dict[str, list[str]]] = {
    CLIENT_READER: ["client"],
    # Other processes call a stream writer over replication HTTP.
    EVENT_PERSISTER: ["replication"],
    FEDERATION_SENDER: ["health"],
}


@attrs.frozen
class Worker:
    """One generic worker process with one HTTP listener (what it serves: its role)."""

    name: str
    role: str = attrs.field(validator=attrs.validators.in_(_RESOURCES))
    port: int

    @property
    def serves_clients(self) -> bool:
        return "client" in _RESOURCES[self.role]

    @property
    def is_stream_writer(self) -> bool:
        return "replication" in _RESOURCES[self.role]

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def config(self, log_config: Path) -> dict[str, Any]:
        listener: dict[str, Any] = {
            "type": "http",
            "port": self.port,
            "bind_addresses": ["127.0.0.1"],
            "resources": [{"names": _RESOURCES[self.role], "compress": False}],
        }
        if self.serves_clients:
            listener["x_forwarded"] = True
        return {
            "worker_app": "synapse.app.generic_worker",
            "worker_name": self.name,
            "worker_listeners": [listener],
            "worker_log_config": str(log_config),
        }


@attrs.frozen
class Topology:
    """Main + workers over Redis; Synapse's settings for the main process and each worker."""

    # The main process's replication port (instance_map "main").
    main_replication_port: int
    # The main process's client port (the router or nginx sits on the public one).
    main_http_port: int
    workers: tuple[Worker, ...]
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379

    def of_role(self, role: str) -> list[Worker]:
        return [w for w in self.workers if w.role == role]

    def shared_config(self) -> dict[str, Any]:
        """Settings every process reads from homeserver.yaml."""
        instance_map: dict[str, Any] = {
            "main": {"host": "127.0.0.1", "port": self.main_replication_port}
        }
        for worker in self.workers:
            if worker.is_stream_writer:
                instance_map[worker.name] = {"host": "127.0.0.1", "port": worker.port}
        config: dict[str, Any] = {
            "redis": {"enabled": True, "host": self.redis_host, "port": self.redis_port},
            "instance_map": instance_map,
        }
        persisters = [w.name for w in self.of_role(EVENT_PERSISTER)]
        if persisters:
            config["stream_writers"] = {"events": persisters}
        senders = [w.name for w in self.of_role(FEDERATION_SENDER)]
        if senders:
            config["federation_sender_instances"] = senders
        return config

    def main_listener(self) -> dict[str, Any]:
        return {
            "type": "http",
            "port": self.main_replication_port,
            "bind_addresses": ["127.0.0.1"],
            "resources": [{"names": ["replication"]}],
        }

    def upstreams(self) -> dict[str, list[str]]:
        """Route role → base URLs (``main`` for the main process), for the router."""
        result: dict[str, list[str]] = {"main": [f"http://127.0.0.1:{self.main_http_port}"]}
        for worker in self.workers:
            if worker.serves_clients:
                result.setdefault(worker.role, []).append(f"http://127.0.0.1:{worker.port}")
        return result


def standard_topology(
    ports: Sequence[int],
    redis_port: int = 6379,
    federation_sender: bool = True,
    client_readers: int = 1,
) -> Topology:
    """Main + client reader(s) + one event persister (+ a federation sender), on ``ports``
    (:func:`ports_needed` of them)."""
    free = list(ports)
    main_http, main_replication = free.pop(0), free.pop(0)
    workers = [
        Worker(f"client_reader{i + 1}", CLIENT_READER, free.pop(0)) for i in range(client_readers)
    ]
    workers.append(Worker("event_persister1", EVENT_PERSISTER, free.pop(0)))
    if federation_sender:
        workers.append(Worker("federation_sender1", FEDERATION_SENDER, free.pop(0)))
    return Topology(
        main_replication_port=main_replication,
        main_http_port=main_http,
        workers=tuple(workers),
        redis_port=redis_port,
    )


def ports_needed(client_readers: int = 1, federation_sender: bool = True) -> int:
    return 2 + client_readers + 1 + int(federation_sender)


NGINX_UPSTREAMS: Final[dict[str, str]] = {CLIENT_READER: "synapse_client_reader"}


def nginx_locations() -> str:
    """nginx ``location`` blocks for :data:`ROUTES` (an upstream per role; main otherwise),
    as ``deploy/nginx/synapse-workers.conf`` holds them."""
    lines = [
        "# Generated from devtools/workers.py ROUTES: python -m devtools.workers > this file",
        "# (tests/test_deploy.py checks that it is up to date).",
    ]
    for role, patterns in ROUTES:
        for pattern in patterns:
            upstream = NGINX_UPSTREAMS[role]
            lines.append(f'location ~ "{pattern}" {{ proxy_pass http://{upstream}; }}')
    lines.append("location /_matrix/ { proxy_pass http://synapse_main; }")
    lines.append("location /_synapse/ { proxy_pass http://synapse_main; }")
    lines.append("location /.well-known/matrix/ { proxy_pass http://synapse_main; }")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(nginx_locations(), end="")
