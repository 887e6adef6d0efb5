"""The lesson WebSocket (docs/sfu-protocol.md): authentication, parsing, dispatch."""

import asyncio
import contextlib
import json
import logging
from typing import Any, Final

from aiohttp import WSMsgType, web

from parta_common.tokens import MediaClaims, TokenError, verify_media_token
from sfu.attendance import LeaveReason
from sfu.errors import LessonError
from sfu.lesson_registry import Lessons
from sfu.sources import Source

logger = logging.getLogger(__name__)

MAX_MESSAGE: Final = 256 * 1024
# Seconds to let queued messages go out when a connection ends.
FLUSH_TIMEOUT: Final = 5.0
_SOURCES: Final = frozenset(str(s) for s in Source)

# type → {field: (python type, required)}; fields not listed are refused.
_SHAPES: Final[dict[str, dict[str, tuple[type, bool]]]] = {
    "offer": {"sdp": (str, True), "sources": (dict, True)},
    "mute_self": {"source": (str, True), "muted": (bool, True)},
    "leave": {},
    "raise_hand": {},
    "lower_hand": {"participant_id": (str, False)},
    "lower_all_hands": {},
    "mute": {"participant_id": (str, True)},
    "unmute": {"participant_id": (str, True)},
    "mute_all": {},
    "remove": {"participant_id": (str, True)},
    "allow_screen": {"participant_id": (str, True), "allowed": (bool, True)},
    "set_lesson": {
        "locked": (bool, False),
        "waiting_room": (bool, False),
        "students_may_share_screen": (bool, False),
    },
    "admit": {"participant_id": (str, True)},
    "deny": {"participant_id": (str, True)},
    "readmit": {"user_id": (str, True)},
}


class WebSocketConnection:
    """Queues outgoing messages; one writer task sends them in order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[dict[str, Any] | int] = asyncio.Queue()
        self._closing = False
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, message: dict[str, Any]) -> None:
        if not self._closing:
            self._queue.put_nowait(message)

    def close(self, code: int) -> None:
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(code)

    def fail(self, error: LessonError, request_id: str | None = None) -> None:
        self.send(error.payload(request_id))
        if error.kind.close_code is not None:
            self.close(error.kind.close_code)

    async def _write(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, int):
                    await self._ws.close(code=item)
                    return
                await self._ws.send_str(json.dumps(item, ensure_ascii=False))
        except (ConnectionError, RuntimeError) as e:
            logger.debug("lesson socket writer stopped: %s", e)

    async def finish(self) -> None:
        """Let queued messages (and a close) go out, then stop."""
        self.close(1000)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._writer), FLUSH_TIMEOUT)
        self._writer.cancel()


def parse(text: str, expect_join: bool = False) -> dict[str, Any]:
    """One client message, shape-checked, or :class:`LessonError` ``bad_request``."""
    try:
        message = json.loads(text)
    except ValueError:
        raise LessonError("bad_request", detail="not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise LessonError("bad_request", detail="expected an object with a type")
    kind = message["type"]
    request_id = message.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 64):
        raise LessonError("bad_request", detail="request_id must be a short string")
    if expect_join:
        if kind != "join" or not isinstance(message.get("token"), str):
            raise LessonError("bad_request", detail="the first message must be join with a token")
        return message
    shape = _SHAPES.get(kind)
    if shape is None:
        raise LessonError("bad_request", detail=f"unknown type {kind}")
    for name in message.keys() - {"type", "request_id"}:
        if name not in shape:
            raise LessonError("bad_request", detail=f"unknown field {name}")
    for name, (tp, required) in shape.items():
        if name not in message:
            if required:
                raise LessonError("bad_request", detail=f"{name} is missing")
        elif not isinstance(message[name], tp):
            raise LessonError("bad_request", detail=f"{name} has the wrong type")
    if kind == "offer":
        sources = message["sources"]
        if not all(isinstance(m, str) and v in _SOURCES for m, v in sources.items()):
            raise LessonError("bad_request", detail="sources maps mids to camera/microphone/screen")
    if kind == "mute_self" and message["source"] not in _SOURCES:
        raise LessonError("bad_request", detail="unknown source")
    return message


class LessonSocket:
    """The aiohttp handler of ``/lesson/{room_id}/ws``."""

    def __init__(self, lessons: Lessons, token_secret: str, join_timeout: float) -> None:
        self._lessons = lessons
        self._secret = token_secret
        self._join_timeout = join_timeout

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        room_id = request.match_info["room_id"]
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        connection = WebSocketConnection(ws)
        try:
            await self._session(room_id, ws, connection)
        finally:
            await connection.finish()
        return ws

    async def _session(
        self, room_id: str, ws: web.WebSocketResponse, connection: WebSocketConnection
    ) -> None:
        try:
            first = await asyncio.wait_for(ws.receive(), self._join_timeout)
        except TimeoutError:
            connection.fail(LessonError("join_timeout"))
            return
        if first.type is not WSMsgType.TEXT:
            return
        try:
            join = parse(first.data, expect_join=True)
            claims = self._verify(join["token"], room_id)
            lesson, participant = self._lessons.join(room_id, claims, connection)
        except LessonError as e:
            self._lessons.refused(e.code)
            connection.fail(e)
            if e.kind.close_code is None:
                connection.close(4400)
            return
        reason = LeaveReason.DISCONNECTED
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                request_id = None
                try:
                    message = parse(frame.data)
                    request_id = message.get("request_id")
                    await lesson.handle(participant, message)
                except LessonError as e:
                    connection.fail(e, request_id)
                if participant.gone:
                    reason = LeaveReason.LEFT
                    break
        finally:
            await self._lessons.leave(lesson, participant, reason)

    def _verify(self, token: str, room_id: str) -> MediaClaims:
        try:
            claims = verify_media_token(token, self._secret)
        except TokenError as e:
            logger.info("refused a lesson token for %s: %s", room_id, e)
            raise LessonError("unauthorized") from None
        if claims.room_id != room_id:
            raise LessonError("wrong_room")
        return claims
