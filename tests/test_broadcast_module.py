"""Broadcasts end to end: real Synapse with the module, the relay asking it, aiortc speakers."""

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from broadcast_relay import SERVICE_KEY
from parta_common.tokens import sign_viewer_link
from tests.broadcast_support import (
    H264Track,
    ToneTrack,
    decode_lumas,
    homeserver_with_media,
    publish,
    relay_asking,
)
from tests.broadcast_support import module_api as api
from tests.harness import RunningHomeserver, User, free_port

SECRET = "module-test-secret-0123456789abcdef-0123456789"
RELAY_PORT = free_port()
RELAY = f"http://127.0.0.1:{RELAY_PORT}"


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with homeserver_with_media(tmp_path_factory.mktemp("bc-hs"), SECRET, RELAY) as running:
        yield running


@pytest.fixture
async def relay(hs: RunningHomeserver, tmp_path: Path) -> AsyncIterator[web.Application]:
    async with relay_asking(hs, SECRET, RELAY_PORT, tmp_path, link_cache_seconds=1.0) as app:
        yield app


async def wait_for(check: Callable[[], Any], what: str, deadline_s: float = 30.0) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def make_room(hs: RunningHomeserver, teacher: User, *members: User) -> str:
    room = hs.request(
        "POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, teacher.access_token
    )
    room_id: str = room["room_id"]
    quoted = urllib.parse.quote(room_id)
    for member in members:
        hs.request(
            "POST",
            f"/_matrix/client/v3/rooms/{quoted}/invite",
            {"user_id": member.user_id},
            teacher.access_token,
        )
        hs.request("POST", f"/_matrix/client/v3/rooms/{quoted}/join", {}, member.access_token)
    return room_id


async def fetch(url: str) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def test_refusals_and_validation(hs: RunningHomeserver) -> None:
    teacher, student = hs.register("teacher"), hs.register("student")
    room = make_room(hs, teacher, student)
    path = f"rooms/{urllib.parse.quote(room)}/broadcasts"
    status, body = await api(
        hs, student, "POST", path, {"title": "x", "speakers": [student.user_id]}
    )
    assert status == 403
    assert body["errcode"] == "M_FORBIDDEN"
    assert " / " in body["error"]
    status, body = await api(hs, teacher, "POST", path, {"title": "", "speakers": []})
    assert status == 400
    assert body["errcode"] == "M_BAD_JSON"
    status, body = await api(
        hs,
        teacher,
        "POST",
        path,
        {"title": "t", "speakers": [teacher.user_id], "starts_at": 10, "ends_at": 5},
    )
    assert status == 400
    assert body["errcode"] == "M_BAD_JSON"
    # Nothing was stored by the refused requests.
    status, body = await api(hs, teacher, "GET", path)
    assert status == 200
    assert body["broadcasts"] == []
    # The internal API wants the relay's service token.
    status, body = await api(hs, teacher, "GET", "internal/viewer_links/x")
    assert status == 401


async def test_teacher_broadcasts_two_speakers_viewer_watches_link_revoked_then_ended(
    hs: RunningHomeserver, relay: web.Application
) -> None:
    teacher, colleague, parent = hs.register("teacher"), hs.register("colleague"), hs.register("p")
    room = make_room(hs, teacher, colleague, parent)
    quoted = urllib.parse.quote(room)
    path = f"rooms/{quoted}/broadcasts"
    status, created = await api(
        hs,
        teacher,
        "POST",
        path,
        {
            "title": "Последний звонок",
            "speakers": [teacher.user_id, colleague.user_id],
            "public": True,
            "recording": True,
        },
    )
    assert status == 200, created
    bid = created["broadcast_id"]
    link = created["viewer_link"]["url"]
    assert link.startswith(f"{RELAY}/watch/")
    state = hs.request(
        "GET",
        f"/_matrix/client/v3/rooms/{quoted}/state/org.parta.broadcast/{bid}",
        token=teacher.access_token,
    )
    assert state["status"] == "scheduled"
    assert state["title"] == "Последний звонок"
    assert state["speakers"] == [teacher.user_id, colleague.user_id]

    # A parent is no speaker; the two speakers get WHIP tokens and go live.
    status, _ = await api(hs, parent, "POST", f"{path}/{bid}/speaker_token", {})
    assert status == 403
    tokens = []
    for user in (teacher, colleague):
        status, answer = await api(hs, user, "POST", f"{path}/{bid}/speaker_token", {})
        assert status == 200
        assert answer["whip_url"] == f"{RELAY}/whip/{bid}"
        assert answer["speaker_page_url"].startswith(f"{RELAY}/speak/{bid}#token=")
        tokens.append(answer["token"])
    one = await publish(RELAY, bid, tokens[0], H264Track(luma=60), ToneTrack(loud=True))
    two = await publish(RELAY, bid, tokens[1], H264Track(luma=180), ToneTrack(loud=False))

    # The viewer with only the link gets the page, the playlist and segments.
    status, page, _ = await fetch(link)
    assert status == 200
    assert b"hls.min.js" in page
    playlist: bytes = b""

    async def two_segments() -> bool:
        nonlocal playlist
        status, playlist, _ = await fetch(link + "index.m3u8")
        return status == 200 and playlist.count(b".ts") >= 2

    await wait_for(two_segments, "two segments in the playlist")
    names = [line for line in playlist.decode().splitlines() if line.endswith(".ts")]
    # The relay told the module: the state now says the broadcast is live.
    await wait_for(
        lambda: (
            hs.request(
                "GET",
                f"/_matrix/client/v3/rooms/{quoted}/state/org.parta.broadcast/{bid}",
                token=teacher.access_token,
            )["status"]
            == "live"
        ),
        "the live status",
    )
    status, data, headers = await fetch(link + names[-1])
    assert status == 200
    assert "immutable" in headers["Cache-Control"]
    segment = Path(relay[SERVICE_KEY].config.data_dir) / "got.ts"
    segment.write_bytes(data)
    lumas = decode_lumas([segment])
    assert lumas
    assert all(abs(v - 60) < 12 for v in lumas)

    # A link signed long ago has expired; a forged one is refused.
    old = sign_viewer_link(
        SECRET, bid, created["viewer_link"]["link_id"], 60, now=time.time() - 3600
    )
    status, body, _ = await fetch(f"{RELAY}/watch/{old}/index.m3u8")
    assert status == 410
    assert b"M_FORBIDDEN" in body
    status, page, _ = await fetch(f"{RELAY}/watch/{old}/")
    assert status == 410
    assert "истёк".encode() in page
    assert b"expired" in page

    # The teacher revokes the link: the relay refuses it within its cache time.
    status, _ = await api(
        hs,
        teacher,
        "POST",
        f"{path}/{bid}/viewer_links/{created['viewer_link']['link_id']}/revoke",
        {},
    )
    assert status == 200

    async def refused() -> bool:
        status, body, _ = await fetch(link + "index.m3u8")
        return status == 403 and "отозвала" in json.loads(body)["error"]

    await wait_for(refused, "the revoked link to be refused")

    # A new link works; the teacher ends the broadcast and the playlist closes.
    status, fresh = await api(hs, teacher, "POST", f"{path}/{bid}/viewer_links", {})
    assert status == 200
    status, _ = await api(hs, teacher, "POST", f"{path}/{bid}/end", {})
    assert status == 200
    state = hs.request(
        "GET",
        f"/_matrix/client/v3/rooms/{quoted}/state/org.parta.broadcast/{bid}",
        token=teacher.access_token,
    )
    assert state["status"] == "ended"

    async def closed() -> bool:
        status, body, _ = await fetch(fresh["url"] + "index.m3u8")
        return status == 200 and b"#EXT-X-ENDLIST" in body

    await wait_for(closed, "the playlist to end")
    await one.pc.close()
    await two.pc.close()

    # The recording appears in the room: an m.video from the teacher, a playable MP4.
    def recording() -> dict[str, Any] | None:
        answer = hs.request(
            "GET",
            f"/_matrix/client/v3/rooms/{quoted}/messages?dir=b&limit=20",
            token=teacher.access_token,
        )
        for event in answer["chunk"]:
            if event["type"] == "m.room.message" and event["content"].get("msgtype") == "m.video":
                found: dict[str, Any] = event
                return found
        return None

    video = await wait_for(recording, "the recording in the room", deadline_s=60)
    assert video["sender"] == teacher.user_id
    assert video["content"]["info"]["mimetype"] == "video/mp4"
    server, media_id = video["content"]["url"].removeprefix("mxc://").split("/")
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{hs.base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
            headers={"Authorization": f"Bearer {teacher.access_token}"},
        ) as resp,
    ):
        assert resp.status == 200
        mp4 = Path(relay[SERVICE_KEY].config.data_dir) / "downloaded.mp4"
        mp4.write_bytes(await resp.read())
    assert len(decode_lumas([mp4])) >= 15
    # An ended broadcast takes no more speakers.
    status, body = await api(hs, teacher, "POST", f"{path}/{bid}/speaker_token", {})
    assert status == 409 and body["errcode"] == "M_BAD_STATE", body


async def test_a_school_broadcast_is_recorded_into_the_schools_documents(
    hs: RunningHomeserver,
) -> None:
    """The relay uploads as the robot recorder; the module posts the recording into the
    documents room as its service account, naming the creator. No route hands the relay
    (or whoever holds the secret) a login for a person."""
    import jwt

    from parta_common.tokens import SERVICE_RELAY, SERVICE_SFU, sign_service_token
    from tests.roster_helpers import build_school

    school = build_school(hs, hs.register("op", admin=True))
    teacher = school.teacher
    chat = school.class_a["rooms"]["class_chat"]
    path = f"rooms/{urllib.parse.quote(chat)}/broadcasts"
    status, created = await api(
        hs,
        teacher,
        "POST",
        path,
        {"title": "Последний звонок", "speakers": [teacher.user_id], "recording": True},
    )
    assert status == 200, created
    bid = created["broadcast_id"]
    status, _ = await api(hs, teacher, "POST", f"{path}/{bid}/end", {})
    assert status == 200
    # An old-style service token (signed with the shared secret itself), a token of the
    # SFU's lessons and a media token are all refused on the relay's routes.
    now = int(time.time())
    old_style = jwt.encode(
        {"iss": "parta", "aud": "parta-module", "sub": SERVICE_RELAY, "iat": now, "exp": now + 60},
        SECRET,
        algorithm="HS256",
    )
    from parta_common.roles import Role
    from parta_common.tokens import grant_for, sign_media_token

    media = sign_media_token(SECRET, chat, teacher.user_id, "t", "teacher", grant_for(Role.TEACHER))

    def relay_auth() -> dict[str, str]:
        # The relay signs a token per request; the module accepts each one once.
        return {"Authorization": f"Bearer {sign_service_token(SECRET, SERVICE_RELAY)}"}

    relay = relay_auth()
    internal = f"{hs.api_url}/internal/broadcasts/{bid}"
    async with aiohttp.ClientSession() as http:
        for bad in (old_style, sign_service_token(SECRET, SERVICE_SFU), media):
            async with http.post(
                f"{internal}/recording_upload", json={}, headers={"Authorization": f"Bearer {bad}"}
            ) as resp:
                assert resp.status == 401, await resp.text()
                assert (await resp.json())["errcode"] == "M_UNKNOWN_TOKEN"
        # The route that minted the creator's login is gone, whatever the token.
        for token in (old_style, relay["Authorization"][7:]):
            async with http.post(
                f"{internal}/recording_login", json={}, headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                assert resp.status == 404
        async with http.post(f"{internal}/recording_upload", json={}, headers=relay) as resp:
            assert resp.status == 200
            grant = await resp.json()
        # The same token again (a replayed request) is refused.
        async with http.post(f"{internal}/recording_upload", json={}, headers=relay) as resp:
            assert resp.status == 401
            assert (await resp.json())["errcode"] == "M_UNKNOWN_TOKEN"
        recorder = grant["user_id"]
        assert recorder != teacher.user_id and recorder.endswith(":" + hs.server_name)
        login = {"type": "m.login.token", "token": grant["login_token"]}
        async with http.post(f"{hs.base_url}/_matrix/client/v3/login", json=login) as resp:
            assert resp.status == 200
            signed_in = await resp.json()
        assert signed_in["user_id"] == recorder
        auth = {"Authorization": "Bearer " + signed_in["access_token"]}
        async with http.post(
            f"{hs.base_url}/_matrix/media/v3/upload",
            data=b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64),
            headers={**auth, "Content-Type": "video/mp4"},
        ) as resp:
            assert resp.status == 200
            content_uri = (await resp.json())["content_uri"]
        # The recorder is in no room, and may not create, join or invite into one.
        joined = hs.request(
            "GET", "/_matrix/client/v3/joined_rooms", token=signed_in["access_token"]
        )
        assert joined["joined_rooms"] == []
        public = hs.request(
            "POST",
            "/_matrix/client/v3/createRoom",
            {"preset": "public_chat", "name": "открытая"},
            token=teacher.access_token,
        )["room_id"]
        for what, url, body in (
            ("create", f"{hs.base_url}/_matrix/client/v3/createRoom", {"name": "spam"}),
            (
                "join a public room",
                f"{hs.base_url}/_matrix/client/v3/join/{urllib.parse.quote(public)}",
                {},
            ),
            (
                "join a school room",
                f"{hs.base_url}/_matrix/client/v3/join/"
                f"{urllib.parse.quote(school.rooms['documents'])}",
                {},
            ),
        ):
            async with http.post(url, json=body, headers=auth) as resp:
                assert resp.status == 403, (what, await resp.text())
                if what != "join a school room":  # (the roster refuses that one first)
                    assert "только загружает" in (await resp.json())["error"]
        # Media from another server is refused; then the module posts it.
        async with http.post(
            f"{internal}/recording",
            json={"content_uri": "mxc://elsewhere.example/abc", "size": 1},
            headers=relay_auth(),
        ) as resp:
            assert resp.status == 400
            assert (await resp.json())["errcode"] == "M_INVALID_PARAM"
        posted_body = {"content_uri": content_uri, "size": 88, "duration": 1000, "w": 64, "h": 48}
        async with http.post(
            f"{internal}/recording", json=posted_body, headers=relay_auth()
        ) as resp:
            assert resp.status == 200, await resp.text()
            posted = await resp.json()
    assert posted["room_id"] == school.rooms["documents"]
    event = hs.request(
        "GET",
        f"/_matrix/client/v3/rooms/{urllib.parse.quote(posted['room_id'])}/event/"
        f"{urllib.parse.quote(posted['event_id'])}",
        token=school.admin.access_token,
    )
    assert event["sender"] == posted["sender"] != teacher.user_id
    assert event["content"]["url"] == content_uri
    assert event["content"]["org.parta.document"]["title"] == "Последний звонок"
    assert teacher.user_id in event["content"]["org.parta.document"]["description"]
    assert event["content"]["org.parta.broadcast"]["created_by"] == teacher.user_id
