"""Configuration is typed, validated at startup, and rejects what it does not know."""

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from synapse.module_api.errors import ConfigError

from synapse_module import PartaConfig, PartaModule

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def module_blocks() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(CONFIG_DIR.glob("*.example.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for block in data.get("modules", []) if isinstance(data, dict) else []:
            if block.get("module") == "synapse_module.PartaModule":
                found.append((path.name, block["config"]))
    return found


def test_module_example_exists() -> None:
    assert module_blocks(), "config/ must show how to load the module"


@pytest.mark.parametrize(("name", "raw"), module_blocks())
def test_every_module_example_parses(name: str, raw: dict[str, Any]) -> None:
    config = PartaModule.parse_config(raw)
    assert isinstance(config, PartaConfig)
    # The example documents the defaults: it must say what an empty config means.
    assert config == PartaModule.parse_config({}), name


def test_empty_config_gives_defaults() -> None:
    config = PartaModule.parse_config(None)
    assert config.service_localpart == "parta"
    assert config.default_timezone == "Europe/Moscow"


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"servce_localpart": "x"}, (), "unknown key(s): servce_localpart"),
        ({"service_localpart": 5}, ("service_localpart",), "expected a string"),
        ({"service_localpart": "Bad Name"}, (), "not a valid Matrix localpart"),
        ({"default_timezone": None}, ("default_timezone",), "got null"),
        ({"service_displayname": "CHANGE_ME"}, ("service_displayname",), "placeholder"),
        ({"privacy": {"erasure_concurrency": 0}}, (), "erasure_concurrency"),
        ({"open_rooms_at_import": "yes"}, ("open_rooms_at_import",), "expected true or false"),
        (
            {"privacy": {"extra_days_off": ["2026-13-01"]}},
            ("privacy", "extra_days_off", "0"),
            "expected a date (YYYY-MM-DD), got str '2026-13-01'",
        ),
        (
            {"privacy": {"extra_days_off": [20260527]}},
            ("privacy", "extra_days_off", "0"),
            "expected a date (YYYY-MM-DD)",
        ),
        ({"privacy": {"extra_days_off": "2026-05-27"}}, ("privacy", "extra_days_off"), "a list"),
    ],
)
def test_wrong_config_names_the_key(
    raw: dict[str, Any], key: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        PartaModule.parse_config(raw)
    assert fragment in info.value.msg
    assert tuple(info.value.path or ())[-len(key) :] == key if key else True
    assert list(info.value.path or [])[:3] == ["modules", "<parta>", "config"]


def test_a_region_s_days_off_are_read_as_dates() -> None:
    """YAML reads an unquoted 2026-05-27 as a date, a quoted one as a string: both do."""
    raw = yaml.safe_load("privacy:\n  extra_days_off: [2026-05-27, '2026-08-30']\n")
    config = PartaModule.parse_config(raw)
    assert config.privacy.extra_days_off == (
        datetime.date(2026, 5, 27),
        datetime.date(2026, 8, 30),
    )
