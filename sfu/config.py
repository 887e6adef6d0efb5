"""The SFU's configuration: typed, frozen, validated at startup (``parta_common.config``)."""

from pathlib import Path

import attrs

from broadcast_relay.config import BroadcastConfig
from parta_common.config import load_yaml
from parta_common.tokens import MIN_SECRET_LENGTH


def _positive(_: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _not_negative(_: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen
class IceServer:
    """A STUN or TURN server, as ``RTCPeerConnection`` takes it (pages and the SFU)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@attrs.frozen
class LessonLimits:
    # Participants admitted into one lesson; moderators are admitted beyond it.
    participants: int = attrs.field(default=100, validator=_positive)
    # Video: every screen share and moderator camera, plus the cameras of the last N speakers.
    last_n: int = attrs.field(default=4, validator=_not_negative)
    # Audio: every moderator microphone, plus the loudest N others.
    loudest_n: int = attrs.field(default=3, validator=_not_negative)
    # Receive slots beyond last_n / loudest_n: screen + teacher camera, teacher microphone.
    pinned_video: int = attrs.field(default=2, validator=_not_negative)
    pinned_audio: int = attrs.field(default=1, validator=_not_negative)


@attrs.frozen
class SfuConfig:
    # HS256 secret shared with the module (`media.token_secret` there).
    token_secret: str = attrs.field()
    listen_host: str = "127.0.0.1"
    listen_port: int = 8090
    # How pages reach this server (the lesson page builds its WebSocket URL from it).
    public_url: str = "http://127.0.0.1:8090"
    lesson: LessonLimits = attrs.field(factory=LessonLimits)
    ice_servers: tuple[IceServer, ...] = ()
    # Worker processes that carry students' media connections (docs/sfu.md, "Several
    # processes"); 0 or 1: everything in this one process.
    workers: int = attrs.field(default=1, validator=_not_negative)
    # Seconds a new connection has to send `join`.
    join_timeout: float = 10.0
    # Minimum seconds between two keyframe requests to one published stream.
    keyframe_request_interval: float = 0.5
    # Bitrate (bit/s) announced to publishers by REMB: camera, screen.
    camera_bitrate: int = attrs.field(default=1_000_000, validator=_positive)
    screen_bitrate: int = attrs.field(default=2_500_000, validator=_positive)
    # Where the SFU reaches Synapse to report attendance (the module's
    # /internal/attendance, see docs/lessons.md); null: attendance is only logged.
    homeserver_url: str | None = None
    # Where the SFU keeps its state: the attendance journal (reports the module has not
    # confirmed yet, sent again on the next start).
    data_dir: str = "var/sfu"
    # Broadcasts (WHIP in, HLS out; docs/broadcasts.md); absent: none on this SFU.
    broadcast: BroadcastConfig | None = None

    @token_secret.validator
    def _check_secret(self, attribute: "attrs.Attribute[str]", value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"token_secret must be at least {MIN_SECRET_LENGTH} characters"
                " (the same rule as the module's media.token_secret)"
            )


def load_config(path: Path) -> SfuConfig:
    return load_yaml(SfuConfig, path)
