"""The SFU's configuration: the example loads, documents the defaults, refuses mistakes."""

from pathlib import Path

import pytest
import yaml

from parta_common.config import ConfigProblem, build
from sfu.config import SfuConfig, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "sfu.example.yaml"
SECRET = "a-real-secret-of-enough-length-0123456789"


def test_example_refuses_its_placeholder(tmp_path: Path) -> None:
    with pytest.raises(ConfigProblem, match=r"token_secret.*CHANGE_ME"):
        load_config(EXAMPLE)


def test_example_with_a_secret_is_the_defaults(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["token_secret"] = SECRET
    path = tmp_path / "sfu.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    assert config == SfuConfig(token_secret=SECRET)
    assert config.listen_host == "127.0.0.1"
    assert config.lesson.participants == 100


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({}, "token_secret"),
        ({"token_secret": "short"}, "at least 32"),
        ({"token_secret": "x" * 31}, "at least 32"),
        ({"token_secret": SECRET, "lesson": {"participants": 0}}, "participants"),
        ({"token_secret": SECRET, "lesson": {"last_m": 3}}, "unknown key"),
        ({"token_secret": SECRET, "listen_port": "80"}, "listen_port"),
        ({"token_secret": SECRET, "workers": -1}, "workers must not be negative"),
        ({"token_secret": SECRET, "ice_servers": [{"url": "stun:x"}]}, "ice_servers.0"),
    ],
)
def test_mistakes_name_the_key(raw: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigProblem, match=where):
        build(SfuConfig, raw)
