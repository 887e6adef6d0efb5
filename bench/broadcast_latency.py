"""Glass-to-glass latency with 1 s segments: a speaker's frame to a Chromium viewer's screen.

Each segment carries EXT-X-PROGRAM-DATE-TIME: the wall-clock time its first frame
reached the relay (speaker and relay share this machine, so capture → relay is the WebRTC
hop, ~1 frame). hls.js reports the programme time of the frame on screen
(``hls.playingDate``); latency = now − that, sampled once a second for ``seconds`` after
playback settles. ``python -m bench.broadcast_latency [seconds]``
"""

import asyncio
import statistics
import sys
import time

from playwright.async_api import async_playwright

from bench.broadcast_common import BID, BenchRelay
from tests.broadcast_support import H264Track, ToneTrack, publish
from tests.browser import CHROMIUM
from tests.browser import FLAGS as CHROMIUM_FLAGS


async def main(seconds: float) -> None:
    relay = BenchRelay()
    await relay.start()
    # 640x360 at 30 fps, a keyframe only when the relay asks (as browsers do).
    speaker = await publish(
        relay.url, BID, relay.speaker_token, H264Track(70, 640, 360, fps=30), ToneTrack(True)
    )
    samples: list[float] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = await browser.new_page()
            await page.goto(relay.link)
            deadline = time.monotonic() + 60
            while not await page.evaluate("!!(window.partaHls && window.partaHls.playingDate)"):
                if time.monotonic() > deadline:
                    raise SystemExit("the viewer did not start playing")
                await asyncio.sleep(0.25)
            await asyncio.sleep(5)  # let hls.js reach its live edge
            for _ in range(int(seconds)):
                samples.append(
                    await page.evaluate("(Date.now() - window.partaHls.playingDate.getTime())/1000")
                )
                await asyncio.sleep(1)
            await browser.close()
    finally:
        await speaker.pc.close()
        await relay.stop()
    print(f"segment target 1.0 s; playlist as written by the relay: {len(samples)} samples")
    print(
        f"glass-to-glass latency: median {statistics.median(samples):.2f} s, "
        f"min {min(samples):.2f} s, max {max(samples):.2f} s"
    )


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0))
