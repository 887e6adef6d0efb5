"""Media tokens and viewer links: what the module signs, the SFU accepts, and nothing else."""

import jwt
import pytest

from parta_common import tokens
from parta_common.roles import Role

SECRET = "s" * 32


def _token(**overrides: object) -> str:
    args: dict[str, object] = {
        "secret": SECRET,
        "room_id": "!room:hs",
        "user_id": "@t:hs",
        "display_name": "Учитель",
        "role": "teacher",
        "grants": tokens.grant_for(Role.TEACHER),
        "now": 1000,
    }
    args.update(overrides)
    return tokens.sign_media_token(**args)  # type: ignore[arg-type]


def test_round_trip() -> None:
    claims = tokens.verify_media_token(_token(), SECRET, room_id="!room:hs", now=1010)
    assert claims.user_id == "@t:hs"
    assert claims.grants.moderate
    assert claims.display_name == "Учитель"
    assert claims.restrictions == ()


def test_restrictions_travel_signed() -> None:
    """Why a student's grants were narrowed reaches the SFU inside the signed token."""
    token = _token(restrictions=("no_video_consent",))
    claims = tokens.verify_media_token(token, SECRET, now=1010)
    assert claims.restrictions == ("no_video_consent",)
    key = tokens.purpose_key(SECRET, tokens.PURPOSE_MEDIA)
    payload = jwt.decode(token, key, algorithms=["HS256"], options={"verify_signature": False})
    payload["restrictions"] = "no_video_consent"
    bad = jwt.encode(payload, key, algorithm="HS256")
    with pytest.raises(tokens.TokenError, match="restrictions"):
        tokens.verify_media_token(bad, SECRET, now=1010)


@pytest.mark.parametrize(
    ("token", "room", "now", "fragment"),
    [
        (_token(), "!other:hs", 1010, "another room"),
        (_token(), None, 1000 + tokens.MEDIA_TOKEN_TTL + tokens.LEEWAY + 1, "expired"),
        (_token(secret="x" * 32), None, 1010, "Signature"),
        (
            tokens.sign_viewer_link(SECRET, "bc1", "l1", ttl=60, now=1000),
            None,
            1010,
            "signature",
        ),
        (
            tokens.sign_service_token(SECRET, tokens.SERVICE_RELAY, now=1000),
            None,
            1010,
            "signature",
        ),
        (
            # Signed with the shared secret itself (as before keys were derived per purpose).
            jwt.encode(
                {"aud": tokens.AUD_MEDIA, "iss": "parta", "exp": 2000, "iat": 1000},
                SECRET,
                algorithm="HS256",
            ),
            None,
            1010,
            "signature",
        ),
        (
            jwt.encode(
                {"aud": tokens.AUD_MEDIA, "iss": "parta"},
                tokens.purpose_key(SECRET, tokens.PURPOSE_MEDIA),
                algorithm="HS256",
            ),
            None,
            1010,
            "exp",
        ),
        (
            jwt.encode(
                {"aud": tokens.AUD_MEDIA, "iss": "parta", "exp": 2000, "iat": 1000},
                "",
                algorithm="none",
            ),
            None,
            1010,
            "",
        ),
    ],
)
def test_refused(token: str, room: str | None, now: int, fragment: str) -> None:
    with pytest.raises(tokens.TokenError) as info:
        tokens.verify_media_token(token, SECRET, room_id=room, now=now)
    assert fragment.lower() in str(info.value).lower()


@pytest.mark.parametrize(
    ("role", "camera", "screen", "moderate", "subscribe"),
    [
        (Role.TEACHER, True, True, True, True),
        (Role.ADMINISTRATOR, True, True, True, True),
        (Role.STUDENT, True, False, False, True),
        (Role.PARENT, False, False, False, True),
        (None, False, False, False, False),
    ],
)
def test_grant_for(
    role: Role | None, camera: bool, screen: bool, moderate: bool, subscribe: bool
) -> None:
    g = tokens.grant_for(role)
    assert (g.publish_camera, g.publish_screen, g.moderate, g.subscribe) == (
        camera,
        screen,
        moderate,
        subscribe,
    )


def test_viewer_link() -> None:
    link = tokens.sign_viewer_link(SECRET, "bc1", "l1", ttl=60, now=1000)
    claims = tokens.verify_viewer_link(link, SECRET, now=1050)
    assert (claims.broadcast_id, claims.link_id) == ("bc1", "l1")
    with pytest.raises(tokens.TokenError):
        tokens.verify_viewer_link(link, SECRET, now=1000 + 60 + tokens.LEEWAY + 1)


def test_a_media_token_is_not_a_viewer_link_nor_a_service_token() -> None:
    media = _token()
    with pytest.raises(tokens.TokenError, match="Signature"):
        tokens.verify_viewer_link(media, SECRET, now=1010)
    with pytest.raises(tokens.TokenError, match="Signature"):
        tokens.verify_service_token(media, SECRET, frozenset({"sfu"}), now=1010)


def test_keys_differ_per_purpose_and_secret() -> None:
    keys = {
        tokens.purpose_key(secret, purpose)
        for secret in (SECRET, "t" * 32)
        for purpose in (tokens.PURPOSE_MEDIA, tokens.PURPOSE_VIEWER, tokens.PURPOSE_SERVICE)
    }
    assert len(keys) == 6
    assert SECRET.encode() not in keys


@pytest.mark.parametrize(
    ("service", "allowed", "ok"),
    [
        (tokens.SERVICE_SFU, {tokens.SERVICE_SFU}, True),
        (tokens.SERVICE_RELAY, {tokens.SERVICE_RELAY}, True),
        (tokens.SERVICE_SFU, {tokens.SERVICE_RELAY}, False),
        (tokens.SERVICE_RELAY, {tokens.SERVICE_SFU}, False),
        ("anyone", {tokens.SERVICE_SFU, tokens.SERVICE_RELAY}, False),
    ],
)
def test_service_token_sub_is_checked(service: str, allowed: set[str], ok: bool) -> None:
    token = tokens.sign_service_token(SECRET, service, now=1000)
    if ok:
        assert tokens.verify_service_token(token, SECRET, frozenset(allowed), now=1010).service
    else:
        with pytest.raises(tokens.TokenError, match="may not call"):
            tokens.verify_service_token(token, SECRET, frozenset(allowed), now=1010)
