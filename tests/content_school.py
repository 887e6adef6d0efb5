"""A small school for the content tests (built through the roster API: an administrator,
class 7А with its teacher and students), plus raw Matrix HTTP helpers."""

import asyncio
import secrets
import urllib.parse
from typing import Any

import aiohttp
import attrs
from nio import JoinedRoomsResponse, JoinResponse

from tests.harness import RunningHomeserver, User
from tests.roster_helpers import api as roster_api


@attrs.define
class ClassRoom:
    """One class of one school, built through the roster API; ``room_id`` is its chat."""

    room_id: str
    admin: User
    teacher: User
    students: list[User]
    school_id: str
    class_id: str
    school_rooms: dict[str, str]


def make_school_class(synapse: RunningHomeserver, students: int = 2) -> ClassRoom:
    """A school with an administrator and class 7А (a teacher and ``students``)."""
    operator = synapse.register("operator", admin=True)
    admin = synapse.register("admin")
    school = roster_api(
        synapse,
        "POST",
        "/schools",
        operator,
        {"name": "Школа № 7", "administrators": [admin.user_id]},
    )
    sid = school["school_id"]
    cls = roster_api(
        synapse,
        "POST",
        f"/schools/{sid}/classes",
        admin,
        {"grade": 7, "letter": "А", "year": "2026/27"},
    )
    teacher = synapse.register("teacher")
    roster_api(
        synapse,
        "PUT",
        f"/schools/{sid}/members/{teacher.user_id}",
        admin,
        {"roles": ["teacher"], "classes": [cls["class_id"]], "homeroom_of": [cls["class_id"]]},
    )
    pupils = [synapse.register("student") for _ in range(students)]
    for pupil in pupils:
        roster_api(
            synapse,
            "PUT",
            f"/schools/{sid}/members/{pupil.user_id}",
            admin,
            {"roles": ["student"], "classes": [cls["class_id"]]},
        )
    return ClassRoom(
        room_id=cls["rooms"]["class_chat"],
        admin=admin,
        teacher=teacher,
        students=pupils,
        school_id=sid,
        class_id=cls["class_id"],
        school_rooms=school["rooms"],
    )


async def make_class(synapse: RunningHomeserver, students: int = 2) -> ClassRoom:
    school = make_school_class(synapse, students)
    # The roster joins everyone to the class chat; make sure the joins have landed.
    for user in (school.teacher, *school.students):
        async with synapse.client(user) as client:
            joined = await client.join(school.room_id)
            assert isinstance(joined, JoinResponse), joined
    return school


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


async def matrix(
    synapse: RunningHomeserver,
    user: User,
    method: str,
    path: str,
    body: Any = None,
    params: Any = None,
    data: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, Any]:
    """A raw request to the homeserver as ``user``; returns status and parsed body."""
    headers = {"Authorization": f"Bearer {user.access_token}"}
    if content_type:
        headers["Content-Type"] = content_type
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            synapse.base_url + path,
            json=body if data is None else None,
            data=data,
            params=params,
            headers=headers,
        ) as resp,
    ):
        text = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, text


async def api(
    synapse: RunningHomeserver,
    user: User,
    method: str,
    path: str,
    body: Any = None,
    params: Any = None,
) -> tuple[int, Any]:
    return await matrix(
        synapse, user, method, "/_synapse/client/parta/v1" + path, body=body, params=params
    )


async def send(
    synapse: RunningHomeserver, user: User, room_id: str, event_type: str, content: Any
) -> tuple[int, Any]:
    txn = secrets.token_hex(8)
    return await matrix(
        synapse,
        user,
        "PUT",
        f"/_matrix/client/v3/rooms/{q(room_id)}/send/{q(event_type)}/{txn}",
        body=content,
    )


async def upload(
    synapse: RunningHomeserver, user: User, data: bytes, content_type: str, name: str = "f"
) -> tuple[int, Any]:
    return await matrix(
        synapse,
        user,
        "POST",
        "/_matrix/media/v3/upload",
        params={"filename": name},
        data=data,
        content_type=content_type,
    )


async def room_events(synapse: RunningHomeserver, user: User, room_id: str) -> list[Any]:
    """Every event of the room's timeline ``user`` can read through ``/messages``."""
    status, body = await matrix(
        synapse,
        user,
        "GET",
        f"/_matrix/client/v3/rooms/{q(room_id)}/messages",
        params={"dir": "b", "limit": "1000"},
    )
    assert status == 200, body
    chunk: list[Any] = body["chunk"]
    return chunk


async def joined_rooms(synapse: RunningHomeserver, user: User) -> set[str]:
    async with synapse.client(user) as client:
        resp = await client.joined_rooms()
        assert isinstance(resp, JoinedRoomsResponse), resp
        return set(resp.rooms)


async def parta_notice(
    synapse: RunningHomeserver, user: User, contains: str, seconds: float = 60
) -> str:
    """``user`` accepts the invitation to their «Parta» room and reads the module's
    notice containing ``contains`` (sent in the background: poll with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with synapse.client(user) as client:
        while True:
            sync = await client.sync(timeout=0)
            for room_id in sync.rooms.invite:
                assert isinstance(await client.join(room_id), JoinResponse)
            for room_id in await joined_rooms(synapse, user):
                for event in await room_events(synapse, user, room_id):
                    body = event.get("content", {}).get("body", "")
                    if event.get("sender", "").startswith("@parta:") and contains in body:
                        return str(body)
            if loop.time() > deadline:
                raise AssertionError(f"no notice with {contains!r} for {user.user_id}")
            await asyncio.sleep(0.5)


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120 + b"This program cannot be run in DOS mode"
