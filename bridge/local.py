"""A bot next to a local homeserver: what ``make run``, the tests and the benchmarks share.

:func:`write_config` writes ``bridge.yaml`` and (once) the registration with random
tokens into a directory; Synapse is then pointed at the registration
(``app_service_config_files``) and the bot started with ``python -m bridge -c …``.
"""

from pathlib import Path
from typing import Any

import yaml

from bridge.config import BridgeConfig, load
from bridge.registration import ensure_registration


def write_config(
    directory: Path,
    homeserver_url: str,
    domain: str,
    port: int,
    database: str | None = None,
    quiet_hours: dict[str, str] | None = None,
    interval_seconds: float = 5.0,
) -> tuple[Path, Path]:
    """Write ``bridge.yaml`` and ``registration.yaml`` in ``directory``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    registration = directory / "registration.yaml"
    raw: dict[str, Any] = {
        "homeserver": {"url": homeserver_url, "domain": domain},
        "appservice": {
            "registration": str(registration),
            "host": "127.0.0.1",
            "port": port,
        },
        "database": database or f"sqlite:{directory / 'bridge.db'}",
        "scheduler": {"interval_seconds": interval_seconds},
    }
    if quiet_hours is not None:
        raw["quiet_hours"] = quiet_hours
    config_path = directory / "bridge.yaml"
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    config: BridgeConfig = load(config_path)
    ensure_registration(config, registration)
    return config_path, registration
