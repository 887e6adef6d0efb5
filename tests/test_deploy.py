"""docker-compose.yml and deploy/: the production shape holds together.

No Docker engine or compose plugin runs here (nor in CI), so the file is checked as data:
the services a deployment needs, every image pinned, no secret written in it, every
file it mounts present, the worker names the same in compose, homeserver.yaml and the
worker files, nginx's routing the one devtools/workers.py holds — and
deploy/make-secrets.sh really run, its outputs loaded by each process's own config parser.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.config import load as load_bridge
from devtools.homeserver import CACHES
from devtools.workers import nginx_locations
from sfu.config import load_config as load_sfu
from synapse_module import PartaModule

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
HOMESERVER = yaml.safe_load((ROOT / "deploy/synapse/homeserver.yaml").read_text())
# Made by the operator, not by make-secrets.sh (docs/deploy.md says how).
OPERATOR_MADE = {"synapse_signing_key"}


def test_the_services_a_deployment_needs() -> None:
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "synapse",
        "synapse-client-reader",
        "synapse-event-persister",
        "synapse-federation-sender",
        "bridge",
        "sfu",
        "broadcast-relay",
        "coturn",
        "livekit",
        "nginx",
        "element-web",
    }


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned(name: str) -> None:
    image = SERVICES[name]["image"]
    if image.startswith("parta:"):
        # Parta's own image, built from the Dockerfile, tagged with its version.
        assert image == "parta:${PARTA_VERSION:-0.1.0}", image
        return
    repository, _, tag = image.rpartition(":")
    # A release, not a moving major tag ("16", "7", "latest"): PostgreSQL's releases are
    # major.minor, the others major.minor.patch.
    assert repository and re.match(r"v?\d+\.\d+", tag), f"{name}: {image} is not pinned"


_SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$", re.IGNORECASE)


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name, service in SERVICES.items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if _SECRETISH.search(key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (
                    f"{name}: {key} must come from a secret file"
                )
    for name, secret in COMPOSE["secrets"].items():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/"), name
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"(password|secret|token)\s*[:=]\s*['\"]?[A-Za-z0-9_\-]{16,}", text, re.I)


def test_homeserver_yaml_reads_its_secrets_from_files() -> None:
    for key in ("macaroon_secret_key", "registration_shared_secret", "form_secret"):
        assert key not in HOMESERVER
        assert HOMESERVER[f"{key}_path"].startswith("/run/secrets/")
    assert "password" not in HOMESERVER["database"]["args"]
    assert HOMESERVER["database"]["args"]["passfile"].startswith("/run/secrets/")


def _bind_mounts() -> list[tuple[str, str]]:
    mounts = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes") or ():
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                mounts.append((name, source))
    return mounts


@pytest.mark.parametrize(("service", "source"), _bind_mounts())
def test_every_mounted_file_exists(service: str, source: str) -> None:
    if source.startswith("./secrets"):
        return  # made by deploy/make-secrets.sh and the operator (tested below)
    assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repo"


def test_services_use_only_declared_secrets() -> None:
    declared = set(COMPOSE["secrets"])
    for name, service in SERVICES.items():
        assert set(service.get("secrets") or ()) <= declared, name


def _worker_files() -> dict[str, dict[str, Any]]:
    return {
        p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "deploy/synapse/workers").glob("*")
    }


def test_worker_names_agree_everywhere() -> None:
    workers = _worker_files()
    for stem, config in workers.items():
        assert config["worker_name"] == stem
        assert config["worker_app"] == "synapse.app.generic_worker"
    in_compose = {
        re.sub(r"^/config/workers/|\.yaml$", "", arg)
        for service in SERVICES.values()
        for arg in service.get("command") or ()
        if str(arg).startswith("/config/workers/")
    }
    assert in_compose == set(workers)
    named = set(HOMESERVER["instance_map"]) - {"main"}
    named |= set(HOMESERVER["stream_writers"]["events"])
    named |= set(HOMESERVER["federation_sender_instances"])
    assert named <= set(workers)
    # The module runs its jobs on main unless told otherwise (background_worker).
    assert HOMESERVER["redis"]["enabled"] is True


def test_nginx_routes_are_the_devtools_table() -> None:
    """One routing table: the development router and production nginx agree."""
    assert (ROOT / "deploy/nginx/synapse-workers.conf").read_text() == nginx_locations()
    conf = (ROOT / "deploy/nginx/parta.conf").read_text()
    assert "include /etc/nginx/parta/synapse-workers.conf;" in conf
    assert "proxy_cache parta_broadcast;" in conf  # the HLS cache


def test_make_secrets_makes_what_compose_reads(tmp_path: Path) -> None:
    """Run deploy/make-secrets.sh for real; each process's own parser loads its file."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    env = {**os.environ, "PARTA_SERVER_NAME": "school.example.ru"}
    script = ROOT / "deploy/make-secrets.sh"
    done = subprocess.run(
        ["sh", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    secrets = tmp_path / "secrets"
    for name, secret in COMPOSE["secrets"].items():
        path = tmp_path / secret["file"]
        if name in OPERATOR_MADE:
            continue
        assert path.is_file() and path.stat().st_size > 0, name
        assert path.stat().st_mode & 0o077 == 0, f"{name} is readable by others"
    module = yaml.safe_load((secrets / "parta_module.yaml").read_text())["modules"][0]
    config = PartaModule.parse_config(module["config"])
    assert config.media.livekit is not None
    assert config.media.token_secret == (secrets / "media_token_secret").read_text().strip()
    assert load_sfu(secrets / "sfu.yaml").token_secret == config.media.token_secret
    assert load_bridge(secrets / "bridge.yaml").homeserver.domain == "school.example.ru"
    registration = yaml.safe_load((secrets / "bridge_registration").read_text())
    assert re.match(registration["namespaces"]["users"][0]["regex"], "@parta-bot:school.example.ru")
    # Running it again keeps every secret.
    before = {p.name: p.read_bytes() for p in secrets.iterdir() if p.is_file()}
    subprocess.run(["sh", str(script)], cwd=tmp_path, env=env, capture_output=True, check=True)
    assert before == {p.name: p.read_bytes() for p in secrets.iterdir() if p.is_file()}


@pytest.mark.skipif(
    shutil.which("docker-compose") is None and not os.environ.get("PARTA_REQUIRE_TOOLS"),
    reason="needs Debian's docker-compose (make test installs it)",
)
def test_docker_compose_config_validates(tmp_path: Path) -> None:
    """The compose file as Compose itself reads it: `docker-compose config` (no engine
    needed) with only the one value an operator must set in .env."""
    env = {**os.environ, "PARTA_SERVER_NAME": "school.example"}
    env.pop("PARTA_VERSION", None)
    done = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert {"synapse", "postgres", "redis", "nginx"} <= set(resolved["services"])
    # Without it, Compose refuses with the message the operator needs.
    env.pop("PARTA_SERVER_NAME")
    refused = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert refused.returncode != 0 and "PARTA_SERVER_NAME" in refused.stderr


def test_production_synapse_carries_the_school_mornings_settings() -> None:
    """Presence off, the caches' sizes and the collector's thresholds measured for a
    whole school syncing (docs/benchmarks.md) are the same in production as in the
    config `make run` generates."""
    assert {key: HOMESERVER.get(key) for key in CACHES} == CACHES
