"""What the Synapse benchmarks share: homeservers with and without Parta, fast users."""

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.harness import RunningHomeserver, User, running_homeserver


@contextlib.contextmanager
def homeserver(load_module: bool) -> Iterator[RunningHomeserver]:
    with (
        tempfile.TemporaryDirectory(prefix="parta-bench-") as tmp,
        running_homeserver(Path(tmp), load_module=load_module) as hs,
    ):
        yield hs


@contextlib.asynccontextmanager
async def session(token: str) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as s:
        yield s


async def call(
    s: aiohttp.ClientSession, method: str, url: str, body: Any = None, ok: tuple[int, ...] = (200,)
) -> Any:
    async with s.request(method, url, json=body) as r:
        data = await r.json()
        if r.status not in ok:
            raise RuntimeError(f"{method} {url}: {r.status} {data}")
        return data


async def make_users(hs: RunningHomeserver, admin: User, prefix: str, count: int) -> list[str]:
    """Accounts without passwords through the admin API (no hashing: fast)."""
    ids = [f"@{prefix}{i:05d}:{hs.server_name}" for i in range(count)]
    sem = asyncio.Semaphore(8)
    async with session(admin.access_token) as s:

        async def one(user_id: str) -> None:
            async with sem:
                await call(
                    s, "PUT", f"{hs.base_url}/_synapse/admin/v2/users/{user_id}", {}, ok=(200, 201)
                )

        await asyncio.gather(*(one(u) for u in ids))
    return ids


async def login_as(hs: RunningHomeserver, admin: User, user_id: str) -> str:
    """An access token for ``user_id`` (admin API), as a client of that person would have."""
    async with session(admin.access_token) as s:
        data = await call(s, "POST", f"{hs.base_url}/_synapse/admin/v1/users/{user_id}/login", {})
    token: str = data["access_token"]
    return token


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
