"""Broadcasts: a teacher or administrator creates one in a room; speakers get WHIP tokens;
viewers get signed, expiring, revocable links; the relay asks about links and broadcasts.

State: ``org.parta.broadcast`` (state key = broadcast ID) with title, speakers, schedule
and status (``scheduled`` → ``ended``). Tables: ``parta_broadcasts``,
``parta_viewer_links``, ``parta_broadcast_recordings`` (the recordings posted, for the
school's retention rule) and ``parta_broadcast_backfill`` (how far the one-time search
for recordings posted before they were tracked has read) (broadcasts/schema.py). The
relay learns revocations by asking ``GET internal/viewer_links/{link_id}`` with a service
token and caching the answer for a few seconds (docs/broadcasts.md).
"""

import builtins
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Final, Literal

from synapse.module_api import (
    NOT_SPAM,
    EventBase,
    ModuleApi,
    SynapseRequest,
)
from synapse.module_api.errors import Codes

from parta_common.roles import Role
from parta_common.tokens import (
    SERVICE_RELAY,
    TokenError,
    grant_for,
    sign_media_token,
    sign_viewer_link,
)

from ..config import BroadcastsConfig, MediaConfig
from ..errors import conflict, forbidden, matrix_error, not_found
from ..http import EMPTY_BODY, json_body, requester_id
from ..media_tokens.rules import room_id_from_path
from ..media_tokens.texts import MEDIA_DISABLED
from ..requests import request_schemas
from ..room_roles import RoomRoles
from ..roster.rules import RoomKind
from ..service_tokens import spend_service_token
from . import store as db
from .events import broadcast_state, recording_message
from .rules import (
    may_run_broadcasts,
    posted_recording,
    recorder_user_id,
    recording_school,
    schedule_is_valid,
)
from .texts import (
    BAD_SCHEDULE,
    BAD_SERVICE_TOKEN,
    ENDED,
    FOREIGN_MEDIA,
    NO_BROADCAST,
    NO_LINK,
    NOT_A_MANAGER,
    NOT_A_MEMBER,
    NOT_A_SPEAKER,
    NOT_RECORDED,
    RECORDER_NAME,
    RECORDER_ONLY_UPLOADS,
)

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)


# Only the broadcast relay's service tokens open the internal broadcast routes.
RELAY_ONLY: Final = frozenset({SERVICE_RELAY})
RecorderVerdict = Literal["NOT_SPAM"] | tuple[Codes, dict[str, Any]]

# The request schemas, in requests.json beside this module (also the OpenAPI's).
REQUEST_SCHEMAS: Final = {**request_schemas(__package__), "EmptyBody": EMPTY_BODY}
CREATE_SCHEMA: Final = REQUEST_SCHEMAS["CreateBroadcast"]
RECORDING_SCHEMA: Final = REQUEST_SCHEMAS["BroadcastRecording"]
EMPTY_SCHEMA: Final = EMPTY_BODY


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

    # -- callbacks (registered by PartaModule, see pipeline.py) --------------------
    # The recorder uploads and does nothing else: no rooms, no invites, no messages.

    def _recorder_verdict(self, user_id: str) -> RecorderVerdict:
        if user_id == self.recorder_user_id():
            return Codes.FORBIDDEN, {
                "error": RECORDER_ONLY_UPLOADS.format(),
                **RECORDER_ONLY_UPLOADS.fields(),
            }
        return NOT_SPAM

    async def user_may_create_room(
        self, user_id: str, room_config: dict[str, Any]
    ) -> RecorderVerdict:
        return self._recorder_verdict(user_id)

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> RecorderVerdict:
        return self._recorder_verdict(inviter)

    async def user_may_join_room(
        self, user_id: str, room_id: str, is_invited: bool
    ) -> RecorderVerdict:
        return self._recorder_verdict(user_id)

    async def check_event_for_spam(self, event: EventBase) -> RecorderVerdict:
        return self._recorder_verdict(event.sender)

    # -- who is who -----------------------------------------------------------

    async def _open(
        self, request: SynapseRequest, raw_room: str, schema: dict[str, Any] | None = None
    ) -> tuple[str, str]:
        """How a room's broadcast route opens: the room from the path (400), who asks
        (401) and, for a route with a body, the body against ``schema`` (400)."""
        room_id = room_id_from_path(raw_room)
        user_id = await requester_id(self._api, request)
        if schema is not None:
            json_body(request, schema)
        return room_id, user_id

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
            raise matrix_error(404, Codes.NOT_FOUND, MEDIA_DISABLED)
        return self._media.token_secret

    def _relay_url(self) -> str:
        return self._media.sfu_public_url.rstrip("/")

    # -- storage --------------------------------------------------------------

    async def _load(self, room_id: str | None, broadcast_id: str) -> dict[str, Any]:
        row = await self._module.store.run(
            "parta_broadcast_get", db.get_broadcast_txn, broadcast_id
        )
        if row is None or (room_id is not None and row["room_id"] != room_id):
            raise not_found(NO_BROADCAST)
        return row

    async def _new_link(self, broadcast_id: str, user_id: str, ttl: int) -> dict[str, Any]:
        link_id = secrets.token_urlsafe(12)
        now = int(time.time())
        await self._module.store.run(
            "parta_viewer_link_add",
            db.add_viewer_link_txn,
            link_id,
            broadcast_id,
            user_id,
            now,
            ttl,
        )
        token = sign_viewer_link(self._secret(), broadcast_id, link_id, ttl, now=now)
        return {
            "link_id": link_id,
            "url": f"{self._relay_url()}/watch/{token}/",
            "expires_at": (now + ttl) * 1000,
        }

    async def _send_state(self, row: dict[str, Any], sender: str) -> EventBase:
        return await self._api.create_and_send_event_into_room(
            {**broadcast_state(row), "sender": sender}
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
        room_id, user_id = await self._open(request, raw_room)
        body = json_body(request, CREATE_SCHEMA)
        self._secret()
        await self._require_manager(room_id, user_id)
        starts, ends = body.get("starts_at"), body.get("ends_at")
        if not schedule_is_valid(starts, ends):
            raise matrix_error(400, Codes.BAD_JSON, BAD_SCHEDULE)
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
        await self._module.store.run("parta_broadcast_add", db.add_broadcast_txn, row)
        answer = self._describe(row)
        if row["public"]:
            answer["viewer_link"] = await self._new_link(
                row["broadcast_id"], user_id, self._config.public_link_ttl_seconds
            )
        return 200, answer

    async def list(self, request: SynapseRequest, raw_room: str) -> tuple[int, dict[str, Any]]:
        room_id, user_id = await self._open(request, raw_room)
        self._secret()
        await self._require_member(room_id, user_id)

        ids = await self._module.store.run("parta_bc_list", db.broadcast_ids_txn, room_id)
        return 200, {"broadcasts": [self._describe(await self._load(room_id, i)) for i in ids]}

    async def get(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id, user_id = await self._open(request, raw_room)
        self._secret()
        await self._require_member(room_id, user_id)
        return 200, self._describe(await self._load(room_id, broadcast_id))

    async def end(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id, user_id = await self._open(request, raw_room, EMPTY_SCHEMA)
        await self._require_manager(room_id, user_id)
        row = await self._load(room_id, broadcast_id)
        if row["status"] != "ended":
            row["status"] = "ended"
            await self._send_state(row, await self._roles.lesson_sender(user_id, room_id))
            await self._module.store.run(
                "parta_broadcast_end", db.set_status_txn, broadcast_id, "ended"
            )
        return 200, self._describe(row)

    async def speaker_token(
        self, request: SynapseRequest, raw_room: str, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        room_id, user_id = await self._open(request, raw_room, EMPTY_SCHEMA)
        secret = self._secret()
        row = await self._load(room_id, broadcast_id)
        manager = may_run_broadcasts(await self._role(room_id, user_id))
        if user_id not in row["speakers"] and not manager:
            raise forbidden(NOT_A_SPEAKER)
        if row["status"] == "ended":
            raise conflict(ENDED)
        # A student speaker needs consent to broadcasts (privacy.rules).
        await self._module.privacy.check_broadcast_speaker(manager, user_id, room_id)
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
        room_id, user_id = await self._open(request, raw_room, EMPTY_SCHEMA)
        await self._require_manager(room_id, user_id)
        await self._load(room_id, broadcast_id)
        now = int(time.time())

        revoked = await self._module.store.run(
            "parta_viewer_link_revoke", db.revoke_viewer_link_txn, link_id, broadcast_id, now
        )
        if revoked < 0:
            raise not_found(NO_LINK)
        return 200, {"link_id": link_id, "revoked": True}

    # -- what the relay asks ----------------------------------------------------

    async def _check_service(self, request: SynapseRequest) -> None:
        header = request.requestHeaders.getRawHeaders(b"Authorization") or []
        raw = header[0].decode("latin-1") if header else ""
        if not raw.lower().startswith("bearer "):
            raise matrix_error(401, Codes.MISSING_TOKEN, BAD_SERVICE_TOKEN)
        try:
            await spend_service_token(
                self._module.store, raw[7:].strip(), self._secret(), RELAY_ONLY
            )
        except TokenError:
            raise matrix_error(401, Codes.UNKNOWN_TOKEN, BAD_SERVICE_TOKEN) from None

    async def internal_broadcast(
        self, request: SynapseRequest, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        await self._check_service(request)
        return 200, self._describe(await self._load(None, broadcast_id))

    async def internal_viewer_link(
        self, request: SynapseRequest, link_id: str
    ) -> tuple[int, dict[str, Any]]:
        await self._check_service(request)
        row = await self._module.store.run("parta_viewer_link_get", db.get_viewer_link_txn, link_id)
        if row is None:
            raise not_found(NO_LINK)
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
        await self._module.store.run(
            "parta_broadcast_status", db.set_status_txn, row["broadcast_id"], status
        )

    async def internal_live(
        self, request: SynapseRequest, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        """The relay reports the first segment: the state says ``live``."""
        await self._check_service(request)
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
        return recorder_user_id(self._module.service_user_id)

    async def internal_recording_upload(
        self, request: SynapseRequest, broadcast_id: str
    ) -> tuple[int, dict[str, Any]]:
        """A two-minute login token for the recorder account, to upload the MP4.

        The recorder is a robot account of the module's: it is in no room and holds no
        power, so its login lets the relay upload media and nothing a person could do.
        No route hands out a person's login.
        """
        await self._check_service(request)
        await self._recorded(broadcast_id)
        recorder = self.recorder_user_id()
        if not await self._api.check_user_exists(recorder):
            await self._api.register_user(recorder.split(":", 1)[0][1:], RECORDER_NAME.format())
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
        the creator either way. It is tracked for the retention rule of the school
        :func:`.rules.recording_school` names (none: the operator's limit).
        """
        await self._check_service(request)
        body = json_body(request, RECORDING_SCHEMA)
        row = await self._recorded(broadcast_id)
        server = body["content_uri"].removeprefix("mxc://").split("/", 1)[0]
        if server != self._api.server_name:
            raise matrix_error(400, Codes.INVALID_PARAM, FOREIGN_MEDIA)
        target = row["room_id"]
        school_room = await self._module.roster.get_room(row["room_id"])
        if school_room is not None and school_room.school_id is not None:
            rooms = await self._module.roster.school_wide_rooms(school_room.school_id)
            target = rooms.get(RoomKind.DOCUMENTS.value, target)
        sender = await self._roles.lesson_sender(row["created_by"], target)
        content = recording_message(row, body)
        event = await self._api.create_and_send_event_into_room(
            {
                "type": "m.room.message",
                "room_id": target,
                "sender": sender,
                "content": content,
            }
        )
        # Kept for the school's retention rule (``recordings``), which removes it later;
        # whose rule is decided now, as the creator stands at the broadcast's end.
        creator = await self._module.roster.get_person(row["created_by"])
        await self._module.store.run(
            "parta_recording_posted",
            db.add_recording_txn,
            {
                "event_id": event.event_id,
                "broadcast_id": broadcast_id,
                "room_id": target,
                "school_id": recording_school(school_room, creator),
                "media_id": body["content_uri"].rsplit("/", 1)[1],
                "posted_ts": event.origin_server_ts,
            },
        )
        return 200, {"room_id": target, "event_id": event.event_id, "sender": sender}

    async def recordings_posted_before(
        self, school_id: str | None, before: int
    ) -> "builtins.list[dict[str, Any]]":
        """A school's recordings posted before ``before`` (ms): event, room, media — what
        retention (privacy) removes; ``None``: those of no school."""
        return await self._module.store.run(
            "parta_recordings_before", db.recordings_before_txn, school_id, before
        )

    async def forget_recording(self, event_id: str) -> None:
        """The recording is gone (redacted, its media deleted): forget it."""
        await self._module.store.run("parta_recording_forget", db.forget_recording_txn, event_id)

    async def backfill_recordings(self) -> str:
        """The background job ``recordings_backfill``, done once: the recordings posted
        before they were tracked (schema step 3) tracked now, so the school's
        ``recordings`` rule removes them too.

        It reads Synapse's events from where it stopped to the newest, a range of
        :data:`.store.BACKFILL_SPAN` stream positions at a time, for messages the service
        account sent with a file, keeps those :func:`.rules.posted_recording` knows (in
        a school's room: the school is the room's) and records each batch with how far
        it has read — cut short, it carries on; a recording tracked already stays as it
        is; once read to the end it is done and later runs return at once.
        """
        store = self._module.store
        scanned, done, newest = await store.run("parta_backfill_state", db.backfill_state_txn)
        if done is not None:
            return "done already"
        service = self._module.service_user_id
        server = self._api.server_name
        added = 0
        while True:
            upto = min(scanned + db.BACKFILL_SPAN, newest)
            videos = await store.run(
                "parta_backfill_videos", db.service_videos_txn, service, scanned, upto
            )
            found = []
            for video in videos:
                recording = posted_recording(video.pop("content"), server)
                room = await self._module.roster.get_room(video["room_id"])
                if recording is None or room is None or room.school_id is None:
                    continue  # not a recording, or of no school (no school's rule)
                broadcast_id, media_id = recording
                found.append(
                    {
                        **video,
                        "broadcast_id": broadcast_id,
                        "media_id": media_id,
                        "school_id": room.school_id,
                    }
                )
            finished = int(time.time() * 1000) if upto >= newest else None
            added += await store.run(
                "parta_backfill_batch", db.backfill_batch_txn, found, upto, finished
            )
            scanned = upto
            if finished is not None:
                break
        if added:
            logger.info("Tracked %d recordings posted before retention knew them", added)
        return f"{added} recordings tracked; done"

    async def created_between(self, start: int, end: int) -> "builtins.list[tuple[str, int]]":
        """Broadcasts created in ``[start, end)`` (ms): room, viewer links — the look-up
        statistics use (issue 11), so they never read the broadcasts' tables."""
        return await self._module.store.run(
            "parta_broadcasts_created", db.created_between_txn, start, end
        )
