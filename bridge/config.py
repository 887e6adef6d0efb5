"""The bot's configuration (``bridge.yaml``): typed, frozen, unknown keys rejected.

``config/bridge.example.yaml`` shows every key with its default and is loaded by a test.
"""

import datetime
import re
import zoneinfo
from pathlib import Path

import attrs

from parta_common import catalogue
from parta_common.config import ConfigProblem, load_yaml

_LOCALPART = re.compile(r"^[a-z0-9._=\-/]+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _localpart(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _LOCALPART.match(value):
        raise ValueError(f"{attribute.name}: {value!r} is not a valid Matrix localpart")


def _clock(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _CLOCK.match(value):
        raise ValueError(f"{attribute.name}: expected HH:MM (24-hour clock), got {value!r}")


def _timezone(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{attribute.name}: unknown IANA time zone {value!r}") from None


def _database(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not value.startswith(("sqlite:", "postgres://", "postgresql://")):
        raise ValueError(
            f"{attribute.name}: expected sqlite:path/to/file.db or postgresql://…, got {value!r}"
        )


@attrs.frozen
class HomeserverConfig:
    # Where the bot reaches the homeserver's client API.
    url: str = "http://127.0.0.1:8008"
    # The homeserver's server_name (the part after ':' in user IDs).
    domain: str = "localhost"


@attrs.frozen
class AppserviceConfig:
    # The registration file (as_token, hs_token, namespaces) Synapse also loads;
    # `python -m bridge.registration` writes it with fresh random tokens.
    registration: str = "registration.yaml"
    # Where Synapse pushes transactions to the bot; also serves /health.
    host: str = "127.0.0.1"
    port: int = 29340
    # The bot's own account. Must differ from the module's service account (`parta`).
    bot_localpart: str = attrs.field(default="parta-bot", validator=_localpart)
    # Shown to people in every language; the default is the catalogue's Russian name.
    bot_displayname: str = catalogue.text("bot.display_name")


@attrs.frozen
class QuietHoursConfig:
    # Nothing scheduled is delivered between `start` and `end` (local time of the
    # school); what falls inside waits until `end`. Equal values switch quiet hours off.
    start: str = attrs.field(default="21:00", validator=_clock)
    end: str = attrs.field(default="08:00", validator=_clock)
    timezone: str = attrs.field(default="Europe/Moscow", validator=_timezone)

    def window(self) -> tuple[datetime.time, datetime.time]:
        return _parse_clock(self.start), _parse_clock(self.end)


@attrs.frozen
class SchedulerConfig:
    # How often the bot looks for announcements and reminders that are due.
    interval_seconds: float = 5.0
    # Homework reminders go out this many hours before the due date.
    homework_reminder_hours: int = 18


@attrs.frozen
class BridgeConfig:
    homeserver: HomeserverConfig = HomeserverConfig()
    appservice: AppserviceConfig = AppserviceConfig()
    # sqlite:var/bridge.db for one machine, postgresql://user:pw@host/db in production.
    database: str = attrs.field(default="sqlite:bridge.db", validator=_database)
    # Quiet hours for every school unless `school_quiet_hours` names the school.
    quiet_hours: QuietHoursConfig = QuietHoursConfig()
    # Per-school quiet hours, keyed by the module's school_id.
    school_quiet_hours: dict[str, QuietHoursConfig] = attrs.Factory(dict)
    scheduler: SchedulerConfig = SchedulerConfig()

    def quiet_hours_for(self, school_id: str | None) -> QuietHoursConfig:
        if school_id is not None and school_id in self.school_quiet_hours:
            return self.school_quiet_hours[school_id]
        return self.quiet_hours


def _parse_clock(value: str) -> datetime.time:
    hours, minutes = value.split(":")
    return datetime.time(int(hours), int(minutes))


def load(path: Path) -> BridgeConfig:
    """Read ``path``; a :class:`ConfigProblem` names the file and the key."""
    return load_yaml(BridgeConfig, path)


__all__ = ["BridgeConfig", "ConfigProblem", "load"]
