"""Broadcasts: a teacher or administrator creates one in a room; speakers get WHIP tokens;
viewers get signed, expiring, revocable links; the relay asks about links and broadcasts.

State: ``org.parta.broadcast`` (state key = broadcast ID) with title, speakers, schedule
and status (``scheduled`` → ``ended``). Tables: ``parta_broadcasts``,
``parta_viewer_links`` (schema/broadcasts.py). The relay learns revocations by asking
``GET internal/viewer_links/{link_id}`` with a service token and caching the answer for
a few seconds (docs/broadcasts.md).
"""

import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Final, Literal

from synapse.module_api import (
    NOT_SPAM,
    EventBase,
    LoggingTransaction,
    ModuleApi,
    SynapseRequest,
)
from synapse.module_api.errors import Codes, SynapseError

from parta_common import events
from parta_common.messages import Message
from parta_common.roles import Role
from parta_common.tokens import (
    SERVICE_RELAY,
    TokenError,
    grant_for,
    sign_media_token,
    sign_viewer_link,
    verify_service_token,
)

from . import roster_store
from .config import BroadcastsConfig, MediaConfig
from .errors import conflict, forbidden, not_found
from .http import EMPTY_BODY, json_body, requester_id
from .media_tokens import MEDIA_DISABLED, room_id_from_path
from .policy import RoomKind
from .room_roles import LESSON_LEADERS, RoomRoles
from .store import rows_as_dicts

if TYPE_CHECKING:
    from . import PartaModule

logger = logging.getLogger(__name__)


NOT_A_MANAGER: Final = Message(
    ru="Трансляции в этой комнате создают и ведут только учителя и администраторы.",
    en="Only teachers and administrators run broadcasts in this room.",
)
NOT_A_MEMBER: Final = Message(
    ru="Вы не участник этой комнаты.", en="You are not a member of this room."
)
NOT_A_SPEAKER: Final = Message(
    ru="Вы не докладчик этой трансляции.", en="You are not a speaker of this broadcast."
)
NO_BROADCAST: Final = Message(
    ru="В этой комнате нет такой трансляции.", en="There is no such broadcast in this room."
)
NO_LINK: Final = Message(ru="Нет такой ссылки.", en="There is no such link.")
ENDED: Final = Message(ru="Трансляция уже завершена.", en="The broadcast has already ended.")
BAD_SERVICE_TOKEN: Final = Message(
    ru="Нужен служебный токен сервера трансляций.",
    en="A service token of the broadcast relay is required.",
)
NOT_RECORDED: Final = Message(
    ru="Эта трансляция не записывается или ещё не завершена.",
    en="This broadcast is not recorded or has not ended yet.",
)
BAD_SCHEDULE: Final = Message(
    ru="Окончание трансляции должно быть позже начала.",
    en="The broadcast must end after it starts.",
)

# Only the broadcast relay's service tokens open the internal broadcast routes.
RELAY_ONLY: Final = frozenset({SERVICE_RELAY})
# The account the relay uploads recordings with: no room, no power, no person.
RECORDER_SUFFIX: Final = "-recorder"
RECORDING_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["content_uri", "size"],
    "properties": {
        "content_uri": {"type": "string", "pattern": "^mxc://[^/]+/[A-Za-z0-9_-]+$"},
        "size": {"type": "integer", "minimum": 0},
        "duration": {"type": "integer", "minimum": 0},
        "w": {"type": "integer", "minimum": 0},
        "h": {"type": "integer", "minimum": 0},
    },
}
RECORDER_ONLY_UPLOADS: Final = Message(
    ru="Служебная учётная запись записи трансляций только загружает файлы.",
    en="The broadcast recorder account only uploads files.",
)
RecorderVerdict = Literal["NOT_SPAM"] | tuple[Codes, dict[str, Any]]
FOREIGN_MEDIA: Final = Message(
    ru="Запись должна быть загружена на этот сервер.",
    en="The recording must be uploaded to this server.",
)

_USER_ID = {"type": "string", "pattern": "^@[^:]+:.+$", "maxLength": 255}
CREATE_SCHEMA: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "speakers"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "speakers": {"type": "array", "items": _USER_ID, "minItems": 1, "maxItems": 20},
        "starts_at": {"type": "integer", "minimum": 0},
        "ends_at": {"type": "integer", "minimum": 0},
        "public": {"type": "boolean"},
        "recording": {"type": "boolean"},
    },
}
EMPTY_SCHEMA: Final = EMPTY_BODY
# The request schemas, published in the OpenAPI document under these names.
REQUEST_SCHEMAS: Final = {
    "CreateBroadcast": CREATE_SCHEMA,
    "BroadcastRecording": RECORDING_SCHEMA,
    "EmptyBody": EMPTY_SCHEMA,
}


def may_run_broadcasts(role: Role | None) -> bool:
    """Who may create and end broadcasts in a room and hand out their links: the room's
    teachers and administrators (the roster's roles in school rooms, power levels
    elsewhere; see ``room_roles.py``)."""
    return role in LESSON_LEADERS


def _now_ms() -> int:
    return int(time.time() * 1000)


_ROOM: Final = r"/rooms/([^/]+)/broadcasts"
_BROADCAST: Final = rf"{_ROOM}/([^/]+)"


class Broadcasts:
    # (method, path pattern under BASE_PATH, handler name)
    ROUTES: Final = (
        ("POST", _ROOM, "create"),
        ("GET", _ROOM, "list"),
        ("GET", _BROADCAST, "get"),
        ("POST", rf"{_BROADCAST}/end", "end"),
        ("POST", rf"{_BROADCAST}/speaker_token", "speaker_token"),
        ("POST", rf"{_BROADCAST}/viewer_links", "new_viewer_link"),
        ("POST", rf"{_BROADCAST}/viewer_links/([^/]+)/revoke", "revoke"),
        ("GET", r"/internal/broadcasts/([^/]+)", "internal_broadcast"),
        ("POST", r"/internal/broadcasts/([^/]+)/live", "internal_live"),
        ("POST", r"/internal/broadcasts/([^/]+)/recording_upload", "internal_recording_upload"),
        ("POST", r"/internal/broadcasts/([^/]+)/recording", "internal_recording"),
        ("GET", r"/internal/viewer_links/([^/]+)", "internal_viewer_link"),
    )

    def __init__(
        self,
        module: "PartaModule",
        api: ModuleApi,
        media: MediaConfig,
        config: BroadcastsConfig,
        roles: RoomRoles,
    ) -> None:
        self._module = module
        self._api = api
        self._media = media
        self._config = config
        self._roles = roles
        for method, pattern, handler in self.ROUTES:
            module.resource.route(method, pattern, getattr(self, handler))
        # The recorder uploads and does nothing else: no rooms, no invites, no messages.
        api.register_spam_checker_callbacks(
            user_may_create_room=self._recorder_may_not_create_room,
            user_may_invite=self._recorder_may_not_invite,
            user_may_join_room=self._recorder_may_not_join,
            check_event_for_spam=self._recorder_sends_nothing,
        )

    def _recorder_verdict(self, user_id: str) -> RecorderVerdict:
        if user_id == self.recorder_user_id():
            return Codes.FORBIDDEN, {"error": RECORDER_ONLY_UPLOADS.format()}
        return NOT_SPAM

    async def _recorder_may_not_create_room(
        self, user_id: str, room_config: dict[str, Any]
    ) -> RecorderVerdict:
        return self._recorder_verdict(user_id)

    async def _recorder_may_not_invite(
        self, inviter: str, invitee: str, room_id: str
    ) -> RecorderVerdict:
        return self._recorder_verdict(inviter)

    async def _recorder_may_not_join(
        self, user_id: str, room_id: str, is_invited: bool
    ) -> RecorderVerdict:
        return self._recorder_verdict(user_id)

    async def _recorder_sends_nothing(self, event: EventBase) -> RecorderVerdict:
        return self._recorder_verdict(event.sender)

    # -- who is who -----------------------------------------------------------

    async def _role(self, room_id: str, user_id: str) -> Role | None:
        """``None`` unless joined (in rooms outside the roster) or in the school."""
        return await self._roles.role_in_room(user_id, room_id)

    async def _require_member(self, room_id: str, user_id: str) -> Role:
        role = await self._role(room_id, user_id)
        if role is None:
            raise forbidden(NOT_A_MEMBER)
        return role

    async def _require_manager(self, room_id: str, user_id: str) -> None:
        if not may_run_broadcasts(await self._require_member(room_id, user_id)):
            raise forbidden(NOT_A_MANAGER)

    def _secret(self) -> str:
        if not self._media.enabled or not self._media.token_secret:
            raise SynapseError(404, MEDIA_DISABLED.format(), Codes.NOT_FOUND)
        return self._media.token_secret

    def _relay_url(self) -> str:
        return self._media.sfu_public_url.rstrip("/")

    # -- storage --------------------------------------------------------------

    async def _load(self, room_id: str | None, broadcast_id: str) -> dict[str, Any]:
        def txn(t: LoggingTransaction) -> list[dict[str, Any]]:
            t.execute("SELECT * FROM parta_broadcasts WHERE broadcast_id = ?", (broadcast_id,))
            return rows_as_dicts(t)

        rows = await self._module.store.run("parta_broadcast_get", txn)
        if not rows or (room_id is not None and rows[0]["room_id"] != room_id):
            raise not_found(NO_BROADCAST)
        row = rows[0]
        row["speakers"] = json.loads(row["speakers"])
        row["public"] = bool(row["public"])
        row["recording"] = bool(row["recording"])
        return row

    async def _new_link(self, broadcast_id: str, user_id: str, ttl: int) -> dict[str, Any]:
        link_id = secrets.token_urlsafe(12)
        now = int(time.time())

        def txn(t: LoggingTransaction) -> None:
            t.execute(
                "INSERT INTO parta_viewer_links (link_id, broadcast_id, created_by, created_at,"
                " expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)",
                (link_id, broadcast_id, user_id, now, now + ttl),
            )

        await self._module.store.run("parta_viewer_link_add", txn)
        token = sign_viewer_link(self._secret(), broadcast_id, link_id, ttl, now=now)
        return {
            "link_id": link_id,
            "url": f"{self._relay_url()}/watch/{token}/",
            "expires_at": (now + ttl) * 1000,
        }

    async def _send_state(self, row: dict[str, Any], sender: str) -> EventBase:
        content = {
            "broadcast_id": row["broadcast_id"],
            "title": row["title"],
            "speakers": row["speakers"],
            "schedule": {"starts_at": row["starts_at"], "ends_at": row["ends_at"]},
            "status": row["status"],
            "public": row["public"],
            "recording": row["recording"],
        }
        return await self._api.create_and_send_event_into_room(
            {
                "type": events.BROADCAST,
                "room_id": row["room_id"],
                "sender": sender,
                "state_key": row["broadcast_id"],
                "content": content,
            }
        )

    def _describe(self, row: dict[str, Any]) -> dict[str, Any]:
        relay = self._relay_url()
        return {
            "broadcast_id": row["broadcast_id"],
            "room_id": row["room_id"],
            "title": row["title"],
            "speakers": row["speakers"],
            "starts_at": row["starts_at"],
            "ends_at": row["ends_at"],
            "public": row["public"],
            "recording": row["recording"],
            "status": row["status"],
            "whip_url": f"{relay}/whip/{row['broadcast_id']}",
        }

    # -- REST -------------------------------------------------------------------

    async def create(self, request: SynapseRequest, raw_room: str) -> tuple[int, dict[str, Any]]:
        room_id = room_id_from_path(raw_room)
        user_id = await requester_id(self._api, request)
        body = json_body(request, CREATE_SCHEMA)
        self._secret()
        await self._require_manager(room_id, user_id)
        starts, ends = body.get("starts_at"), body.get("ends_at")
        if starts is not None and ends is not None and ends <= starts:
            raise SynapseError(400, BAD_SCHEDULE.format(), Codes.BAD_JSON)
        row = {
            "broadcast_id": "bc_" + secrets.token_urlsafe(12),
            "room_id": room_id,
            "title": body["title"],
            "speakers": list(dict.fromkeys(body["speakers"])),
            "starts_at": starts,
            "ends_at": ends,
            "public": bool(body.get("public", True)),
            "recording": bool(body.get("recording", False)),
            "status": "scheduled",
            "created_by": user_id,
            "created_at": _now_ms(),
        }
        # The state event first: if the sender may not send it, nothing is stored.
        await self._send_state(row, await self._roles.lesson_sender(user_id, room_id))

        def txn(t: LoggingTransaction) -> None:
            t.execute(
                "INSERT INTO parta_broadcasts (broadcast_id, room_id, title, speakers, starts_at,"
                " ends_at, public, recording, status, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row["broadcast_id"],
                    room_id,
                    row["title"],
                    json.dumps(row["speakers"]),
                    starts,
                    ends,
                    row["public"],
                    row["recording"],
                    row["status"],
                    user_id,
                    row["created_at"],
                ),
            )

        await self._module.store.run("parta_broadcast_add", txn)
        answer = self._describe(row)
        if row["public"]:
            answer["viewer_link"] = await self._new_link(
                row["broadcast_id"], user_id, self._config.public_link_ttl_seconds
            )
        return 200, answer

    async def list(self, request: SynapseRequest, raw_room: str) -> tuple[int, dict[str, Any]]:
        room_id = room_id_from_path(raw_room)
        user_id = await requester_id(self._api, request)
        self._secret()
        await self._require_member(room_id, user_id)

        def txn(t: LoggingTransaction) -> list[dict[str, Any]]:
            t.execute(
                "SELECT broadcast_id FROM parta_broadcasts WHERE room_id = ?"
                " ORDER BY created_at DESC",
                (room_id,),
            )
            return rows_as_dicts(t)

        ids = [r["broadcast_id"] for r in await self._module.store.run("parta_bc_list", txn)]
        return 200, {"broadcasts": [self._describe(await self._load(room_id, i)) for i in ids]}

    async def get(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id = room_id_from_path(raw_room)
        user_id = await requester_id(self._api, request)
        self._secret()
        await self._require_member(room_id, user_id)
        return 200, self._describe(await self._load(room_id, broadcast_id))

    async def end(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id = room_id_from_path(raw_room)
        user_id = await requester_id(self._api, request)
        json_body(request, EMPTY_SCHEMA)
        await self._require_manager(room_id, user_id)
        row = await self._load(room_id, broadcast_id)
        if row["status"] != "ended":
            row["status"] = "ended"
            await self._send_state(row, await self._roles.lesson_sender(user_id, room_id))

            def txn(t: LoggingTransaction) -> None:
                t.execute(
                    "UPDATE parta_broadcasts SET status = 'ended' WHERE broadcast_id = ?",
                    (broadcast_id,),
                )

            await self._module.store.run("parta_broadcast_end", txn)
        return 200, self._describe(row)

    async def speaker_token(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id = room_id_from_path(raw_room)
        user_id = await requester_id(self._api, request)
        json_body(request, EMPTY_SCHEMA)
        secret = self._secret()
        row = await self._load(room_id, broadcast_id)
        manager = may_run_broadcasts(await self._role(room_id, user_id))
        if user_id not in row["speakers"] and not manager:
            raise forbidden(NOT_A_SPEAKER)
        if row["status"] == "ended":
            raise conflict(ENDED)
        role = Role.TEACHER if manager else Role.STUDENT
        grants = grant_for(role, students_may_share_screen=True)
        name = await self._roles.display_name(user_id, room_id)
        ttl = self._config.speaker_token_ttl_seconds
        token = sign_media_token(secret, room_id, user_id, name, role.value, grants, ttl=ttl)
        return 200, {
            "whip_url": self._describe(row)["whip_url"],
            # A browser page that publishes camera, microphone or screen with this token.
            "speaker_page_url": f"{self._relay_url()}/speak/{broadcast_id}#token={token}",
            "token": token,
            "expires_at": (int(time.time()) + ttl) * 1000,
        }

    async def new_viewer_link(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id = room_id_from_path(raw_room)
        """Managers: another public link. Members of a members-only broadcast: a personal one."""
        user_id = await requester_id(self._api, request)
        json_body(request, EMPTY_SCHEMA)
        self._secret()
        row = await self._load(room_id, broadcast_id)
        manager = may_run_broadcasts(await self._require_member(room_id, user_id))
        if row["public"] and not manager:
            raise forbidden(NOT_A_MANAGER)
        ttl = (
            self._config.public_link_ttl_seconds
            if row["public"]
            else self._config.member_link_ttl_seconds
        )
        return 200, await self._new_link(broadcast_id, user_id, ttl)

    async def revoke(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str, link_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id = room_id_from_path(raw_room)
        user_id = await requester_id(self._api, request)
        json_body(request, EMPTY_SCHEMA)
        await self._require_manager(room_id, user_id)
        await self._load(room_id, broadcast_id)
        now = int(time.time())

        def txn(t: LoggingTransaction) -> int:
            t.execute(
                "UPDATE parta_viewer_links SET revoked_at = ?"
                " WHERE link_id = ? AND broadcast_id = ? AND revoked_at IS NULL",
                (now, link_id, broadcast_id),
            )
            changed = t.rowcount
            t.execute(
                "SELECT 1 FROM parta_viewer_links WHERE link_id = ? AND broadcast_id = ?",
                (link_id, broadcast_id),
            )
            return changed if t.fetchone() else -1

        if await self._module.store.run("parta_viewer_link_revoke", txn) < 0:
            raise not_found(NO_LINK)
        return 200, {"link_id": link_id, "revoked": True}

    # -- what the relay asks ----------------------------------------------------

    def _check_service(self, request: SynapseRequest) -> None:
        header = request.requestHeaders.getRawHeaders(b"Authorization") or []
        raw = header[0].decode("latin-1") if header else ""
        if not raw.lower().startswith("bearer "):
            raise SynapseError(401, BAD_SERVICE_TOKEN.format(), Codes.MISSING_TOKEN)
        try:
            verify_service_token(raw[7:].strip(), self._secret(), RELAY_ONLY)
        except TokenError:
            raise SynapseError(401, BAD_SERVICE_TOKEN.format(), Codes.UNKNOWN_TOKEN) from None

    async def internal_broadcast(
        self, request: SynapseRequest, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        self._check_service(request)
        return 200, self._describe(await self._load(None, broadcast_id))

    async def internal_viewer_link(
        self, request: SynapseRequest, link_id: str
    ) -> tuple[int, dict[str, Any]]:
        self._check_service(request)

        def txn(t: LoggingTransaction) -> list[dict[str, Any]]:
            t.execute("SELECT * FROM parta_viewer_links WHERE link_id = ?", (link_id,))
            return rows_as_dicts(t)

        rows = await self._module.store.run("parta_viewer_link_get", txn)
        if not rows:
            raise not_found(NO_LINK)
        row = rows[0]
        return 200, {
            "link_id": row["link_id"],
            "broadcast_id": row["broadcast_id"],
            "revoked": row["revoked_at"] is not None,
            "expires_at": int(row["expires_at"]) * 1000,
        }

    async def _set_status(self, row: dict[str, Any], status: str) -> None:
        row["status"] = status
        sender = await self._roles.lesson_sender(row["created_by"], row["room_id"])
        await self._send_state(row, sender)

        def txn(t: LoggingTransaction) -> None:
            t.execute(
                "UPDATE parta_broadcasts SET status = ? WHERE broadcast_id = ?",
                (status, row["broadcast_id"]),
            )

        await self._module.store.run("parta_broadcast_status", txn)

    async def internal_live(
        self, request: SynapseRequest, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        """The relay reports the first segment: the state says ``live``."""
        self._check_service(request)
        row = await self._load(None, broadcast_id)
        if row["status"] == "scheduled":
            await self._set_status(row, "live")
        return 200, self._describe(row)

    async def _recorded(self, broadcast_id: str) -> dict[str, Any]:
        row = await self._load(None, broadcast_id)
        if not row["recording"] or row["status"] != "ended":
            raise conflict(NOT_RECORDED)
        return row

    def recorder_user_id(self) -> str:
        localpart, server = self._module.service_user_id[1:].split(":", 1)
        return f"@{localpart}{RECORDER_SUFFIX}:{server}"

    async def internal_recording_upload(
        self, request: SynapseRequest, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        """A two-minute login token for the recorder account, to upload the MP4.

        The recorder is a robot account of the module's: it is in no room and holds no
        power, so its login lets the relay upload media and nothing a person could do.
        No route hands out a person's login.
        """
        self._check_service(request)
        await self._recorded(broadcast_id)
        recorder = self.recorder_user_id()
        if not await self._api.check_user_exists(recorder):
            await self._api.register_user(
                recorder.split(":", 1)[0][1:], "Parta: запись трансляций / broadcast recordings"
            )
        token = await self._api.create_login_token(recorder, 2 * 60 * 1000)
        return 200, {"user_id": recorder, "login_token": token}

    async def internal_recording(
        self, request: SynapseRequest, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        """Post an uploaded recording: an ``m.video`` with an ``org.parta.document`` block.

        A broadcast of a school's room is posted into the school's documents room by the
        service account, so it appears among the school's documents; any other broadcast
        into its own room, sent by the module in the name of the broadcast's creator
        (the module acts there as it does for the broadcast's state). The content names
        the creator either way.
        """
        self._check_service(request)
        body = json_body(request, RECORDING_SCHEMA)
        row = await self._recorded(broadcast_id)
        server = body["content_uri"].removeprefix("mxc://").split("/", 1)[0]
        if server != self._api.server_name:
            raise SynapseError(400, FOREIGN_MEDIA.format(), Codes.INVALID_PARAM)
        target = row["room_id"]
        school_room = await self._module.roster.get_room(row["room_id"])
        if school_room is not None and school_room.school_id is not None:
            rooms = await self._module.store.run(
                "parta_school_rooms", roster_store.rooms_of_school_txn, school_room.school_id
            )
            target = rooms.get(RoomKind.DOCUMENTS.value, target)
        sender = await self._roles.lesson_sender(row["created_by"], target)
        filename = f"{row['title']}.mp4"
        info: dict[str, Any] = {"mimetype": "video/mp4", "size": body["size"]}
        for key in ("duration", "w", "h"):
            if key in body:
                info[key] = body[key]
        content: dict[str, Any] = {
            "msgtype": "m.video",
            "body": filename,
            "url": body["content_uri"],
            "info": info,
            # So it is listed among the school's documents (and still plays in Element).
            "org.parta.document": {
                "title": row["title"],
                "description": (
                    f"Запись трансляции, вёл(а) {row['created_by']}"
                    f" / Broadcast recording by {row['created_by']}"
                ),
                "tags": ["трансляция", "broadcast"],
                "section": "Записи трансляций",
            },
            events.BROADCAST: {"broadcast_id": broadcast_id, "created_by": row["created_by"]},
        }
        event = await self._api.create_and_send_event_into_room(
            {
                "type": "m.room.message",
                "room_id": target,
                "sender": sender,
                "content": content,
            }
        )
        return 200, {"room_id": target, "event_id": event.event_id, "sender": sender}
