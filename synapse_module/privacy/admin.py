"""Synapse's admin API, called by the module's service account: the erasure deactivates
an account with it, retention deletes a recording's media with it.

The service account is made a Synapse administrator for this; each session signs in a
device of its own (``register_device``, a fresh device ID each time) and logs it out
after, so no token outlives the work it was made for. Two sessions at once (the
operator's erasure runs every school's part together) never share a device: logging one
out must not end the other's token.
"""

import contextlib
import logging
import secrets
import urllib.parse
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from synapse.api.errors import HttpResponseException
from synapse.module_api import make_deferred_yieldable
from twisted.web.client import readBody
from twisted.web.http_headers import Headers

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)


class AdminSession:
    def __init__(self, module: "PartaModule", token: str):
        self._client = module.api.http_client
        self._base = module.api.public_baseurl.rstrip("/")
        self._server = module.api.server_name
        self._token = token

    def _headers(self) -> dict[bytes, list[bytes]]:
        return {b"Authorization": [f"Bearer {self._token}".encode("ascii")]}

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        headers: Any = self._headers()
        return await self._client.post_json_get_json(f"{self._base}{path}", body, headers)

    async def delete_media(self, media_id: str) -> bool:
        """Delete one of this server's media (the file, its thumbnails, Synapse's rows);
        ``False`` when Synapse knows it no more (deleted before a crash)."""
        path = f"/_synapse/admin/v1/media/{self._server}/{urllib.parse.quote(media_id, safe='')}"
        response = await self._client.request(
            "DELETE", f"{self._base}{path}", headers=Headers(self._headers())
        )
        body: bytes = await make_deferred_yieldable(readBody(response))
        if response.code == 404:
            return False
        if response.code != 200:
            raise RuntimeError(f"deleting media {media_id}: {response.code} {body[:200]!r}")
        return True


@contextlib.asynccontextmanager
async def admin_session(module: "PartaModule", device: str) -> AsyncIterator[AdminSession]:
    """The service account as a Synapse administrator, with a token for this work only
    (``device`` names the work; each session's device ID is its own)."""
    api = module.api
    service = module.service_user_id
    if not await api.is_user_admin(service):
        await api.set_user_admin(service, True)
    device_id = f"{device}-{secrets.token_hex(6)}"
    _device, token, _, _ = await api.register_device(service, device_id)
    session = AdminSession(module, token)
    try:
        yield session
    finally:
        # Logging out ends the token and its device (ModuleApi.invalidate_access_token
        # fails in Synapse 1.163: it treats the Requester it gets as a dict).
        try:
            await session.post_json("/_matrix/client/v3/logout", {})
        except HttpResponseException as e:
            if e.code != 401:
                raise
            # The token is gone already (its device deleted): what logging out is for.
            logger.warning("Admin session %s: token ended before its logout", device_id)
