"""The module's configuration: the ``config:`` block under ``modules:`` in homeserver.yaml."""

import datetime
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from parta_common.config import ConfigProblem, build
from parta_common.tokens import MIN_SECRET_LENGTH

from .content.config import ContentConfig
from .roster.rules import PolicyLimits

_LOCALPART = re.compile(r"^[a-z0-9._=\-/]+$")


def _localpart(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _LOCALPART.match(value):
        raise ValueError(
            f"{attribute.name}: {value!r} is not a valid Matrix localpart "
            "(lower-case letters, digits and ._=-/ only)"
        )


def _http_url(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
        raise ValueError(f"{attribute.name}: {value!r} is not an http(s) URL")


def _ttl(_inst: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if not 30 <= value <= 86400:
        raise ValueError(f"{attribute.name}: {value} is outside 30..86400 seconds")


def _ws_url(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not re.match(r"^wss?://[^/\s]+(/\S*)?$", value):
        raise ValueError(f"{attribute.name}: {value!r} is not a ws(s) URL")


@attrs.frozen
class LiveKitConfig:
    """A LiveKit cluster for Element Call (the lk-jwt-service API of the module)."""

    # Where clients reach LiveKit, e.g. wss://livekit.region.example.
    url: str = attrs.field(validator=_ws_url)
    # The API key and secret LiveKit is configured with (`keys:` in livekit.yaml).
    api_key: str
    api_secret: str

    def __attrs_post_init__(self) -> None:
        if len(self.api_secret) < 32:
            raise ValueError("api_secret: must be at least 32 characters long")


@attrs.frozen
class MediaConfig:
    """Video lessons: the tokens the module signs for the SFU (see docs/lessons.md)."""

    # Whether lessons and media tokens are offered at all.
    enabled: bool = False
    # The secret shared with the SFU (HS256); at least 32 characters. `make run`
    # generates one into var/.
    token_secret: str | None = None
    # Where browsers reach the SFU: the lesson page and its WebSocket live there.
    sfu_public_url: str = attrs.field(default="http://127.0.0.1:8090/", validator=_http_url)
    # How long a media token is good for, in seconds (enough to join; a running
    # session is not cut when it expires).
    token_ttl_seconds: int = attrs.field(default=600, validator=_ttl)
    # Whether students may share their screen without the teacher allowing it.
    students_may_share_screen: bool = False
    # A LiveKit cluster for Element Call, or null (then /livekit/* answers 404).
    livekit: LiveKitConfig | None = None

    def __attrs_post_init__(self) -> None:
        if self.enabled and not self.token_secret:
            raise ValueError(
                "token_secret: required when media.enabled is true "
                "(a random string of at least 32 characters, shared with the SFU)"
            )
        if self.token_secret is not None and len(self.token_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"token_secret: must be at least {MIN_SECRET_LENGTH} characters long")


@attrs.frozen
class BroadcastsConfig:
    """Broadcasts (docs/broadcasts.md): how long links and speaker tokens live. The relay
    runs in the SFU: its secret is ``media.token_secret``, its URL ``media.sfu_public_url``."""

    # How long a public viewer link works, unless revoked.
    public_link_ttl_seconds: int = attrs.field(
        default=7 * 24 * 3600, validator=attrs.validators.ge(60)
    )
    # How long a personal link for a members-only broadcast works.
    member_link_ttl_seconds: int = attrs.field(default=4 * 3600, validator=attrs.validators.ge(60))
    # How long a speaker's WHIP bearer token can start a session.
    speaker_token_ttl_seconds: int = attrs.field(
        default=6 * 3600, validator=attrs.validators.ge(60)
    )


def _days(_inst: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if not 1 <= value <= 36500:
        raise ValueError(f"{attribute.name}: {value} is outside 1..36500 days")


@attrs.frozen
class RetentionLimits:
    """The longest a school may keep each kind of data, in days: a school's own rule
    (PUT /schools/{id}/retention) must lie between ``min_days`` and these. What the
    module deletes itself (attendance, recordings, the audit log) is kept this long
    when a school sets no rule."""

    class_chat: int = attrs.field(default=1825, validator=_days)
    parents_chat: int = attrs.field(default=1825, validator=_days)
    announcements: int = attrs.field(default=1825, validator=_days)
    staff: int = attrs.field(default=1825, validator=_days)
    attendance: int = attrs.field(default=1095, validator=_days)
    # Recordings of broadcasts (video files posted as documents); also how long those of
    # no school are kept (broadcasts.rules.recording_school).
    recordings: int = attrs.field(default=1095, validator=_days)
    # The audit log: a school's entries (entries of no school, the operator's, keep this).
    audit: int = attrs.field(default=1825, validator=_days)
    # No school may set a rule shorter than this (a mistyped "1" must not wipe a year).
    min_days: int = attrs.field(default=30, validator=_days)


@attrs.frozen
class PrivacyConfig:
    """Export, erasure and retention of a person's data (docs/privacy.md)."""

    # Synapse's own `media_store_path`: the export reads the files a person uploaded
    # from it, the erasure deletes them there. Null: neither touches files.
    media_store_path: str | None = None
    # The operator's limits for schools' retention rules.
    retention_limits: RetentionLimits = attrs.field(factory=RetentionLimits)
    # How many redactions an erasure has in flight at once in a room (Synapse persists
    # the ones queued together in one transaction); 1: one after another, the path
    # before #12's measurement, kept for comparison in bench/privacy_erasure.py.
    erasure_concurrency: int = attrs.field(
        default=8, validator=[attrs.validators.ge(1), attrs.validators.le(32)]
    )
    # Days off Russia's calendar (the ``holidays`` package) lacks: a region's own (a
    # republic's holiday), or a decree's transfer newer than the package. A request to
    # erase is due 10 working days after it was made, these skipped too.
    extra_days_off: tuple[datetime.date, ...] = ()

    @property
    def days_off(self) -> frozenset[datetime.date]:
        return frozenset(self.extra_days_off)


@attrs.frozen
class PartaConfig:
    """Everything the server operator sets for Parta; every key has a default."""

    # Localpart of the service account that creates and owns school rooms.
    service_localpart: str = attrs.field(default="parta", validator=_localpart)
    # Display name of the service account, as people see it in their clients.
    service_displayname: str = "Parta"
    # IANA time zone used for dates shown to people, unless a school sets its own.
    default_timezone: str = "Europe/Moscow"
    # Limits within which each school's administrators set their school's policy.
    policy: PolicyLimits = attrs.Factory(PolicyLimits)
    # Invitation codes: how long they live unless the person making one says otherwise.
    invite_default_ttl_days: int = attrs.field(default=7, validator=attrs.validators.ge(1))
    # How many parent codes (POST /me/parent_invite) a student may have open at once.
    parent_invites_per_student: int = attrs.field(
        default=3, validator=[attrs.validators.ge(1), attrs.validators.le(10)]
    )
    # Where invitation links point (a page that explains how to join); empty: the
    # homeserver's public_baseurl.
    invite_link_base: str = ""
    # Whether a person with an invitation code may create their account with it
    # (POST /invites/{code}/register); otherwise accounts come from the operator.
    registration_with_invite: bool = True
    # When an imported account's rooms are joined on its first sign-in: "background"
    # (the login answers at once, the rooms follow within seconds, a few people at a
    # time) or "during_login" (the login waits for them: ~1 s a person, for
    # comparison in bench/school_morning.py).
    first_sign_in_joins: Literal["background", "during_login"] = "background"
    # Whether people an import (or a batch, or any roster change) brings into a school
    # before they have signed in are joined to its school-wide rooms (the school space,
    # announcements, documents, articles) at once, in the background, so that their
    # first sign-in joins only their class's rooms: at 08:00 a newcomer's joins then wake
    # the syncs of their class, not of the whole school. false: every room at the first
    # sign-in (for comparison in bench/school_morning.py).
    open_rooms_at_import: bool = True
    # On SQLite only (make run): "normal" — a commit does not wait for the disk (WAL
    # mode: consistent after any crash, a power cut may lose the last commits) — or
    # "full", Synapse's own (an fsync every commit: a school's first morning of
    # membership events then waits on the disk). PostgreSQL is not touched.
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    # Localparts of this server's bots that anyone may write to directly and that may
    # write to anyone (the school bot), whatever a school's direct-message rules say.
    trusted_bots: tuple[str, ...] = ("parta-bot",)
    # How long after a person's command a trusted bot may act for them with it
    # (X-Parta-On-Behalf-Of): long enough for a roster import confirmed with «да».
    bot_command_window_seconds: int = attrs.field(
        default=1800, validator=[attrs.validators.ge(10), attrs.validators.le(86400)]
    )
    # Video lessons and media tokens.
    media: MediaConfig = attrs.field(factory=MediaConfig)
    # Broadcasts: link lifetimes (they need media.enabled).
    broadcasts: BroadcastsConfig = attrs.field(factory=BroadcastsConfig)
    # Documents, articles, polls: upload limits per role and kind, who may start polls.
    content: ContentConfig = attrs.field(factory=ContentConfig)
    # Children's data: where the export finds uploaded files.
    privacy: PrivacyConfig = attrs.field(factory=PrivacyConfig)
    # With Synapse workers: the one process that runs the module's background jobs
    # (clean-up loops): "main" or a worker's worker_name (docs/deploy.md).
    background_worker: str = attrs.field(default="main", validator=attrs.validators.min_len(1))


def parse_config(raw: Mapping[str, Any] | None) -> PartaConfig:
    """Build a :class:`PartaConfig`; a :class:`ConfigProblem` names the wrong key."""
    return build(PartaConfig, raw if raw is not None else {})


def raise_as_synapse_config_error(problem: ConfigProblem) -> None:
    """Re-raise ``problem`` as Synapse's ``ConfigError`` with the full key path."""
    from synapse.module_api.errors import ConfigError

    raise ConfigError(problem.msg, ("modules", "<parta>", "config", *problem.path))
