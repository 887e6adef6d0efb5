"""Media tokens: the module's signed permission for one person in one room's lesson.

Two ways in, one answer ``{token, sfu_url, expires_at, …}``:

* ``POST /rooms/{roomId}/media_token`` with the person's Matrix access token;
* ``POST /rooms/{roomId}/media_token/openid`` with an OpenID token (what an Element
  widget gets through the widget API), checked against this homeserver's
  ``/_matrix/federation/v1/openid/userinfo``.

The grants come from the person's role in that room (:class:`RoomRoles`).
"""

import logging
import time
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import ModuleApi, SynapseRequest
from synapse.module_api.errors import Codes

from parta_common import events, tokens

from ..config import LiveKitConfig, MediaConfig
from ..errors import forbidden, matrix_error
from ..http import json_body, requester_id
from ..room_roles import RoomRoles

if TYPE_CHECKING:
    from .. import PartaModule
from ..requests import request_schemas
from .rules import livekit_token, room_allows_student_screen, room_id_from_path
from .texts import (
    LIVEKIT_OFF,
    MEDIA_DISABLED,
    NOT_A_MEMBER,
    OPENID_INVALID,
    OPENID_UNCHECKED,
    OTHER_SERVER,
    WRONG_CLAIM,
)

logger = logging.getLogger(__name__)

# The request schemas, in requests.json beside this module (also the OpenAPI's).
REQUEST_SCHEMAS: Final = request_schemas(__package__)
_EMPTY_BODY: Final = REQUEST_SCHEMAS["MediaTokenRequest"]
_OPENID_BODY: Final = REQUEST_SCHEMAS["OpenIdMediaTokenRequest"]
_SFU_GET_BODY: Final = REQUEST_SCHEMAS["LiveKitSfuGet"]
_GET_TOKEN_BODY: Final = REQUEST_SCHEMAS["LiveKitGetToken"]


class MediaTokens:
    """Signs media tokens for the SFU; registers the two token endpoints."""

    # (method, path pattern under BASE_PATH, handler name)
    ROUTES: Final = (
        ("POST", r"/rooms/([^/]+)/media_token", "post_media_token"),
        ("POST", r"/rooms/([^/]+)/media_token/openid", "post_media_token_openid"),
        # The lk-jwt-service API for Element Call (advertised as livekit_service_url
        # {BASE_PATH}/livekit in .well-known's org.matrix.msc4143.rtc_foci).
        ("POST", r"/livekit/sfu/get", "post_livekit_sfu_get"),
        ("POST", r"/livekit/get_token", "post_livekit_get_token"),
    )

    def __init__(
        self, module: "PartaModule", api: ModuleApi, config: MediaConfig, roles: RoomRoles
    ):
        self._module = module
        self._api = api
        self._config = config
        self._roles = roles

    @property
    def secret(self) -> str:
        if not self._config.enabled or self._config.token_secret is None:
            raise matrix_error(404, Codes.NOT_FOUND, MEDIA_DISABLED)
        return self._config.token_secret

    async def post_media_token(
        self, request: SynapseRequest, raw_room_id: str
    ) -> tuple[int, dict[str, Any]]:
        self.secret  # noqa: B018 -- refuse early when lessons are off
        user_id = await requester_id(self._api, request)
        room_id = room_id_from_path(raw_room_id)
        if request.content is not None and request.content.getvalue().strip():
            json_body(request, _EMPTY_BODY)
        return 200, await self.issue(user_id, room_id)

    async def post_media_token_openid(
        self, request: SynapseRequest, raw_room_id: str
    ) -> tuple[int, dict[str, Any]]:
        self.secret  # noqa: B018
        room_id = room_id_from_path(raw_room_id)
        body = json_body(request, _OPENID_BODY)
        openid = body["openid_token"]
        user_id = await self.openid_user(openid["access_token"], openid["matrix_server_name"])
        return 200, await self.issue(user_id, room_id)

    async def openid_user(self, access_token: str, server_name: str) -> str:
        """The local user an OpenID token stands for, asked of this homeserver."""
        if server_name != self._api.server_name:
            raise forbidden(OTHER_SERVER, server=self._api.server_name)
        url = f"{self._api.public_baseurl.rstrip('/')}/_matrix/federation/v1/openid/userinfo"
        try:
            answer = await self._api.http_client.get_json(url, {"access_token": access_token})
        except Exception as e:
            code = getattr(e, "code", None)
            if code == 401:
                raise matrix_error(401, Codes.UNKNOWN_TOKEN, OPENID_INVALID) from None
            logger.warning("OpenID userinfo at %s failed: %s", url, e)
            raise matrix_error(
                502, Codes.UNKNOWN, OPENID_UNCHECKED, detail=type(e).__name__
            ) from None
        sub = answer.get("sub") if isinstance(answer, dict) else None
        if not isinstance(sub, str) or not sub.startswith("@"):
            raise matrix_error(401, Codes.UNKNOWN_TOKEN, OPENID_INVALID)
        if not self._api.is_mine(sub):
            raise forbidden(OTHER_SERVER, server=self._api.server_name)
        return sub

    # -- lk-jwt-service API (Element Call with a LiveKit cluster) -------------------

    def _livekit(self) -> LiveKitConfig:
        if not self._config.enabled or self._config.livekit is None:
            raise matrix_error(404, Codes.NOT_FOUND, LIVEKIT_OFF)
        return self._config.livekit

    async def post_livekit_sfu_get(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        livekit = self._livekit()
        body = json_body(request, _SFU_GET_BODY)
        openid = body["openid_token"]
        user_id = await self.openid_user(openid["access_token"], openid["matrix_server_name"])
        return 200, await self._livekit_answer(livekit, user_id, body["device_id"], body["room"])

    async def post_livekit_get_token(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        livekit = self._livekit()
        body = json_body(request, _GET_TOKEN_BODY)
        openid = body["openid_token"]
        user_id = await self.openid_user(openid["access_token"], openid["matrix_server_name"])
        member = body["member"]
        if member["claimed_user_id"] != user_id:
            raise forbidden(WRONG_CLAIM)
        return 200, await self._livekit_answer(
            livekit, user_id, member["claimed_device_id"], body["room_id"]
        )

    async def _livekit_answer(
        self, livekit: LiveKitConfig, user_id: str, device_id: str, room_id: str
    ) -> dict[str, Any]:
        role = await self._roles.role_in_room(user_id, room_id)
        if role is None:
            raise forbidden(NOT_A_MEMBER)
        grants = tokens.grant_for(role, await self.students_may_share_screen(room_id))
        grants, _why = await self._module.privacy.lesson_grants(role, user_id, room_id, grants)
        name = await self._roles.display_name(user_id, room_id)
        token = livekit_token(livekit, f"{user_id}:{device_id}", name, room_id, grants)
        return {"url": livekit.url, "jwt": token}

    async def students_may_share_screen(self, room_id: str) -> bool:
        """The room's call policy (:func:`room_allows_student_screen`)."""
        state = await self._api.get_room_state(room_id, [(events.CALL_POLICY, "")])
        policy = state.get((events.CALL_POLICY, ""))
        if policy is None:
            return self._config.students_may_share_screen
        sender_role = await self._roles.role_in_room(policy.sender, room_id)
        return room_allows_student_screen(
            self._config.students_may_share_screen, dict(policy.content), sender_role
        )

    async def issue(self, user_id: str, room_id: str) -> dict[str, Any]:
        """Sign a token for ``user_id`` in ``room_id`` with the grants of their role."""
        role = await self._roles.role_in_room(user_id, room_id)
        if role is None:
            raise forbidden(NOT_A_MEMBER)
        grants = tokens.grant_for(role, await self.students_may_share_screen(room_id))
        # No consent to video lessons: camera and microphone off (privacy.rules).
        grants, why = await self._module.privacy.lesson_grants(role, user_id, room_id, grants)
        name = await self._roles.display_name(user_id, room_id)
        now = time.time()
        ttl = self._config.token_ttl_seconds
        token = tokens.sign_media_token(
            self.secret,
            room_id,
            user_id,
            name,
            role.value,
            grants,
            ttl=ttl,
            now=now,
            restrictions=(why,) if why else (),
        )
        return {
            "token": token,
            "sfu_url": self._config.sfu_public_url,
            "expires_at": (int(now) + ttl) * 1000,
            "room_id": room_id,
            "user_id": user_id,
            "display_name": name,
            "role": role.value,
            "grants": grants.to_claim(),
            # Why camera and microphone are off, for the person and the teacher's panel.
            "no_video_consent": why is not None,
        }
