"""Chromium as a subscriber of the real SFU (no Synapse): a video slot that switches
between two aiortc cameras stays one stream Chrome decodes.

The page is the SFU's own lesson page; the test drives its signalling module
(``sfu.js``) with a media token it signs itself, the way the page does after sign-in.
The cameras are pre-encoded clips of different sizes, so Chrome's ``frameWidth`` tells
whose pictures it decodes. Through the switches the SFU rewrites sequence numbers,
timestamps and VP8 picture numbers (``sfu.rtp.Vp8Pictures``); Chrome must decode on
without asking for a keyframe beyond the switch's own.
"""

import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from parta_common.roles import Role
from sfu.client import LessonClient
from sfu.synthetic import ClipTrack, encode_vp8_clip
from tests.browser import chromium
from tests.sfu_support import RunningSfu, running_sfu, token
from tests.test_lesson_page import poll

pytestmark = pytest.mark.browser

ROOM = "!switch:school.test"
# One video slot per subscriber, no audio: every change of camera is a switch.
LIMITS = {"last_n": 1, "pinned_video": 0, "loudest_n": 0, "pinned_audio": 0}

STATS = """async () => {
  const out = {framesDecoded: 0, frameWidth: 0, pliCount: 0, keyFramesDecoded: 0};
  const stats = await window.testConn.pc.getStats();
  stats.forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      out.framesDecoded += r.framesDecoded || 0;
      out.frameWidth = r.frameWidth || out.frameWidth;
      out.pliCount += r.pliCount || 0;
      out.keyFramesDecoded += r.keyFramesDecoded || 0;
    }
  });
  return out;
}"""

JOIN = """async ([token, room]) => {
  const { LessonConnection, socketUrl } = await import("/lesson-assets/sfu.js");
  const conn = new LessonConnection(socketUrl(location.href, room), token);
  window.testConn = conn;
  await conn.connect();
  await conn.startMedia({});
  return conn.slotCounts;
}"""


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSfu]:
    directory: Path = tmp_path_factory.mktemp("sfu-browser")
    with running_sfu(directory, lesson=LIMITS) as running:
        yield running
        assert running.alive(), running.log_text()


@pytest.fixture
async def clients() -> AsyncIterator[list[LessonClient]]:
    made: list[LessonClient] = []
    yield made
    for client in made:
        await client.close()


async def stats(page: Any) -> dict[str, int]:
    result: dict[str, int] = await page.evaluate(STATS)
    return result


async def decodes(page: Any, width: int, frames: int) -> dict[str, int]:
    """Wait until Chrome decodes ``frames`` more pictures ``width`` wide; their stats."""
    await poll(page, f"({STATS})().then(s => s.frameWidth === {width})")
    start = (await stats(page))["framesDecoded"]
    await poll(page, f"({STATS})().then(s => s.framesDecoded >= {start + frames})")
    return await stats(page)


async def camera(sfu: RunningSfu, clients: list[LessonClient], user: str, clip: Any) -> str:
    client = LessonClient(sfu.url, ROOM, token(user, Role.STUDENT, room=ROOM))
    clients.append(client)
    await client.connect()
    await client.start_media({"camera": ClipTrack("video", clip, 30)}, 0, 0)
    return client.id


async def test_chrome_decodes_one_stream_across_slot_switches(
    sfu: RunningSfu, clients: list[LessonClient]
) -> None:
    # Five seconds each: a clip replayed in a loop is not a valid VP8 stream where it
    # wraps (Chrome then asks for a keyframe), and a switch restarts the new camera's
    # clip at its keyframe, so the measured stretches stay inside one pass.
    large = encode_vp8_clip(frames=150, width=320, height=240)
    small = encode_vp8_clip(frames=150, width=160, height=120)
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{sfu.url}/lesson/{urllib.parse.quote(ROOM, safe='')}")
        viewer = token("viewer", Role.STUDENT, room=ROOM)
        assert await page.evaluate(JOIN, [viewer, ROOM]) == {"video": 1, "audio": 0}

        await camera(sfu, clients, "first", large)
        await decodes(page, 320, 20)
        await camera(sfu, clients, "second", small)
        first = clients[0]
        # The first camera turned off: the slot switches to the second, and back when it
        # comes on again (join order).
        for _ in range(3):
            await first.send({"type": "mute_self", "source": "camera", "muted": True})
            await decodes(page, 160, 20)
            await first.send({"type": "mute_self", "source": "camera", "muted": False})
            before = await decodes(page, 320, 20)
        # One more switch: Chrome decodes on without asking for a keyframe of its own.
        await first.send({"type": "mute_self", "source": "camera", "muted": True})
        after = await decodes(page, 160, 30)
        assert after["pliCount"] == before["pliCount"], (before, after)
        assert after["keyFramesDecoded"] > before["keyFramesDecoded"]
        await page.evaluate("window.testConn.leave()")
    assert sfu.alive(), sfu.log_text()
