"""The baseline the SFU is measured against: aiortc's MediaRelay (decode, re-encode).

``python -m bench.sfu_relay_baseline --port N`` serves ``POST /publish`` and
``POST /subscribe`` (JSON ``{"sdp": offer}`` → ``{"sdp": answer}``) on 127.0.0.1. The
publisher's video is decoded once; every subscriber gets ``MediaRelay.subscribe(track)``,
which its sender encodes again — what an aiortc application does without an SFU core.
"""

import argparse
import asyncio
import logging

from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

TRACK_KEY = web.AppKey("track", asyncio.Future)
PEERS_KEY = web.AppKey("peers", list)
RELAY_KEY = web.AppKey("relay", MediaRelay)


async def publish(request: web.Request) -> web.Response:
    pc = RTCPeerConnection()
    request.app[PEERS_KEY].append(pc)
    future: asyncio.Future[MediaStreamTrack] = request.app[TRACK_KEY]

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not future.done():
            future.set_result(track)

    body = await request.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return web.json_response({"sdp": pc.localDescription.sdp})


async def subscribe(request: web.Request) -> web.Response:
    track = await asyncio.wait_for(asyncio.shield(request.app[TRACK_KEY]), 30)
    pc = RTCPeerConnection()
    request.app[PEERS_KEY].append(pc)
    body = await request.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            transceiver.direction = "sendonly"
            transceiver.sender.replaceTrack(request.app[RELAY_KEY].subscribe(track))
    await pc.setLocalDescription(await pc.createAnswer())
    return web.json_response({"sdp": pc.localDescription.sdp})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build() -> web.Application:
    app = web.Application()
    app[PEERS_KEY] = []
    app[RELAY_KEY] = MediaRelay()
    app.router.add_post("/publish", publish)
    app.router.add_post("/subscribe", subscribe)
    app.router.add_get("/health", health)

    async def close(app: web.Application) -> None:
        for pc in app[PEERS_KEY]:
            await pc.close()

    async def start(app: web.Application) -> None:
        app[TRACK_KEY] = asyncio.get_running_loop().create_future()

    app.on_startup.append(start)
    app.on_shutdown.append(close)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(build(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
