"""aiortc speakers → WHIP → relay → HLS, decoded back with PyAV."""

import asyncio
import fractions
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import aiortc.rtcrtpreceiver
import av
import pytest
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from broadcast_relay import SERVICE_KEY, BroadcastConfig, setup_broadcasts
from broadcast_relay.broadcast import Broadcast
from broadcast_relay.directory import BroadcastInfo, LinkInfo
from parta_common.roles import Role
from parta_common.tokens import grant_for, sign_media_token, sign_viewer_link
from tests.broadcast_support import (
    H264Track,
    StaticDirectory,
    ToneTrack,
    decode_lumas,
    publish,
)
from tests.harness import free_port

SECRET = "test-secret-for-broadcasts-0123456789"
ROOM = "!school-hall"
BID = "bc-test-1"


async def wait_for(check: Callable[[], bool], what: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Relay:
    def __init__(self, url: str, directory: StaticDirectory, app: web.Application) -> None:
        self.url = url
        self.directory = directory
        self.app = app

    def broadcast(self, bid: str = BID) -> Broadcast:
        return self.app[SERVICE_KEY].broadcasts[bid]


@pytest.fixture
def decoders_created(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every decoder aiortc's receivers create in this test, by codec name."""
    made: list[str] = []
    real = aiortc.rtcrtpreceiver.get_decoder  # type: ignore[attr-defined]

    def recording(codec):  # type: ignore[no-untyped-def]
        made.append(codec.name)
        return real(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", recording)
    return made


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    directory = StaticDirectory()
    directory.broadcasts[BID] = BroadcastInfo(
        BID, ROOM, "Последний звонок", "live", ("@anna:school", "@boris:school"), True, False
    )
    directory.links["link-1"] = LinkInfo("link-1", BID, revoked=False)
    config = BroadcastConfig(token_secret=SECRET, data_dir=str(tmp_path), listen_port=free_port())
    app = web.Application()
    setup_broadcasts(app, config, directory)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", config.listen_port)
    await site.start()
    try:
        yield Relay(f"http://127.0.0.1:{config.listen_port}", directory, app)
    finally:
        await runner.cleanup()


def speaker_token(user: str, room: str = ROOM, role: Role = Role.TEACHER) -> str:
    return sign_media_token(SECRET, room, user, user, role.value, grant_for(role))


async def test_two_speakers_become_hls_switched_at_keyframes_without_decoding(
    relay: Relay, decoders_created: list[str]
) -> None:
    anna = await publish(
        relay.url, BID, speaker_token("@anna:school"), H264Track(luma=40), ToneTrack(loud=True)
    )
    boris = await publish(
        relay.url, BID, speaker_token("@boris:school"), H264Track(luma=200), ToneTrack(False)
    )
    broadcast = relay.broadcast()
    await wait_for(lambda: len(broadcast.writer.segments) >= 3, "three segments with Anna")
    assert broadcast.current is not None
    assert broadcast.current.speaker.user_id == "@anna:school"
    # Boris starts talking, Anna stops: the picture follows him.
    assert anna.audio is not None
    assert boris.audio is not None
    anna.audio.loud, boris.audio.loud = False, True
    await wait_for(
        lambda: (
            broadcast.current is not None and broadcast.current.speaker.user_id == "@boris:school"
        ),
        "the switch to Boris",
    )
    switched_at = len(broadcast.writer.all_segments)
    await wait_for(
        lambda: len(broadcast.writer.all_segments) >= switched_at + 3, "Boris's segments"
    )
    await anna.pc.close()
    await boris.pc.close()
    await broadcast.end()

    segments = [broadcast.directory / s.name for s in broadcast.writer.all_segments]
    lumas = decode_lumas(segments)
    assert len(lumas) >= 5 * 15 * 0.8  # about 15 fps over more than five seconds
    # Every frame is one speaker's picture, Anna's first and Boris's last, one switch.
    kinds = ["anna" if abs(v - 40) < 12 else "boris" if abs(v - 200) < 12 else "?" for v in lumas]
    assert "?" not in kinds
    assert kinds[0] == "anna"
    assert kinds[-1] == "boris"
    assert sum(1 for a, b in itertools.pairwise(kinds) if a != b) == 1
    # Each segment starts with a keyframe the viewer can start from.
    for path in segments:
        with av.open(str(path)) as container:
            if not container.streams.video:
                continue
            video = [p for p in container.demux(video=0) if p.size]
            if video:  # (a segment before the first picture has audio only)
                assert video[0].is_keyframe, path.name
    # The relay asked for keyframes (segment boundaries and the switch).
    assert anna.video is not None
    assert boris.video is not None
    assert anna.video.keyframe_requests >= 3
    assert boris.video.keyframe_requests >= 1
    # ... and never decoded video: aiortc made only Opus decoders.
    assert decoders_created
    assert set(decoders_created) == {"opus"}
    # Audio went in as AAC.
    with av.open(str(segments[-2])) as container:
        assert container.streams.audio[0].codec_context.name == "aac"


async def test_whip_refusals_and_session_end(relay: Relay) -> None:
    url = f"{relay.url}/whip/{BID}"
    sdp = {"Content-Type": "application/sdp"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data="v=0", headers=sdp) as resp:
            assert resp.status == 401
            assert (await resp.json())["errcode"] == "M_MISSING_TOKEN"
        bearer = {"Authorization": "Bearer " + speaker_token("@anna:school")}
        async with http.post(url, json={}, headers=bearer) as resp:
            assert resp.status == 415
        # Not a listed speaker and no moderator: refused (a room's moderators may publish).
        eve = speaker_token("@eve:school", role=Role.STUDENT)
        stranger = {"Authorization": "Bearer " + eve, **sdp}
        async with http.post(url, data="v=0", headers=stranger) as resp:
            assert resp.status == 403
            assert " / " in (await resp.json())["error"]
        # A viewer link is not a speaker's media token (keys differ per purpose).
        link = sign_viewer_link(SECRET, BID, "link-1", 600)
        async with http.post(
            url, data="v=0", headers={"Authorization": "Bearer " + link, **sdp}
        ) as resp:
            assert resp.status == 401
        other_room = {"Authorization": "Bearer " + speaker_token("@anna:school", "!x"), **sdp}
        async with http.post(url, data="v=0", headers=other_room) as resp:
            assert resp.status == 404
        async with http.post(url, data="not sdp", headers={**bearer, **sdp}) as resp:
            assert resp.status == 400
        async with http.options(url) as resp:
            assert resp.status == 204
            assert "Location" in resp.headers["Access-Control-Expose-Headers"]
    anna = await publish(relay.url, BID, speaker_token("@anna:school"), H264Track(40), None)
    broadcast = relay.broadcast()
    assert len(broadcast.speakers) == 1
    async with aiohttp.ClientSession() as http:
        session = relay.url + anna.location
        async with http.patch(session, data="a=candidate") as resp:
            assert resp.status == 405
        boris = {"Authorization": "Bearer " + speaker_token("@boris:school", role=Role.STUDENT)}
        async with http.delete(session, headers=boris) as resp:
            assert resp.status == 403
        anna_auth = {"Authorization": "Bearer " + speaker_token("@anna:school")}
        async with http.delete(session, headers=anna_auth) as resp:
            assert resp.status == 200
        async with http.delete(session, headers=anna_auth) as resp:
            assert resp.status == 404
    assert broadcast.speakers == {}
    await anna.pc.close()


async def test_viewer_http_cache_headers_and_count(relay: Relay) -> None:
    link = f"{relay.url}/watch/{sign_viewer_link(SECRET, BID, 'link-1', 600)}/"
    speaker = await publish(relay.url, BID, speaker_token("@anna:school"), H264Track(40), None)
    broadcast = relay.broadcast()
    await wait_for(lambda: len(broadcast.writer.segments) >= 2, "two segments")
    async with aiohttp.ClientSession() as http:
        async with http.get(link + "index.m3u8") as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "public, max-age=1"
            assert resp.content_type == "application/vnd.apple.mpegurl"
            etag = resp.headers["ETag"]
            playlist = await resp.text()
        async with http.get(link + "index.m3u8", headers={"If-None-Match": etag}) as resp:
            assert resp.status in (200, 304)  # 200 only if a segment was cut meanwhile
        name = [line for line in playlist.splitlines() if line.endswith(".ts")][-1]
        async with http.get(link + name) as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert "ETag" in resp.headers
            assert "Last-Modified" in resp.headers
        async with http.get(link + "seg-abcdef-999999.ts") as resp:
            assert resp.status == 404
        async with http.get(link + "../../etc/passwd") as resp:
            assert resp.status == 404
        # Two viewers seen within the window; one of them twice.
        for viewer in ("a", "b", "a"):
            async with http.get(link + "status", params={"viewer": viewer}) as resp:
                status = await resp.json()
                assert resp.headers["Cache-Control"] == "no-store"
        assert status == {
            "status": "live",
            "title": "Последний звонок",
            "viewers": 2,
            "time": status["time"],
        }
        # Unknown link IDs and forged links are refused with a bilingual page.
        unknown = sign_viewer_link(SECRET, BID, "no-such-link", 600)
        async with http.get(f"{relay.url}/watch/{unknown}/index.m3u8") as resp:
            assert resp.status == 403
        # A speaker's media token is not a viewer link.
        media = speaker_token("@anna:school")
        async with http.get(f"{relay.url}/watch/{media}/index.m3u8") as resp:
            assert resp.status == 403
        async with http.get(f"{relay.url}/watch/forged.token.here/") as resp:
            assert resp.status == 403
            page = await resp.text()
            assert "недействительна" in page
            assert "not valid" in page
        relay.directory.links["link-1"] = LinkInfo("link-1", BID, revoked=True)
    await speaker.pc.close()


class Vp8Track(MediaStreamTrack):
    """Raw frames; aiortc encodes them as VP8 (a browser that offers nothing else)."""

    kind = "video"

    def __init__(self, luma: int) -> None:
        super().__init__()
        self.luma = luma
        self.index = 0
        self.start = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(max(0.0, self.start + self.index / 15 - time.monotonic()))
        frame = av.VideoFrame(320, 240, "yuv420p")
        frame.planes[0].update(bytes([self.luma]) * frame.planes[0].buffer_size)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = self.index * 6000
        frame.time_base = fractions.Fraction(1, 90_000)
        self.index += 1
        return frame


async def test_vp8_only_speaker_is_transcoded_once(relay: Relay) -> None:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver(Vp8Track(luma=150), direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video")
    transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/VP8"])
    await pc.setLocalDescription(await pc.createOffer())
    headers = {
        "Authorization": "Bearer " + speaker_token("@anna:school"),
        "Content-Type": "application/sdp",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{relay.url}/whip/{BID}", data=pc.localDescription.sdp, headers=headers) as r,
    ):
        assert r.status == 201
        answer = await r.text()
    assert "VP8" in answer
    assert "H264" not in answer
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    broadcast = relay.broadcast()
    try:
        await wait_for(lambda: len(broadcast.writer.segments) >= 3, "segments from VP8")
        source = next(iter(broadcast.speakers.values())).sources[0]
        assert source.transcoder is not None
        await broadcast.end()
        segments = [broadcast.directory / s.name for s in broadcast.writer.all_segments]
        lumas = decode_lumas(segments)
        assert len(lumas) >= 15
        assert all(abs(v - 150) < 12 for v in lumas)
    finally:
        await pc.close()


async def test_a_screen_share_takes_the_picture_and_gives_it_back(relay: Relay) -> None:
    anna = await publish(
        relay.url, BID, speaker_token("@anna:school"), H264Track(luma=40), ToneTrack(loud=True)
    )
    broadcast = relay.broadcast()
    await wait_for(
        lambda: broadcast.current is not None and not broadcast.current.screen, "Anna's camera"
    )
    # Boris shares his screen (a second kind of WHIP session): it wins though he is silent.
    screen = await publish(
        relay.url, BID, speaker_token("@boris:school"), H264Track(luma=200), None, screen=True
    )
    await wait_for(
        lambda: broadcast.current is not None and broadcast.current.screen, "the screen share"
    )
    assert broadcast.current is not None
    assert broadcast.current.speaker.user_id == "@boris:school"
    # He stops sharing (WHIP DELETE): the picture goes back to Anna's camera.
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer " + speaker_token("@boris:school")}
        async with http.delete(relay.url + screen.location, headers=headers) as resp:
            assert resp.status == 200
    await wait_for(
        lambda: (
            broadcast.current is not None and broadcast.current.speaker.user_id == "@anna:school"
        ),
        "Anna's camera again",
    )
    await screen.pc.close()
    await anna.pc.close()
