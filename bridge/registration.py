"""The application-service registration Synapse loads (``app_service_config_files``).

The namespace is the bot's own account only, exclusive: the application service
cannot act as anyone else (Synapse refuses ``?user_id=@person:server`` with its token).
The bot reaches people through the module, naming the person and their command
(bridge/api.py, synapse_module/delegation/).

    python -m bridge.registration -c bridge.yaml [--url http://127.0.0.1:29340]

writes the file named by ``appservice.registration`` once, with fresh random tokens;
an existing file keeps its tokens (what Synapse already trusts), and its namespaces are
rewritten when they are not the bot's alone (a registration from before that change).
"""

import argparse
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import attrs
import yaml

from bridge.config import BridgeConfig, load

APPSERVICE_ID = "parta-bot"


@attrs.frozen
class Registration:
    as_token: str
    hs_token: str
    url: str
    sender_localpart: str

    @classmethod
    def generate(cls, url: str, sender_localpart: str) -> "Registration":
        return cls(
            as_token=secrets.token_urlsafe(32),
            hs_token=secrets.token_urlsafe(32),
            url=url,
            sender_localpart=sender_localpart,
        )

    def as_dict(self, domain: str) -> dict[str, Any]:
        bot = re.escape(f"@{self.sender_localpart}:{domain}")
        return {
            "id": APPSERVICE_ID,
            "url": self.url,
            "as_token": self.as_token,
            "hs_token": self.hs_token,
            "sender_localpart": self.sender_localpart,
            "rate_limited": False,
            "namespaces": {
                # The bot's own user, and nobody else's.
                "users": [{"exclusive": True, "regex": f"^{bot}$"}],
                "aliases": [],
                "rooms": [],
            },
        }

    @classmethod
    def read(cls, path: Path) -> "Registration":
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a registration file")
        try:
            return cls(
                as_token=str(data["as_token"]),
                hs_token=str(data["hs_token"]),
                url=str(data["url"]),
                sender_localpart=str(data["sender_localpart"]),
            )
        except KeyError as e:
            raise ValueError(f"{path}: the registration has no {e.args[0]}") from None


def ensure_registration(config: BridgeConfig, path: Path, url: str | None = None) -> Registration:
    """Read the registration at ``path``, or write a new one with random tokens."""
    if path.exists():
        reg = Registration.read(path)
        wanted = reg.as_dict(config.homeserver.domain)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if data.get("namespaces") != wanted["namespaces"]:
            data["namespaces"] = wanted["namespaces"]
            path.write_text(yaml.safe_dump(data, sort_keys=False))
        return reg
    url = url or f"http://{config.appservice.host}:{config.appservice.port}"
    reg = Registration.generate(url, config.appservice.bot_localpart)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(reg.as_dict(config.homeserver.domain), sort_keys=False))
    path.chmod(0o600)
    return reg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument("--url", help="where Synapse reaches the bot (default: host:port)")
    args = parser.parse_args(argv)
    config = load(args.config)
    path = Path(config.appservice.registration)
    existed = path.exists()
    ensure_registration(config, path, args.url)
    print(f"{'kept' if existed else 'wrote'} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
