"""Parta on Synapse's workers: main + a client reader + an event persister, over a private
Redis and a fresh PostgreSQL database, behind the development router (devtools/router.py,
the same table as production's nginx).

What must hold there: the role table and an import behave as on one process, a
student's first sign-in and /sync are served by the client reader and show the school,
a roster change made on main reaches the module's caches on the worker (Redis), and a
background job runs on the one process the config names although two could run it.
"""

import asyncio
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomCreateResponse, RoomInviteResponse, SyncResponse

from devtools.workers import CLIENT_READER, route
from synapse_module.jobs import runs_background_jobs
from tests.harness import RunningHomeserver, User, running_workers
from tests.roster_helpers import School, api, build_school
from tests.test_roster import ACTIONS, MATRIX, invites_at_once, place, who

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The job runner is a worker here, so that main (which could run it) must not.
BACKGROUND = "client_reader1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_workers(
        tmp_path_factory.mktemp("workers"), module_config={"background_worker": BACKGROUND}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def operator(cluster: RunningHomeserver) -> User:
    return cluster.register("operator", admin=True)


@pytest.fixture(scope="module")
def school(cluster: RunningHomeserver, operator: User) -> School:
    return build_school(cluster, operator)


async def routed(
    hs: RunningHomeserver, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[str, int, Any]:
    """(which process answered, status, JSON) for one request through the router."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, hs.base_url + path, json=body, headers=headers) as r,
    ):
        return r.headers["X-Parta-Upstream"], r.status, await r.json()


# -- the routing table and the job rule (pure) ---------------------------------------


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/_matrix/client/v3/sync", CLIENT_READER),
        ("/_matrix/client/r0/sync", CLIENT_READER),
        ("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", CLIENT_READER),
        ("/_matrix/client/v3/login", CLIENT_READER),
        ("/_matrix/client/v3/rooms/!a:x/messages", CLIENT_READER),
        ("/_matrix/client/v3/user_directory/search", CLIENT_READER),
        ("/_matrix/client/v3/rooms/!a:x/send/m.room.message/t1", None),
        ("/_matrix/client/v3/createRoom", None),
        ("/_synapse/client/parta/v1/schools", None),
        ("/_synapse/client/parta/v1/version", None),
        ("/_synapse/admin/v1/register", None),
    ],
)
def test_routes(path: str, role: str | None) -> None:
    """Reads and sign-in go to the client reader; writes and Parta's API to main."""
    assert route(path) == role


@pytest.mark.parametrize(
    ("worker_name", "configured", "runs"),
    [
        (None, "main", True),
        ("client_reader1", "main", False),
        (None, "client_reader1", False),
        ("client_reader1", "client_reader1", True),
        ("client_reader2", "client_reader1", False),
    ],
)
def test_background_jobs_run_on_the_named_process(
    worker_name: str | None, configured: str, runs: bool
) -> None:
    assert runs_background_jobs(worker_name, configured) is runs


# -- the topology --------------------------------------------------------------------

ROWS = [
    ("student", "send", "7a.class_chat", True),
    ("student", "send", "announcements", False),
    ("teacher", "send", "announcements", True),
    ("student", "join", "7b.class_chat", False),
    ("admin", "join", "7b.class_chat", True),
    ("teacher", "power", "7a.class_chat", False),
    ("student", "create_group", "-", False),
]
assert all(row in MATRIX for row in ROWS)


@pytest.mark.parametrize(("role", "action", "where", "allowed"), ROWS)
async def test_role_table_on_workers(
    cluster: RunningHomeserver, school: School, role: str, action: str, where: str, allowed: bool
) -> None:
    room_id = place(school, where) if where != "-" else ""
    async with cluster.client(who(school, role)) as c:
        ok, message = await ACTIONS[action](c, room_id)
    assert ok is allowed, f"{role} {action} {where}: {message}"
    if not allowed:
        assert " / " in message, message


async def test_imported_student_signs_in_and_syncs_through_the_client_reader(
    cluster: RunningHomeserver, school: School
) -> None:
    """An import (the module's member batch) on main; the first sign-in and /sync on the
    client reader, which joins the student to the school's rooms and shows them."""
    localpart = f"imported-{secrets.token_hex(4)}"
    user_id = f"@{localpart}:{cluster.server_name}"
    code = f"{secrets.token_hex(4).upper()}-{secrets.token_hex(4).upper()}"
    batch = {
        "members": [
            {
                "user_id": user_id,
                "roles": ["student"],
                "classes": [school.class_b["class_id"]],
                "account": {"display_name": "Пётр Новиков", "sign_in_code": code},
            }
        ]
    }
    api(cluster, "POST", f"/schools/{school.school_id}/members/batch", school.admin, batch)

    served, status, login = await routed(
        cluster,
        "POST",
        "/_matrix/client/v3/login",
        body={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": code,
        },
    )
    assert (served, status) == (CLIENT_READER, 200), login
    token = login["access_token"]
    served, status, first = await routed(cluster, "GET", "/_matrix/client/v3/sync?timeout=0", token)
    assert (served, status) == (CLIENT_READER, 200), first

    student = User(user_id, localpart, code, token, login["device_id"])
    wanted = {school.class_b["rooms"]["class_chat"], school.rooms["announcements"]}
    seen: set[str] = set(first.get("rooms", {}).get("join", {}))
    async with cluster.client(student) as client:
        client.next_batch = first["next_batch"]
        # Liveness bound: the joins are events the persister writes; the reader's /sync
        # shows them once they stream back over Redis.
        deadline = time.monotonic() + 120
        while not wanted <= seen and time.monotonic() < deadline:
            answer = await client.sync(timeout=5000)
            assert isinstance(answer, SyncResponse), answer
            seen |= set(answer.rooms.join)
    assert wanted <= seen, (wanted - seen, cluster.hs.tail_output())


async def test_element_x_sliding_sync_is_served_by_the_client_reader(
    cluster: RunningHomeserver, school: School
) -> None:
    """Element X syncs by sliding sync (MSC4186): its room list and its long poll are
    the client reader's work, not main's, and an announcement posted on main reaches it."""
    path = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
    pupil = school.students[0]
    room_list = {
        "lists": {
            "all_rooms": {
                "ranges": [[0, 19]],
                "timeline_limit": 5,
                "required_state": [["m.room.name", ""], ["m.room.member", "$ME"]],
            }
        }
    }
    served, status, first = await routed(cluster, "POST", path, pupil.access_token, room_list)
    assert (served, status) == (CLIENT_READER, 200), first
    announcements = school.rooms["announcements"]
    assert announcements in first["rooms"]

    room = urllib.parse.quote(announcements, safe="")
    text = f"Sliding {secrets.token_hex(3)}"
    api_path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{secrets.token_hex(6)}"
    seen: list[str] = []
    pos = first["pos"]
    # Liveness bound, not a timing: the long poll answers when the event streams back.
    deadline = time.monotonic() + 60
    sent = False
    while text not in seen and time.monotonic() < deadline:
        poll = asyncio.ensure_future(
            routed(
                cluster, "POST", f"{path}?pos={pos}&timeout=10000", pupil.access_token, room_list
            )
        )
        if not sent:
            await asyncio.sleep(0.5)  # the pupil's poll is waiting when the message is sent
            served, status, _ = await routed(
                cluster,
                "PUT",
                api_path,
                school.admin.access_token,
                {"msgtype": "m.text", "body": text},
            )
            assert (served, status) == ("main", 200)
            sent = True
        served, status, answer = await poll
        assert (served, status) == (CLIENT_READER, 200), answer
        pos = answer["pos"]
        events = answer.get("rooms", {}).get(announcements, {}).get("timeline", [])
        seen += [e.get("content", {}).get("body", "") for e in events]
    assert text in seen


async def test_a_roster_change_on_main_reaches_the_workers_cache(
    cluster: RunningHomeserver, school: School
) -> None:
    """User-directory search runs on the client reader, which asks the module (its
    cached roster) whether to hide a student. Enrolling someone on main must reach that
    cache: a student of another school is then hidden from an outsider."""
    outsider = cluster.register("outsider")
    name = f"Искомый {secrets.token_hex(3)}"
    target = cluster.register("target", displayname=name)

    async def visible() -> bool:
        served, status, found = await routed(
            cluster,
            "POST",
            "/_matrix/client/v3/user_directory/search",
            outsider.access_token,
            {"search_term": name, "limit": 10},
        )
        assert (served, status) == (CLIENT_READER, 200), found
        return target.user_id in {r["user_id"] for r in found["results"]}

    # Not in any school yet: found (this also fills the reader's cache with that).
    deadline = time.monotonic() + 90  # the directory is filled in the background
    while not await visible():
        assert time.monotonic() < deadline, "the new account never reached the directory"
        await asyncio.sleep(0.5)
    path = f"/schools/{school.school_id}/members/{urllib.parse.quote(target.user_id)}"
    api(
        cluster,
        "PUT",
        path,
        school.admin,
        {"roles": ["student"], "classes": [school.class_b["class_id"]]},
    )
    deadline = time.monotonic() + 60  # Redis delivers the invalidation
    while await visible():
        assert time.monotonic() < deadline, "the reader still holds the old roster"
        await asyncio.sleep(0.5)


def test_a_background_job_runs_on_the_named_process_only(cluster: RunningHomeserver) -> None:
    """Main and the client reader both load the module and could run the clean-up
    loop; only the reader, which the config names, does, once at start-up."""
    import psycopg2

    assert cluster.hs.postgres is not None

    def runs() -> list[tuple[str, str, bool]]:
        conn = psycopg2.connect(**cluster.hs.postgres.connect_args())  # type: ignore[union-attr]
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT job, instance, finished_ts IS NOT NULL FROM parta_job_runs"
                    " ORDER BY started_ts"
                )
                return [(str(a), str(b), bool(c)) for a, b, c in cur.fetchall()]
        finally:
            conn.close()

    deadline = time.monotonic() + 120
    while not any(done for _, _, done in runs()):
        assert time.monotonic() < deadline, cluster.hs.tail_output()
        time.sleep(0.5)
    # Every job (the invitation clean-up, the audit log's sealing) ran there and only there.
    assert {instance for _, instance, _ in runs()} == {BACKGROUND}
    assert [job for job, _, _ in runs()].count("expired_invites") == 1


async def test_two_invites_at_once_cannot_both_pass_on_workers(
    cluster: RunningHomeserver, school: School
) -> None:
    """Main writes through the event persister: the state main reads next may not have the
    invite just made yet; the module's claims (roster/growth.py) count it anyway."""
    await invites_at_once(cluster, school)


async def test_two_invites_through_two_processes_cannot_both_pass(
    cluster: RunningHomeserver, school: School
) -> None:
    """Synapse queues a room's membership changes per process only: two invites made at
    the same moment on two processes (main and a generic worker, which serves
    ``/rooms/{id}/invite`` too) each ran the two-person check alone. Exactly one passes."""
    topology = cluster.hs.topology
    assert topology is not None
    reader = next(w for w in topology.workers if w.name.startswith(CLIENT_READER))
    urls = (
        f"http://127.0.0.1:{topology.main_http_port}",
        reader.health_url.removesuffix("/health"),
    )
    owner, first, second = school.students
    clients = [AsyncClient(url, owner.user_id, device_id=owner.device_id) for url in urls]
    for c in clients:
        c.access_token, c.user_id = owner.access_token, owner.user_id
    try:
        for n in range(8):
            made = await clients[0].room_create(is_direct=True)
            assert isinstance(made, RoomCreateResponse), made
            both = await asyncio.gather(
                clients[0].room_invite(made.room_id, first.user_id),
                clients[1].room_invite(made.room_id, second.user_id),
            )
            passed = [r for r in both if isinstance(r, RoomInviteResponse)]
            assert len(passed) == 1, (n, both)
    finally:
        for c in clients:
            await c.close()
