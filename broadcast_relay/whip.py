"""WHIP ingest (RFC 9725): a speaker POSTs an SDP offer and gets the answer and a Location.

``POST /whip/{broadcast_id}`` (``?kind=screen`` for a screen-share session) with
``Authorization: Bearer <media token from the module>``; ``DELETE`` on the returned
``Location`` ends that session. The answer carries every ICE candidate (aiortc gathers
before answering), so trickle ICE (``PATCH``) is refused with 405 as the RFC allows.
H.264 (packetization-mode 1) is preferred; VP8 is accepted and transcoded once.
"""

import logging
from typing import Any

from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)

from parta_common.tokens import MediaClaims, TokenError, verify_media_token
from sfu.aiortc_hooks import pace_remb, read_in_bursts

from . import messages as m
from .broadcast import Speaker
from .directory import DirectoryUnavailable
from .service import BroadcastService

logger = logging.getLogger(__name__)

SERVICE_KEY: web.AppKey[BroadcastService] = web.AppKey("broadcast_service", BroadcastService)

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Expose-Headers": "Location",
}


def video_codec_preferences() -> list[Any]:
    """H.264 with packetization-mode 1 first, then VP8, then their retransmission codecs."""
    caps = RTCRtpReceiver.getCapabilities("video")
    assert caps is not None
    codecs = caps.codecs
    h264 = [
        c
        for c in codecs
        if c.mimeType.lower() == "video/h264"
        and str(c.parameters.get("packetization-mode", "0")) == "1"
    ]
    vp8 = [c for c in codecs if c.mimeType.lower() == "video/vp8"]
    rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx"]
    return h264 + vp8 + rtx


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _claims(request: web.Request) -> MediaClaims | web.Response:
    token = _bearer(request)
    if token is None:
        return m.error(401, "M_MISSING_TOKEN", m.NO_TOKEN)
    service = request.app[SERVICE_KEY]
    try:
        return verify_media_token(token, service.config.token_secret)
    except TokenError as e:
        return m.error(401, "M_UNKNOWN_TOKEN", m.BAD_TOKEN, reason=str(e))


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={**CORS, "Accept-Post": "application/sdp"})


async def publish(request: web.Request) -> web.StreamResponse:
    broadcast_id = request.match_info["broadcast_id"]
    service = request.app[SERVICE_KEY]
    claims = _claims(request)
    if isinstance(claims, web.Response):
        return claims
    if request.content_type != "application/sdp":
        return m.error(415, "M_BAD_JSON", m.NOT_SDP)
    try:
        info = await service.directory.broadcast(broadcast_id, fresh=True)
    except DirectoryUnavailable:
        return m.error(503, "M_UNAVAILABLE", m.UNAVAILABLE)
    if info is None or claims.room_id != info.room_id:
        return m.error(404, "M_NOT_FOUND", m.NO_SUCH_BROADCAST)
    if info.ended:
        return m.error(409, "M_FORBIDDEN", m.BROADCAST_ENDED)
    if claims.user_id not in info.speakers and not claims.grants.moderate:
        return m.error(403, "M_FORBIDDEN", m.NOT_A_SPEAKER)
    screen = request.query.get("kind") == "screen"
    grants = claims.grants
    if screen and not grants.publish_screen:
        return m.error(403, "M_FORBIDDEN", m.NO_SCREEN_GRANT)
    if not (grants.publish_camera or grants.publish_microphone or grants.publish_screen):
        return m.error(403, "M_FORBIDDEN", m.NOT_A_SPEAKER)

    offer = await request.text()
    broadcast = service.get_or_start(info)
    ice = [RTCIceServer(urls=url) for url in service.config.ice_servers]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
    session_id = broadcast.new_session_id()
    speaker = Speaker(session_id, claims.user_id, claims.display_name, pc, screen)
    broadcast.attach(speaker)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            await broadcast.detach(session_id)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        if not pc.getTransceivers():
            raise ValueError("the offer has no audio or video")
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                transceiver.setCodecPreferences(video_codec_preferences())
        await pc.setLocalDescription(await pc.createAnswer())
        # Media from the socket straight to the receivers, no task hop per packet.
        read_in_bursts(pc)
        for transceiver in pc.getTransceivers():
            pace_remb(transceiver.receiver)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        await broadcast.detach(session_id)
        return m.error(400, "M_BAD_JSON", m.BAD_SDP, reason=str(e) or type(e).__name__)
    logger.info(
        "broadcast %s: %s publishes (%s, session %s)",
        broadcast_id,
        claims.user_id,
        "screen" if screen else "camera",
        session_id,
    )
    return web.Response(
        status=201,
        text=pc.localDescription.sdp,
        content_type="application/sdp",
        headers={**CORS, "Location": f"/whip/{broadcast_id}/{session_id}"},
    )


async def unpublish(request: web.Request) -> web.StreamResponse:
    broadcast_id = request.match_info["broadcast_id"]
    session_id = request.match_info["session_id"]
    service = request.app[SERVICE_KEY]
    claims = _claims(request)
    if isinstance(claims, web.Response):
        return claims
    broadcast = service.broadcasts.get(broadcast_id)
    speaker = broadcast.speakers.get(session_id) if broadcast else None
    if broadcast is None or speaker is None:
        return m.error(404, "M_NOT_FOUND", m.NO_SUCH_SESSION)
    if speaker.user_id != claims.user_id and not claims.grants.moderate:
        return m.error(403, "M_FORBIDDEN", m.NOT_YOUR_SESSION)
    await broadcast.detach(session_id)
    return web.Response(status=200, headers=CORS)


async def patch(request: web.Request) -> web.StreamResponse:
    response = m.error(405, "M_UNRECOGNIZED", m.NO_TRICKLE)
    response.headers.update({**CORS, "Allow": "POST, DELETE, OPTIONS"})
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_route("OPTIONS", "/whip/{broadcast_id}", options)
    app.router.add_post("/whip/{broadcast_id}", publish)
    app.router.add_route("OPTIONS", "/whip/{broadcast_id}/{session_id}", options)
    app.router.add_delete("/whip/{broadcast_id}/{session_id}", unpublish)
    app.router.add_route("PATCH", "/whip/{broadcast_id}/{session_id}", patch)
