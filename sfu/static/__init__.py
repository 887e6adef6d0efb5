"""The lesson page: static HTML, JS modules and CSS the SFU serves (no build step, no CDN).

``setup_static(app)`` adds two routes to the SFU's aiohttp application:

* ``GET /lesson/{room_id}`` — the page (standalone or as an Element widget);
* ``GET /lesson-assets/{name}`` — its scripts and style sheet.

The WebSocket the page talks to (``/lesson/{room_id}/ws``) belongs to the SFU itself
(docs/sfu-protocol.md).
"""

import re
from pathlib import Path
from typing import Final

from aiohttp import web

from parta_common.messages import Message

NOT_A_ROOM: Final = Message("sfu.not_a_room")
STATIC_DIR: Final = Path(__file__).resolve().parent
PAGE: Final = STATIC_DIR / "lesson.html"
_ASSET: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg)$")
_CONTENT_TYPES: Final = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
# The page runs inside Element's iframe: any parent may frame it. Scripts and styles
# only from here; it talks to the homeserver (login, tokens) and the SFU's WebSocket.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src *; frame-ancestors *; "
    "base-uri 'none'; form-action 'none'"
)


async def lesson_page(request: web.Request) -> web.StreamResponse:
    room_id = request.match_info["room_id"]
    if not room_id.startswith("!") or len(room_id) > 255:
        raise web.HTTPNotFound(text=NOT_A_ROOM.format())
    return web.Response(
        body=PAGE.read_bytes(),
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": _CSP,
            "Cache-Control": "no-cache",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def lesson_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    match = _ASSET.match(name)
    path = STATIC_DIR / name
    if match is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(
        body=path.read_bytes(),
        headers={
            "Content-Type": _CONTENT_TYPES[match.group(1)],
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


def setup_static(app: web.Application) -> None:
    """Serve the lesson page and its assets from ``app``."""
    app.router.add_get("/lesson/{room_id}", lesson_page)
    app.router.add_get("/lesson-assets/{name}", lesson_asset)
