"""The public side: the viewer page, the playlist and segments, the live status.

Everything lives under the viewer link's own path, ``/watch/{link}/``, so the page
refers to ``index.m3u8`` and segments relatively and a CDN caches per link. Each request
checks the link: signature and expiry (no network), then revocation (the module, cached
for ``link_cache_seconds``, and for at most one segment's length on the playlist and the
segments, so a revoked link stops at the next segment). Playlists are cacheable for half a
segment, segments forever.
"""

import re
import time
from email.utils import formatdate
from html import escape
from importlib import resources
from typing import Final

from aiohttp import web

from parta_common.messages import Message
from parta_common.tokens import TokenError, verify_viewer_link

from . import messages as m
from .broadcast import Broadcast
from .directory import DirectoryUnavailable
from .whip import SERVICE_KEY

TITLE: Final = Message("broadcast_page.watch.title")
SEGMENT: Final = re.compile(r"^seg-[0-9a-f]{6}-\d{6}\.ts$")
SEGMENT_CACHE: Final = "public, max-age=31536000, immutable"
STATIC_CACHE: Final = "public, max-age=3600"


class LinkRefused(Exception):
    def __init__(self, status: int, errcode: str, message: Message) -> None:
        self.status = status
        self.errcode = errcode
        self.message = message


async def _check_link(request: web.Request, per_segment: bool = False) -> str:
    """The broadcast ID the request's link opens, or :class:`LinkRefused`. With
    ``per_segment`` (the playlist and segments) revocation is at most a segment old."""
    service = request.app[SERVICE_KEY]
    try:
        claims = verify_viewer_link(request.match_info["link"], service.config.token_secret)
    except TokenError as e:
        if "expired" in str(e):
            raise LinkRefused(410, "M_FORBIDDEN", m.LINK_EXPIRED) from None
        raise LinkRefused(403, "M_FORBIDDEN", m.LINK_INVALID) from None
    try:
        max_age = service.config.segment_seconds if per_segment else None
        link = await service.directory.viewer_link(claims.link_id, max_age)
    except DirectoryUnavailable:
        raise LinkRefused(503, "M_UNAVAILABLE", m.UNAVAILABLE) from None
    if link is None or link.broadcast_id != claims.broadcast_id:
        raise LinkRefused(403, "M_FORBIDDEN", m.LINK_INVALID)
    if link.revoked:
        raise LinkRefused(403, "M_FORBIDDEN", m.LINK_REVOKED)
    return claims.broadcast_id


def _refusal_page(refused: LinkRefused) -> web.Response:
    msg = refused.message
    body = (
        "<!doctype html><html lang=ru><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(TITLE.format())}</title><body style='font-family:sans-serif;"
        f"max-width:40em;margin:3em auto;padding:0 1em' data-errcode='{refused.errcode}'>"
        f"<h1>{escape(msg.ru)}</h1><p lang=en>{escape(msg.en)}</p></body></html>"
    )
    return web.Response(
        status=refused.status,
        text=body,
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


async def page(request: web.Request) -> web.StreamResponse:
    if not request.path.endswith("/"):
        raise web.HTTPFound(request.path + "/")
    try:
        await _check_link(request)
    except LinkRefused as refused:
        return _refusal_page(refused)
    html = resources.files(__package__).joinpath("static/watch.html").read_text("utf-8")
    return web.Response(
        text=html, content_type="text/html", headers={"Cache-Control": "private, max-age=60"}
    )


def _broadcast(request: web.Request, broadcast_id: str) -> Broadcast | None:
    return request.app[SERVICE_KEY].broadcasts.get(broadcast_id)


async def playlist(request: web.Request) -> web.StreamResponse:
    try:
        broadcast_id = await _check_link(request, per_segment=True)
    except LinkRefused as r:
        return m.error(r.status, r.errcode, r.message)
    broadcast = _broadcast(request, broadcast_id)
    if broadcast is None or not broadcast.writer.playlist:
        return m.error(404, "M_NOT_FOUND", m.NOT_STARTED)
    writer = broadcast.writer
    max_age = 3600 if writer.ended else max(1, int(writer.segment_seconds / 2))
    headers = {
        "Cache-Control": f"public, max-age={max_age}",
        "ETag": writer.playlist_etag,
        "Last-Modified": formatdate(writer.playlist_modified, usegmt=True),
    }
    if request.headers.get("If-None-Match") == writer.playlist_etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        text=writer.playlist, content_type="application/vnd.apple.mpegurl", headers=headers
    )


# A multivariant playlist that names both codecs, so a player sets up its video and audio
# buffers from the start: the first segments of a broadcast may carry audio only (before
# the first picture), and hls.js would otherwise build an audio-only pipeline from them.
MASTER_PLAYLIST = (
    "#EXTM3U\n"
    "#EXT-X-VERSION:3\n"
    "#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=3000000,CODECS="avc1.42e01f,mp4a.40.2"\n'
    "index.m3u8\n"
)


async def master_playlist(request: web.Request) -> web.StreamResponse:
    try:
        await _check_link(request)
    except LinkRefused as r:
        return m.error(r.status, r.errcode, r.message)
    return web.Response(
        text=MASTER_PLAYLIST,
        content_type="application/vnd.apple.mpegurl",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def segment(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    try:
        broadcast_id = await _check_link(request, per_segment=True)
    except LinkRefused as r:
        return m.error(r.status, r.errcode, r.message)
    broadcast = _broadcast(request, broadcast_id)
    path = broadcast.directory / name if broadcast and SEGMENT.match(name) else None
    if path is None or not path.is_file():
        return m.error(404, "M_NOT_FOUND", m.NOT_STARTED)
    return web.FileResponse(
        path, headers={"Cache-Control": SEGMENT_CACHE, "Content-Type": "video/mp2t"}
    )


async def status(request: web.Request) -> web.StreamResponse:
    """Live badge and viewer count; the page calls it every few seconds (never cached)."""
    try:
        broadcast_id = await _check_link(request)
    except LinkRefused as r:
        return m.error(r.status, r.errcode, r.message)
    service = request.app[SERVICE_KEY]
    broadcast = _broadcast(request, broadcast_id)
    viewer = request.query.get("viewer", "")[:64]
    viewers = 0
    if broadcast is not None and viewer:
        viewers = broadcast.saw_viewer(viewer)
    try:
        info = await service.directory.broadcast(broadcast_id)
    except DirectoryUnavailable:
        info = None
    if broadcast is not None:
        state = broadcast.status
    elif info is not None and info.ended:
        state = "ended"
    else:
        state = "waiting"
    return web.json_response(
        {
            "status": state,
            "title": info.title if info else "",
            "viewers": viewers,
            "time": time.time(),
        },
        headers={"Cache-Control": "no-store"},
    )


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in (
        "hls.min.js",
        "texts.js",
        "watch.js",
        "watch.css",
        "speak.js",
        "hls.js-LICENSE.txt",
    ):
        raise web.HTTPNotFound()
    path = resources.files(__package__).joinpath("static", name)
    types = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}
    kind = types[name[name.rfind(".") :]]
    return web.Response(
        body=path.read_bytes(),
        content_type=kind,
        charset="utf-8",
        headers={"Cache-Control": STATIC_CACHE},
    )


async def speak(request: web.Request) -> web.StreamResponse:
    """The speaker page; its WHIP token is in the URL fragment, never sent to a server log."""
    html = resources.files(__package__).joinpath("static/speak.html").read_text("utf-8")
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/speak/{broadcast_id}", speak)
    app.router.add_get("/watch/{link}", page)
    app.router.add_get("/watch/{link}/", page)
    app.router.add_get("/watch/{link}/live.m3u8", master_playlist)
    app.router.add_get("/watch/{link}/index.m3u8", playlist)
    app.router.add_get("/watch/{link}/status", status)
    app.router.add_get("/watch/{link}/{name}", segment)
    app.router.add_get("/broadcast-static/{name}", static)
