"""What the relay asks the Parta module: a broadcast's facts, a viewer link's revocation.

The module is the source of truth (the ``org.parta.broadcast`` state and its own tables).
The relay asks ``GET /_synapse/client/parta/v1/internal/...`` with a short service token
signed with the shared secret and caches answers briefly. A viewer link's revocation is
asked again when the cached answer is older than the caller's ``max_age``: the playlist
and the segments pass one segment's length, so a revoked link stops at the next segment;
the page and the live badge use ``link_cache_seconds``. Concurrent questions about the same
thing share one request to the module, so a thousand viewers of one link cost one call.
"""

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import attrs

from parta_common.tokens import SERVICE_RELAY, sign_service_token

logger = logging.getLogger(__name__)

INTERNAL = "/_synapse/client/parta/v1/internal"


class DirectoryUnavailable(Exception):
    """The module could not be asked (and nothing usable is cached)."""


@attrs.frozen
class BroadcastInfo:
    broadcast_id: str
    room_id: str
    title: str
    status: str  # scheduled | live | ended
    speakers: tuple[str, ...]
    public: bool
    recording: bool

    @property
    def ended(self) -> bool:
        return self.status == "ended"


@attrs.frozen
class LinkInfo:
    link_id: str
    broadcast_id: str
    revoked: bool


class Directory(Protocol):
    async def broadcast(self, broadcast_id: str, fresh: bool = False) -> BroadcastInfo | None: ...

    async def viewer_link(self, link_id: str, max_age: float | None = None) -> LinkInfo | None:
        """The link, from a cached answer at most ``max_age`` seconds old (default: the
        directory's own cache time)."""
        ...

    async def publish_recording(self, broadcast_id: str, mp4: Path, info: "VideoInfo") -> None: ...

    async def went_live(self, broadcast_id: str) -> None: ...


@attrs.frozen
class VideoInfo:
    duration_ms: int
    width: int
    height: int
    size: int


class ModuleDirectory:
    """Asks the module over HTTP; caches every answer (including "no such thing")."""

    def __init__(self, homeserver_url: str, secret: str, cache_seconds: float) -> None:
        self._base = homeserver_url.rstrip("/") + INTERNAL
        self._secret = secret
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Any]] = {}
        self._asking: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + sign_service_token(self._secret, SERVICE_RELAY)}

    async def _get(
        self, path: str, fresh: bool, max_age: float | None = None
    ) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._cache.get(path)
        ttl = self._ttl if max_age is None else min(self._ttl, max_age)
        if cached is not None and not fresh and now - cached[0] < ttl:
            value: dict[str, Any] | None = cached[1]
            return value
        asking = self._asking.get(path)
        if asking is not None:
            return await asyncio.shield(asking)
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._asking[path] = future
        try:
            answer = await self._ask(path, now, cached)
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning when no one waits
            raise
        else:
            future.set_result(answer)
            return answer
        finally:
            del self._asking[path]

    async def _ask(
        self, path: str, now: float, cached: tuple[float, Any] | None
    ) -> dict[str, Any] | None:
        try:
            async with self._http().get(self._base + path, headers=self._headers()) as resp:
                if resp.status == 404:
                    answer = None
                elif resp.status == 200:
                    answer = await resp.json()
                else:
                    raise DirectoryUnavailable(f"module answered {resp.status} for {path}")
        except (aiohttp.ClientError, TimeoutError) as e:
            if cached is not None:
                logger.warning("broadcast: module unreachable (%s); using a cached answer", e)
                stale: dict[str, Any] | None = cached[1]
                return stale
            raise DirectoryUnavailable(str(e)) from None
        self._cache[path] = (now, answer)
        return answer

    async def broadcast(self, broadcast_id: str, fresh: bool = False) -> BroadcastInfo | None:
        raw = await self._get(f"/broadcasts/{broadcast_id}", fresh)
        if raw is None:
            return None
        return BroadcastInfo(
            broadcast_id=str(raw["broadcast_id"]),
            room_id=str(raw["room_id"]),
            title=str(raw["title"]),
            status=str(raw["status"]),
            speakers=tuple(str(s) for s in raw["speakers"]),
            public=bool(raw["public"]),
            recording=bool(raw["recording"]),
        )

    async def viewer_link(self, link_id: str, max_age: float | None = None) -> LinkInfo | None:
        raw = await self._get(f"/viewer_links/{link_id}", False, max_age)
        if raw is None:
            return None
        return LinkInfo(str(raw["link_id"]), str(raw["broadcast_id"]), bool(raw["revoked"]))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def went_live(self, broadcast_id: str) -> None:
        url = f"{self._base}/broadcasts/{broadcast_id}/live"
        async with self._http().post(url, json={}, headers=self._headers()) as resp:
            if resp.status != 200:
                raise DirectoryUnavailable(f"module answered {resp.status} to 'live'")

    async def publish_recording(self, broadcast_id: str, mp4: Path, info: VideoInfo) -> None:
        """Upload the MP4 as the module's recorder account, then ask the module to post it.

        The recorder is a robot account in no room; the module posts the message (as its
        service account in a school's documents room). The relay never holds a person's
        login.
        """
        http = self._http()
        url = f"{self._base}/broadcasts/{broadcast_id}/recording_upload"
        async with http.post(url, json={}, headers=self._headers()) as resp:
            if resp.status != 200:
                raise DirectoryUnavailable(f"recording refused: {resp.status} {await resp.text()}")
            grant = await resp.json()
        hs = self._base.removesuffix(INTERNAL).removesuffix("/_synapse/client/parta/v1")
        login = {
            "type": "m.login.token",
            "token": grant["login_token"],
            "initial_device_display_name": "Parta: broadcast recording",
        }
        async with http.post(f"{hs}/_matrix/client/v3/login", json=login) as resp:
            if resp.status != 200:
                raise DirectoryUnavailable(f"login refused: {resp.status} {await resp.text()}")
            auth = {"Authorization": "Bearer " + (await resp.json())["access_token"]}
        try:
            with mp4.open("rb") as body:
                async with http.post(
                    f"{hs}/_matrix/media/v3/upload",
                    params={"filename": f"{broadcast_id}.mp4"},
                    data=body,
                    headers={**auth, "Content-Type": "video/mp4"},
                    timeout=aiohttp.ClientTimeout(total=600),
                ) as resp:
                    if resp.status != 200:
                        raise DirectoryUnavailable(f"upload refused: {resp.status}")
                    content_uri = (await resp.json())["content_uri"]
        finally:
            async with http.post(f"{hs}/_matrix/client/v3/logout", json={}, headers=auth):
                pass
        posted: dict[str, Any] = {
            "content_uri": content_uri,
            "size": info.size,
            "duration": info.duration_ms,
            "w": info.width,
            "h": info.height,
        }
        url = f"{self._base}/broadcasts/{broadcast_id}/recording"
        async with http.post(url, json=posted, headers=self._headers()) as resp:
            if resp.status != 200:
                raise DirectoryUnavailable(f"posting refused: {resp.status} {await resp.text()}")
