"""Tokens the module signs and the media server verifies (HS256 JWTs, pyjwt).

A *media token* lets one Matrix user into one room's lesson or broadcast on the SFU
with grants derived from their role there. A *viewer link* lets anyone with the link
watch one broadcast. Both are short-lived; both name their audience so one can never
be used as the other.

One shared secret (``media.token_secret``, at least 32 characters, in the module and the
SFU) is never used as a signing key itself: each kind of token is signed with its own key
derived from it (HMAC-SHA256 of the secret over ``parta/<purpose>``), so a token of one
kind cannot pass as another even if a verifier forgot to check the audience.
"""

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
import jwt

from parta_common.roles import Role

ISSUER: Final = "parta"
AUD_MEDIA: Final = "parta-sfu"
AUD_VIEWER: Final = "parta-viewer"
# Service-to-service calls (the SFU reporting attendance to the module).
AUD_SERVICE: Final = "parta-module"
# A service token is signed per request: a minute is plenty.
SERVICE_TOKEN_TTL: Final = 60
ALGORITHM: Final = "HS256"
# How long a media token is good for: enough to join; a running session is not cut.
MEDIA_TOKEN_TTL: Final = 10 * 60
# Leeway for clocks between the homeserver and the media server.
LEEWAY: Final = 30
# The shortest shared secret the module and the SFU accept.
MIN_SECRET_LENGTH: Final = 32
# Who may present a service token, by its ``sub``: the SFU's lessons (attendance) and
# its broadcast relay.
SERVICE_SFU: Final = "sfu"
SERVICE_RELAY: Final = "parta-broadcast"
# Purposes a signing key is derived for.
PURPOSE_MEDIA: Final = "media"
PURPOSE_VIEWER: Final = "viewer"
PURPOSE_SERVICE: Final = "service"


def purpose_key(secret: str, purpose: str) -> bytes:
    """The signing key for one purpose, derived from the shared secret."""
    return hmac.new(
        secret.encode("utf-8"), b"parta/" + purpose.encode("ascii"), hashlib.sha256
    ).digest()


class TokenError(Exception):
    """A token is forged, expired, for another audience or another room."""


@attrs.frozen
class Grants:
    """What a participant may do in a lesson or broadcast."""

    publish_camera: bool = False
    publish_microphone: bool = False
    publish_screen: bool = False
    subscribe: bool = True
    moderate: bool = False

    def to_claim(self) -> dict[str, bool]:
        return attrs.asdict(self)

    @classmethod
    def from_claim(cls, raw: object) -> "Grants":
        if not isinstance(raw, Mapping):
            raise TokenError("grants claim is not an object")
        names = {f.name for f in attrs.fields(cls)}
        if set(raw) - names or not all(isinstance(v, bool) for v in raw.values()):
            raise TokenError("grants claim has unknown or non-boolean entries")
        return cls(**{str(k): bool(v) for k, v in raw.items()})


def grant_for(role: Role | None, students_may_share_screen: bool = False) -> Grants:
    """The media grants a role gives in a lesson room."""
    if role in (Role.ADMINISTRATOR, Role.COORDINATOR, Role.TEACHER):
        return Grants(True, True, True, True, True)
    if role is Role.STUDENT:
        return Grants(True, True, students_may_share_screen, True, False)
    if role is Role.PARENT:
        return Grants(False, False, False, True, False)
    return Grants(False, False, False, False, False)


@attrs.frozen
class MediaClaims:
    room_id: str
    user_id: str
    display_name: str
    role: str
    grants: Grants
    issued_at: int
    expires_at: int
    token_id: str = attrs.field(factory=lambda: secrets.token_hex(8))


def sign_media_token(
    secret: str,
    room_id: str,
    user_id: str,
    display_name: str,
    role: str,
    grants: Grants,
    ttl: int = MEDIA_TOKEN_TTL,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUD_MEDIA,
        "sub": user_id,
        "room": room_id,
        "name": display_name,
        "role": role,
        "grants": grants.to_claim(),
        "iat": issued,
        "nbf": issued - 1,
        "exp": issued + ttl,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, purpose_key(secret, PURPOSE_MEDIA), algorithm=ALGORITHM)


def verify_media_token(
    token: str, secret: str, room_id: str | None = None, now: float | None = None
) -> MediaClaims:
    """Check signature, expiry, audience and (when given) room; return the claims."""
    payload = _decode(token, purpose_key(secret, PURPOSE_MEDIA), AUD_MEDIA, now)
    try:
        claims = MediaClaims(
            room_id=_str(payload, "room"),
            user_id=_str(payload, "sub"),
            display_name=_str(payload, "name"),
            role=_str(payload, "role"),
            grants=Grants.from_claim(payload.get("grants")),
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
            token_id=_str(payload, "jti"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise TokenError(f"malformed claims: {e}") from None
    if room_id is not None and claims.room_id != room_id:
        raise TokenError("token is for another room")
    return claims


@attrs.frozen
class ViewerClaims:
    broadcast_id: str
    link_id: str
    expires_at: int


def sign_viewer_link(
    secret: str, broadcast_id: str, link_id: str, ttl: int, now: float | None = None
) -> str:
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUD_VIEWER,
        "bc": broadcast_id,
        "jti": link_id,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(payload, purpose_key(secret, PURPOSE_VIEWER), algorithm=ALGORITHM)


def verify_viewer_link(token: str, secret: str, now: float | None = None) -> ViewerClaims:
    """Signature, expiry and audience; revocation (by ``link_id``) is the caller's check."""
    payload = _decode(token, purpose_key(secret, PURPOSE_VIEWER), AUD_VIEWER, now)
    try:
        return ViewerClaims(_str(payload, "bc"), _str(payload, "jti"), int(payload["exp"]))
    except (KeyError, TypeError, ValueError) as e:
        raise TokenError(f"malformed claims: {e}") from None


def _decode(token: str, key: bytes, audience: str, now: float | None) -> dict[str, Any]:
    require = ["exp", "iat", "aud", "iss"]
    try:
        if now is None:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                leeway=LEEWAY,
                options={"require": require},
            )
        else:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={
                    "require": require,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
            if int(payload["exp"]) + LEEWAY < now:
                raise TokenError("token has expired")
    except jwt.PyJWTError as e:
        raise TokenError(str(e)) from None
    return payload


def _str(payload: Mapping[str, Any], key: str) -> str:
    value = payload[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


@attrs.frozen
class ServiceClaims:
    service: str
    expires_at: int
    # Unique per token: the module accepts each service token once (a replay is refused).
    token_id: str


def sign_service_token(
    secret: str, service: str, ttl: int = SERVICE_TOKEN_TTL, now: float | None = None
) -> str:
    """A short-lived token one Parta process (``service``, e.g. ``sfu``) shows the module."""
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUD_SERVICE,
        "sub": service,
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, purpose_key(secret, PURPOSE_SERVICE), algorithm=ALGORITHM)


def verify_service_token(
    token: str, secret: str, services: frozenset[str], now: float | None = None
) -> ServiceClaims:
    """Signature, expiry, the service audience (a media token is refused here) and that
    ``sub`` is one of the ``services`` allowed on this route."""
    payload = _decode(token, purpose_key(secret, PURPOSE_SERVICE), AUD_SERVICE, now)
    try:
        claims = ServiceClaims(_str(payload, "sub"), int(payload["exp"]), _str(payload, "jti"))
    except (KeyError, TypeError, ValueError) as e:
        raise TokenError(f"malformed claims: {e}") from None
    if claims.service not in services:
        raise TokenError(f"service {claims.service!r} may not call this")
    return claims
