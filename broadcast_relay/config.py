"""Configuration of the broadcast relay (``python -m broadcast_relay -c file.yaml``)."""

from typing import Any

import attrs

from parta_common.tokens import MIN_SECRET_LENGTH


def _positive(_inst: object, attribute: "attrs.Attribute[Any]", value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _secret(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if value and len(value) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{attribute.name} must be at least {MIN_SECRET_LENGTH} characters"
            " (shared with the module, the same rule as its media.token_secret)"
        )


@attrs.frozen
class BroadcastConfig:
    """Where the relay listens, whom it asks, how it cuts HLS.

    Inside the SFU (``broadcast:`` in its config) the SFU's ``token_secret`` is used and
    ``listen_*`` are ignored; alone (``python -m broadcast_relay``) the secret is required.
    """

    # Shared with the Synapse module (its media.token_secret): verifies speakers'
    # WHIP tokens and viewer links, signs the relay's questions to the module.
    token_secret: str = attrs.field(default="", validator=_secret)
    # Where the relay listens. Put nginx or a CDN in front for viewers (docs/cdn.md).
    listen_host: str = "127.0.0.1"
    listen_port: int = 8090
    # Base URL of the homeserver whose Parta module owns the broadcasts.
    homeserver_url: str = "http://127.0.0.1:8008"
    # Where segments (and recordings) are written.
    data_dir: str = "var/broadcasts"
    # Target HLS segment length; the relay asks speakers for a keyframe at each boundary.
    segment_seconds: float = attrs.field(default=1.0, validator=_positive)
    # Segments listed in the live playlist.
    playlist_segments: int = attrs.field(default=6, validator=_positive)
    # A viewer counts as watching if their page reported within this many seconds.
    viewer_window_seconds: float = attrs.field(default=30.0, validator=_positive)
    # How long the module's answer about a viewer link (revoked or not) is trusted by the
    # page and the live badge (the playlist and segments: at most one segment).
    link_cache_seconds: float = attrs.field(default=5.0, validator=_positive)
    # STUN/TURN URLs offered to aiortc for speakers behind NAT (empty: host candidates).
    ice_servers: tuple[str, ...] = ()
