"""Tokens and links, one table: every kind of token Parta signs, every way to abuse it.

Kinds: media tokens (the SFU and the relay's WHIP), viewer links (the relay's HLS), service
tokens (the module's internal routes) and LiveKit tokens (Element Call). Abuses: expired,
for another room (or broadcast, or service), signed with another key, ``alg: none``, a
token of another kind, garbage, and replayed where a token is single-use (service tokens).
Each row is refused by the library verifier and by the real service that checks it:
Synapse with the module, the relay asking it, the SFU subprocess. LiveKit itself is a Go
server not run here; its tokens are checked with LiveKit's own Python verifier.

And a revoked viewer link stops at the next HLS segment.
"""

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import jwt
import livekit.api
import pytest
from aiohttp import web

from broadcast_relay import SERVICE_KEY
from parta_common import tokens
from parta_common.roles import Role
from sfu.client import LessonClient, LessonRefused
from synapse_module.config import LiveKitConfig
from synapse_module.media_tokens.rules import livekit_room_alias, livekit_token
from tests.broadcast_support import H264Track, homeserver_with_media, publish, relay_asking
from tests.broadcast_support import module_api as api
from tests.harness import RunningHomeserver, User, free_port
from tests.sfu_support import RunningSfu, running_sfu

SECRET = "token-table-secret-0123456789abcdef-0123456789"
OTHER_SECRET = "another-secret-0123456789abcdef-0123456789ab"
ROOM = "!room:school.test"
OTHER_ROOM = "!elsewhere:school.test"
LIVEKIT = LiveKitConfig(url="wss://livekit.test", api_key="parta", api_secret="l" * 40)
API = "/_synapse/client/parta/v1"

KINDS = ("media", "viewer", "service", "livekit")


def reissue(token: str, key: str | bytes, algorithm: str = "HS256", **claims: Any) -> str:
    """``token``'s claims (changed by ``claims``) signed again with ``key``."""
    payload = jwt.decode(token, options={"verify_signature": False})
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


@attrs.frozen
class Target:
    """What a good token opens: a room (media, LiveKit), a broadcast's link (viewer)."""

    room: str = ROOM
    broadcast: str = "bc1"
    link: str = "l1"


HERE = Target()


def good(kind: str, at: Target = HERE, now: float | None = None, **kw: Any) -> str:
    """A token of ``kind`` for ``at`` that its verifier accepts (``now`` to age it)."""
    if kind == "media":
        grants = tokens.grant_for(Role.TEACHER)
        return tokens.sign_media_token(
            SECRET, at.room, "@t:school.test", "T", "teacher", grants, now=now
        )
    if kind == "viewer":
        return tokens.sign_viewer_link(SECRET, at.broadcast, at.link, 600, now)
    if kind == "service":
        return tokens.sign_service_token(SECRET, kw.get("service", tokens.SERVICE_SFU), now=now)
    grants = tokens.grant_for(Role.TEACHER)
    return livekit_token(LIVEKIT, "@t:school.test:DEV", "T", at.room, grants, now)


def key_of(kind: str, secret: str = SECRET) -> bytes | str:
    if kind == "livekit":
        return LIVEKIT.api_secret if secret == SECRET else secret
    purpose = {"media": tokens.PURPOSE_MEDIA, "viewer": tokens.PURPOSE_VIEWER}
    return tokens.purpose_key(secret, purpose.get(kind, tokens.PURPOSE_SERVICE))


def expired(kind: str, at: Target) -> str:
    return good(kind, at, now=time.time() - 7200)


def other_room(kind: str, at: Target) -> str:
    if kind == "viewer":  # a link names its broadcast; the relay checks it against the link
        return reissue(good(kind, at), key_of(kind), bc="another-broadcast")
    if kind == "service":  # the relay's token on the SFU's route, and the SFU's on the relay's
        return good(kind, service="someone-else")
    return good(kind, attrs.evolve(at, room=OTHER_ROOM))


def other_key(kind: str, at: Target) -> str:
    return reissue(good(kind, at), key_of(kind, OTHER_SECRET))


def shared_secret_itself(kind: str, at: Target) -> str:
    """Signed with the shared secret instead of the purpose's derived key."""
    return reissue(good(kind, at), SECRET)


def alg_none(kind: str, at: Target) -> str:
    return reissue(good(kind, at), "", algorithm="none")


def another_kind(kind: str, at: Target) -> str:
    return good("viewer" if kind == "media" else "media", at)


def garbage(kind: str, at: Target) -> str:
    return "eyJhbGciOiJIUzI1NiJ9.e30.forged"


FAULTS: dict[str, Callable[[str, Target], str]] = {
    "expired": expired,
    "other-room": other_room,
    "other-key": other_key,
    "shared-secret": shared_secret_itself,
    "alg-none": alg_none,
    "another-kind": another_kind,
    "garbage": garbage,
}
ROWS = [(kind, fault) for kind in KINDS for fault in FAULTS]


class Refused(Exception):
    pass


def verify(kind: str, token: str) -> None:
    """The check each service makes, as a function: returns, or raises :class:`Refused`."""
    try:
        if kind == "media":
            tokens.verify_media_token(token, SECRET, room_id=ROOM)
        elif kind == "viewer":
            if tokens.verify_viewer_link(token, SECRET).broadcast_id != HERE.broadcast:
                raise Refused("another broadcast")
        elif kind == "service":
            tokens.verify_service_token(token, SECRET, frozenset({tokens.SERVICE_SFU}))
        else:
            verifier = livekit.api.TokenVerifier(LIVEKIT.api_key, LIVEKIT.api_secret)
            video = verifier.verify(token).video
            if video is None or video.room != livekit_room_alias(ROOM):
                raise Refused("another room")
    except (tokens.TokenError, jwt.PyJWTError, ValueError) as e:
        raise Refused(str(e)) from None


@pytest.mark.parametrize("kind", KINDS)
def test_a_good_token_of_each_kind_passes(kind: str) -> None:
    verify(kind, good(kind))


@pytest.mark.parametrize(("kind", "fault"), ROWS, ids=[f"{k}-{f}" for k, f in ROWS])
def test_every_abuse_is_refused_by_the_verifier(kind: str, fault: str) -> None:
    with pytest.raises(Refused):
        verify(kind, FAULTS[fault](kind, HERE))


# -- the real services ---------------------------------------------------------------------

RELAY_PORT = free_port()
SDP = {"Content-Type": "application/sdp"}
RELAY = f"http://127.0.0.1:{RELAY_PORT}"


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with homeserver_with_media(tmp_path_factory.mktemp("tt-hs"), SECRET, RELAY) as running:
        yield running


@pytest.fixture
async def relay(hs: RunningHomeserver, tmp_path: Path) -> AsyncIterator[web.Application]:
    # The relay's defaults: answers about a link trusted 5 s, segments of 1 s.
    async with relay_asking(hs, SECRET, RELAY_PORT, tmp_path) as app:
        config = app[SERVICE_KEY].config
        assert config.link_cache_seconds > 2 * config.segment_seconds
        yield app


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSfu]:
    with running_sfu(tmp_path_factory.mktemp("tt-sfu"), token_secret=SECRET) as running:
        yield running


async def broadcast_in_a_room(hs: RunningHomeserver) -> tuple[User, str, str, dict[str, Any]]:
    teacher = hs.register("teacher")
    room = hs.request(
        "POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, teacher.access_token
    )["room_id"]
    path = f"rooms/{urllib.parse.quote(room)}/broadcasts"
    status, created = await api(
        hs,
        teacher,
        "POST",
        path,
        {"title": "Линейка", "speakers": [teacher.user_id], "public": True},
    )
    assert status == 200, created
    return teacher, room, path, created


async def status_of(method: str, url: str, token: str | None = None, **kw: Any) -> int:
    headers = {**kw.pop("headers", {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, headers=headers, **kw) as r,
    ):
        await r.read()
        return r.status


async def test_every_abuse_is_refused_by_the_service_that_checks_it(
    hs: RunningHomeserver, relay: web.Application, sfu: RunningSfu
) -> None:
    _teacher, room, _path, created = await broadcast_in_a_room(hs)
    bid = created["broadcast_id"]
    link_id = created["viewer_link"]["link_id"]
    attendance = f"{hs.base_url}{API}/internal/attendance"
    internal = f"{hs.base_url}{API}/internal/broadcasts/{bid}"

    here = Target(room=room, broadcast=bid, link=link_id)

    async def media_refused(token: str) -> bool:
        whip = await status_of(
            "POST",
            f"{RELAY}/whip/{bid}",
            token,
            data=b"v=0",
            headers=SDP,
        )
        client = LessonClient(sfu.url, room, token)
        try:
            await client.connect()
            sfu_refused = False
        except LessonRefused as e:
            sfu_refused = e.code in ("unauthorized", "wrong_room")
        finally:
            await client.close()
        # 401 bad token; 404 a token for another room's broadcast (nothing to publish to).
        return whip in (401, 404) and sfu_refused

    async def viewer_refused(token: str) -> bool:
        return await status_of("GET", f"{RELAY}/watch/{token}/index.m3u8") in (403, 410)

    async def service_refused(token: str) -> bool:
        codes = [
            await status_of("POST", attendance, token, json={"events": []}),
            await status_of("GET", internal, token),
        ]
        return codes == [401, 401]

    checks = {"media": media_refused, "viewer": viewer_refused, "service": service_refused}
    refused: dict[str, bool] = {}
    for kind, fault in ROWS:
        if kind in checks:
            refused[f"{kind}-{fault}"] = await checks[kind](FAULTS[fault](kind, here))
    assert refused == dict.fromkeys(refused, True)
    assert len(refused) == 3 * len(FAULTS)

    # The good tokens pass the same checks (so the refusals are about the faults).
    media = good("media", here)
    whip = await status_of(
        "POST", f"{RELAY}/whip/{bid}", media, data=b"v=0", headers={"Content-Type": "text/plain"}
    )
    assert whip == 415  # past the token: only the body is wrong
    client = LessonClient(sfu.url, room, media)
    try:
        assert "lesson" in await client.connect()
    finally:
        await client.close()
    viewer = good("viewer", here)
    assert await status_of("GET", f"{RELAY}/watch/{viewer}/index.m3u8") == 404  # not started
    service = good("service")
    assert await status_of("POST", attendance, service, json={"events": []}) == 200
    # A service token is single-use: the same request replayed is refused.
    assert await status_of("POST", attendance, service, json={"events": []}) == 401
    relay_token = good("service", service=tokens.SERVICE_RELAY)
    assert await status_of("GET", internal, relay_token) == 200
    assert await status_of("GET", internal, relay_token) == 401


async def test_a_revoked_viewer_link_stops_at_the_next_segment(
    hs: RunningHomeserver, relay: web.Application
) -> None:
    teacher, _room, path, created = await broadcast_in_a_room(hs)
    bid = created["broadcast_id"]
    revoked_link = created["viewer_link"]["url"]
    status, other = await api(hs, teacher, "POST", f"{path}/{bid}/viewer_links", {})
    assert status == 200
    kept_link = other["url"]
    status, speaker = await api(hs, teacher, "POST", f"{path}/{bid}/speaker_token", {})
    assert status == 200
    whip = await publish(RELAY, bid, speaker["token"], H264Track(luma=90), None)

    async def segments(link: str) -> list[str]:
        async with aiohttp.ClientSession() as http, http.get(link + "index.m3u8") as resp:
            if resp.status == 404:  # not started yet
                return []
            assert resp.status == 200, await resp.text()
            text = await resp.text()
        return [line for line in text.splitlines() if line.endswith(".ts")]

    async def until(check: Callable[[list[str]], bool], link: str, what: str) -> list[str]:
        deadline = time.monotonic() + 60
        while not check(names := await segments(link)):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.1)
        return names

    try:
        # The viewer watches: the relay now holds a fresh "not revoked" answer for the link.
        names = await until(lambda n: len(n) >= 2, revoked_link, "two segments")
        assert await status_of("GET", revoked_link + names[-1]) == 200
        status, _ = await api(
            hs,
            teacher,
            "POST",
            f"{path}/{bid}/viewer_links/{created['viewer_link']['link_id']}/revoke",
            {},
        )
        assert status == 200
        at_revoke = set(await segments(kept_link))
        # Two segments cut after the revocation: the one being written then, and the next.
        names = await until(
            lambda n: len(set(n) - at_revoke) >= 2, kept_link, "two segments after the revocation"
        )
        newest = names[-1]
        assert await status_of("GET", kept_link + newest) == 200
        async with aiohttp.ClientSession() as http, http.get(revoked_link + newest) as resp:
            assert resp.status == 403
            assert "отозвала" in (await resp.json())["error"]
        assert await status_of("GET", revoked_link + "index.m3u8") == 403
    finally:
        await whip.pc.close()
