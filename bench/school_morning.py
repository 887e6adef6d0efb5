"""The school morning: a whole school signs in, syncs and talks at 08:00 (issue #22).

    PARTA_TEST_DB=sqlite   python -m bench.school_morning --students 1000
    PARTA_TEST_DB=postgres python -m bench.school_morning --students 1000
    python -m bench school_morning --workers --students 1000
    options: [--concurrency 20] [--baseline 40] [--senders 100] [--interval 2]
             [--delivery 60] [--samples 10] [--presence] [--workers [--client-readers R]]
             [--sliding] [--staggered [--mixed]] [--rooms-at-sign-in]
             [--json results.json]

On a fresh Synapse with the module and the bot's registration (127.0.0.1, the config
`make run` generates; SQLite unless PARTA_TEST_DB=postgres), one process — or, with
``--workers``, on PostgreSQL as main + client reader(s) (``--client-readers``, 1 unless
said; a pupil sticks to one) + event persister over Redis behind
the development router (``tests.harness.running_workers``; no baseline there, it needs a
restart with another module config):

1. import: the sample school of ``--students`` pupils (``tests.data.make_sample_school``,
   applied by ``bridge.roster_sync`` as the README's import does; ~2.4 people a pupil).
2. baseline, same run: ``--baseline`` pupils sign in for the first time with
   ``first_sign_in_joins: during_login`` (the old path: the login waits for the joins),
   ``--concurrency`` at a time; then Synapse restarts with the default (background).
3. first sign-ins: every other pupil (and one administrator, who posts announcements),
   ``--concurrency`` at a time: wall time, p50/p95/max per login; then, polling the
   school's member list every 2 s, when each pupil's rooms are all joined (seconds after
   their login answered) and when the last one is; then the rows of Synapse's user
   directory (pairs of people sharing a private room, people in public rooms; again at
   the end) read from its database.
4. initial syncs, ``--concurrency`` at a time, as Element asks (lazy-loaded members,
   timeline limit 10): bytes and seconds per pupil. On ``--samples`` pupils also the
   eager sync (members not lazy-loaded: the baseline) and sliding sync (MSC4186, as
   Element X asks, 20 rooms).
5. delivery: every pupil long-polls /sync (lazy filter); every ``--interval`` s the
   administrator posts an announcement and one of ``--senders`` pupils (in turn, spread
   over the classes) posts in their class chat, for ``--delivery`` s; then up to 30 s
   for stragglers. Latency from the send's start to the arrival in each recipient's
   sync (the sender excluded): p50/p95/p99; deliveries missing; HTTP errors. A sync
   whose timeline is limited (more new events than its limit) is filled from /messages
   as Element does, and counted. With ``--sliding``, the same again with every pupil on
   sliding sync as Element X (MSC4186, its room list and extensions, long-polled).
   Each delivery phase also counts the sync answers and the membership events in them.
   With ``--staggered``, a real morning: only half the pupils sign in in step 3 and
   sync in step 4; the other half signs in during a first delivery phase to the first
   half, which goes on until their rooms are all joined (the joins waking every
   member's long poll); then each syncing client catches up once, and the delivery
   phase after it, to the same first half, is the same run's baseline. The later half
   is the roster's second half (whole classes), or with ``--mixed`` every other pupil
   (each class half syncing, half signing in: what a class's rooms wake).

``--rooms-at-sign-in`` sets ``open_rooms_at_import: false`` (the school-wide rooms too
are joined at the first sign-in, as before session 7); by default they are joined behind
the import, and the import phase waits until they are (its own figure), so that the
morning measured is the morning.
``--presence`` turns Synapse's presence on (the generated config has it off) to measure
what it costs. The RSS (max and at the end) and CPU (% of one core) of every process
(Synapse's, each worker's, Redis, the router, the bot, this load tool) are read from
/proc per phase.
The load tool shares the machine with Synapse: write the load average beside any figure
(it is printed). Everything stops by itself; the homeserver and the bot are torn down at
the end. The last lines printed are the issue's figures, one a line (after the JSON).
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import attrs

from bridge.api import ModuleClient
from bridge.config import load
from bridge.db import create_database
from bridge.roster_sync import RosterSync, SignIn
from parta_common.oneroster import read_files
from tests.bridge_env import BridgeEnv, bridge_env
from tests.data.make_sample_school import make_school

API = "/_synapse/client/parta/v1"
LAZY_FILTER = {"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 10}}}
EAGER_FILTER = {"room": {"timeline": {"limit": 10}}}
SLIDING_SYNC = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
# What Element X asks for its room list (rooms, with enough state to draw each line).
SLIDING_REQUEST = {
    "lists": {
        "all_rooms": {
            "ranges": [[0, 19]],
            "timeline_limit": 10,
            "required_state": [
                ["m.room.avatar", ""],
                ["m.room.encryption", ""],
                ["m.room.member", "$LAZY"],
                ["m.room.member", "$ME"],
                ["m.room.name", ""],
                ["m.room.canonical_alias", ""],
                ["m.room.power_levels", ""],
                ["m.room.join_rules", ""],
                ["m.room.create", ""],
                ["m.room.topic", ""],
            ],
        }
    }
}
# The same, long-polled for news as Element X does: its extensions on (to-device, E2EE,
# account data, receipts, typing), each answered only when it has something.
SLIDING_FOLLOW = {
    **SLIDING_REQUEST,
    "extensions": {
        "to_device": {"enabled": True},
        "e2ee": {"enabled": True},
        "account_data": {"enabled": True},
        "receipts": {"enabled": True},
        "typing": {"enabled": True},
    },
}
CLIENTS = ("lazy", "sliding")
MARK = "morning:"
STUDENT = "ученик"
ADMINISTRATOR = "администратор"

T = TypeVar("T")


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def spread(values: Sequence[float], unit: float = 1.0) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(pct(values, 0.5) * unit, 3),
        "p95": round(pct(values, 0.95) * unit, 3),
        "p99": round(pct(values, 0.99) * unit, 3),
        "max": round((max(values) if values else float("nan")) * unit, 3),
    }


def where_the_bytes_are(body: dict[str, Any]) -> dict[str, int]:
    """KB of one /sync answer by section and event type (the ten largest)."""
    sizes: dict[str, int] = {}

    def add(key: str, value: Any) -> None:
        sizes[key] = sizes.get(key, 0) + len(json.dumps(value, separators=(",", ":")))

    for key, value in body.items():
        if key != "rooms":
            add(key, value)
    for room in body.get("rooms", {}).get("join", {}).values():
        for section in ("state", "timeline"):
            for event in room.get(section, {}).get("events", []):
                add(f"{section} {event.get('type')}", event)
        for key in ("ephemeral", "account_data", "summary", "unread_notifications"):
            add(f"room {key}", room.get(key, {}))
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:10]
    return {k: round(v / 1024) for k, v in top}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ProcessMeter:
    """RSS and CPU of each process (Synapse's, the workers', Redis, the router, the
    bot), per phase, read from /proc."""

    def __init__(self, pids: Callable[[], dict[str, int]]) -> None:
        self._pids = pids
        self.max_rss_mb: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def _each(self, read: Callable[[int], float]) -> dict[str, float]:
        out = {}
        for name, pid in self._pids().items():
            with contextlib.suppress(OSError):
                out[name] = read(pid)
        return out

    async def _sample(self) -> None:
        while True:
            for name, rss in self._each(_rss_mb).items():
                self.max_rss_mb[name] = max(self.max_rss_mb.get(name, 0.0), rss)
            await asyncio.sleep(0.5)

    @contextlib.asynccontextmanager
    async def phase(self, name: str, report: dict[str, Any]) -> AsyncIterator[None]:
        cpu, wall, load = self._each(_cpu_s), time.monotonic(), load_average()
        self.max_rss_mb = {}
        self._task = asyncio.create_task(self._sample())
        try:
            yield
        finally:
            self._task.cancel()
            elapsed = max(time.monotonic() - wall, 1e-9)
            rss, cpu_now = self._each(_rss_mb), self._each(_cpu_s)
            report.setdefault("processes", {})[name] = {
                "seconds": round(elapsed, 1),
                "load_before": load,
                "load_after": load_average(),
                "cpu_percent": {
                    p: round(100 * (cpu_now[p] - cpu.get(p, 0.0)) / elapsed) for p in cpu_now
                },
                "rss_max_mb": {
                    p: round(max(self.max_rss_mb.get(p, 0.0), r)) for p, r in rss.items()
                },
                "rss_end_mb": {p: round(r) for p, r in rss.items()},
            }


def process_ids(env: BridgeEnv) -> dict[str, int]:
    """Synapse's processes by name ("synapse" alone, or "main" and the workers, Redis
    and the router), the bot's and this load tool's own."""
    hs = env.hs
    pids = {("main" if hs.others else "synapse"): hs.proc.pid}
    pids.update((name, proc.pid) for name, proc in hs.others)
    if env.bot.proc is not None:
        pids["bot"] = env.bot.proc.pid
    # The load tool shares the machine: its own CPU says whether it kept up.
    pids["load tool"] = os.getpid()
    return pids


async def limited(jobs: Sequence[Callable[[], Awaitable[T | None]]], limit: int) -> list[T]:
    """Run ``jobs``, ``limit`` at a time; the results that are not None."""
    queue = iter(enumerate(jobs))
    out: list[T | None] = [None] * len(jobs)

    async def worker() -> None:
        for i, job in queue:
            out[i] = await job()

    await asyncio.gather(*(worker() for _ in range(max(1, min(limit, len(jobs))))))
    return [o for o in out if o is not None]


@attrs.define
class Morning:
    """The running scenario: the homeserver, the school, and who holds which token."""

    env: BridgeEnv
    http: aiohttp.ClientSession
    operator: str
    school_id: str = ""
    announcements: str = ""
    class_chat: dict[str, str] = attrs.Factory(dict)  # class title → room
    pupils: list[SignIn] = attrs.Factory(list)
    admin: SignIn | None = None
    tokens: dict[str, str] = attrs.Factory(dict)
    errors: list[str] = attrs.Factory(list)
    # How often the waits for joins behind the import or a sign-in ask (the figures'
    # resolution; the tests ask more often, to be done sooner).
    poll_s: float = 2.0

    @property
    def base(self) -> str:
        return self.env.hs.base_url

    async def request(
        self, method: str, path: str, token: str | None, body: Any = None
    ) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
                raw = await r.read()
                if r.status != 200:
                    self.errors.append(f"{method} {path.split('?')[0]} → {r.status} {raw[:200]!r}")
                return r.status, raw
        except (TimeoutError, aiohttp.ClientError) as e:
            self.errors.append(f"{method} {path.split('?')[0]} → {type(e).__name__} {e}")
            return 0, b""

    async def json(self, method: str, path: str, token: str | None, body: Any = None) -> Any:
        status, raw = await self.request(method, path, token, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} → {status} {raw[:300]!r}")
        return json.loads(raw)


async def import_school(m: Morning, students: int) -> dict[str, Any]:
    files = make_school(students, seed=22, school_id="morning", prefix="m-")
    roster = read_files({k: v.encode() for k, v in files.items()})
    db = create_database(load(m.env.bot.config_path).database)
    await db.start()
    started = time.monotonic()
    try:
        # As the roster CLI does: with the operator's own token (the bot acts for a person
        # only on their command).
        module = ModuleClient(m.http, m.base, m.tokens[m.operator], acts_for_others=False)
        sync = RosterSync(db, module, m.operator, m.env.hs.server_name)
        result = await sync.apply(await sync.plan(roster), "morning")
    finally:
        await db.stop()
    wall = time.monotonic() - started
    m.pupils = [s for s in result.sign_ins if s.role == STUDENT]
    m.admin = next(s for s in result.sign_ins if s.role == ADMINISTRATOR)
    school = await m.json("GET", f"{API}/schools/by_external_id/morning", m.tokens[m.operator])
    m.school_id = school["school_id"]
    m.announcements = school["rooms"]["announcements"]
    classes = await m.json("GET", f"{API}/schools/{m.school_id}/classes", m.tokens[m.operator])
    m.class_chat = {c["title"]: c["rooms"]["class_chat"] for c in classes["classes"]}
    return {
        "people": len(result.sign_ins),
        "pupils": len(m.pupils),
        "classes": len(m.class_chat),
        "seconds": round(wall, 1),
    }


async def open_rooms_joined(m: Morning, limit_s: float) -> dict[str, Any]:
    """After the import: wait until everyone on the school's roster is in the
    announcements room (the module joins them to the school-wide rooms in the background,
    ``open_rooms_at_import``), polling its members through the admin API every
    ``m.poll_s`` (2 s), so that the morning measured is the morning, not the import's
    tail."""
    listed = await m.json("GET", f"{API}/schools/{m.school_id}/members", m.tokens[m.operator])
    everyone = {x["user_id"] for x in listed["members"]}
    path = f"/_synapse/admin/v1/rooms/{urllib.parse.quote(m.announcements)}/members"
    started = time.monotonic()
    deadline = started + limit_s
    joined: set[str] = set()
    while True:
        joined = set((await m.json("GET", path, m.tokens[m.operator]))["members"]) & everyone
        if joined == everyone or time.monotonic() >= deadline:
            break
        await asyncio.sleep(m.poll_s)
    wall = time.monotonic() - started
    return {
        "people": len(everyone),
        "joined": len(joined),
        "seconds_after_import": round(wall, 1),
    }


async def sign_in(m: Morning, who: SignIn) -> float | None:
    """Seconds until the login answered (None when it failed: counted in errors)."""
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": who.user_id},
        "password": who.code,
    }
    started = time.monotonic()
    status, raw = await m.request("POST", "/_matrix/client/v3/login", None, body)
    if status != 200:
        return None
    m.tokens[who.user_id] = json.loads(raw)["access_token"]
    return time.monotonic() - started


async def sign_ins(m: Morning, people: Sequence[SignIn], concurrency: int) -> dict[str, Any]:
    started = time.monotonic()
    answered: dict[str, float] = {}

    def job(who: SignIn) -> Callable[[], Awaitable[float | None]]:
        async def run() -> float | None:
            seconds = await sign_in(m, who)
            if seconds is not None:
                answered[who.user_id] = time.monotonic()
            return seconds

        return run

    seconds = await limited([job(p) for p in people], concurrency)
    wall = time.monotonic() - started
    return {
        "people": len(people),
        "wall_s": round(wall, 1),
        "per_second": round(len(people) / wall, 1),
        "login_ms": spread(seconds, 1000),
        "_answered": answered,
    }


async def rooms_ready(m: Morning, answered: dict[str, float], limit_s: float) -> dict[str, Any]:
    """Poll the member list until nobody of ``answered`` has rooms pending."""
    ready: dict[str, float] = {}
    deadline = time.monotonic() + limit_s
    while len(ready) < len(answered) and time.monotonic() < deadline:
        listed = await m.json("GET", f"{API}/schools/{m.school_id}/members", m.tokens[m.operator])
        waiting = {x["user_id"] for x in listed["members"] if x.get("signed_in") is False}
        now = time.monotonic()
        for user_id in answered:
            if user_id not in waiting and user_id not in ready:
                ready[user_id] = now
        if len(ready) < len(answered):
            await asyncio.sleep(m.poll_s)
    lags = [ready[u] - answered[u] for u in ready]
    last = max(ready.values(), default=time.monotonic()) - min(answered.values())
    return {
        "ready": len(ready),
        "not_ready": len(answered) - len(ready),
        "after_login_s": spread(lags),
        "all_ready_after_first_login_s": round(last, 1),
        "people_per_s": round(len(ready) / last, 2) if last > 0 else None,
    }


def user_directory(m: Morning) -> dict[str, int]:
    """Synapse's user directory, read from its database: the rows it keeps for people
    who share a private room (one per pair and room) and for people in public rooms (one
    per person and room), and how many events it has still to process."""
    hs = m.env.hs
    [(pairs,)] = hs.rows("SELECT COUNT(*) FROM users_who_share_private_rooms")
    [(public,)] = hs.rows("SELECT COUNT(*) FROM users_in_public_rooms")
    [(newest,)] = hs.rows("SELECT MAX(stream_ordering) FROM events")
    [(done,)] = hs.rows("SELECT stream_id FROM user_directory_stream_pos")
    return {
        "users_who_share_private_rooms": int(pairs),
        "users_in_public_rooms": int(public),
        "events_behind": int(newest or 0) - int(done or 0),
    }


def sync_path(filter_: dict[str, Any], since: str | None = None, timeout: int = 0) -> str:
    query = {"filter": json.dumps(filter_, separators=(",", ":")), "timeout": str(timeout)}
    if since:
        query["since"] = since
    return "/_matrix/client/v3/sync?" + urllib.parse.urlencode(query)


async def initial_syncs(
    m: Morning, concurrency: int, samples: int, people: Sequence[SignIn] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The initial syncs of ``people`` (every pupil unless said)."""
    pupils = m.pupils if people is None else list(people)
    since: dict[str, str] = {}

    def job(user_id: str) -> Callable[[], Awaitable[tuple[int, float]]]:
        async def run() -> tuple[int, float]:
            started = time.monotonic()
            status, raw = await m.request("GET", sync_path(LAZY_FILTER), m.tokens[user_id])
            if status == 200:
                since[user_id] = json.loads(raw)["next_batch"]
            return len(raw), time.monotonic() - started

        return run

    started = time.monotonic()
    results = await limited([job(p.user_id) for p in pupils], concurrency)
    wall = time.monotonic() - started
    report: dict[str, Any] = {
        "lazy": {
            "pupils": len(results),
            "wall_s": round(wall, 1),
            "kb": spread([b for b, _ in results], 1 / 1024),
            "seconds": spread([s for _, s in results]),
        }
    }
    sample = pupils[:: max(1, len(pupils) // max(1, samples))][:samples]
    if sample:
        status, raw = await m.request("GET", sync_path(LAZY_FILTER), m.tokens[sample[0].user_id])
        if status == 200:
            report["lazy_kb_by_type"] = where_the_bytes_are(json.loads(raw))
    eager, sliding = [], []
    for p in sample:
        token = m.tokens[p.user_id]
        started = time.monotonic()
        status, raw = await m.request("GET", sync_path(EAGER_FILTER), token)
        eager.append((len(raw), time.monotonic() - started))
        started = time.monotonic()
        status, raw = await m.request("POST", SLIDING_SYNC, token, SLIDING_REQUEST)
        sliding.append((len(raw) if status == 200 else -1, time.monotonic() - started))
    for name, got in (("eager", eager), ("sliding", sliding)):
        report[name] = {
            "pupils": len(got),
            "kb": spread([b for b, _ in got], 1 / 1024),
            "seconds": spread([s for _, s in got]),
        }
    return report, since


@attrs.define
class Delivery:
    # In each send's transaction id: a second delivery phase on the same homeserver
    # (bench/school_delivery.py) must not be answered from Synapse's transaction cache.
    nonce: str = attrs.Factory(lambda: secrets.token_hex(4))
    sent: dict[str, float] = attrs.Factory(dict)  # message id → send started
    expected: dict[str, set[str]] = attrs.Factory(dict)  # message id → recipients
    arrived: dict[str, set[str]] = attrs.Factory(dict)
    latencies: list[float] = attrs.Factory(list)
    send_seconds: list[float] = attrs.Factory(list)
    outstanding: int = 0
    sending: bool = True
    # Wall clock (ms) when the delivery began: where a gap's backfill stops.
    started_ms: int = attrs.Factory(lambda: int(time.time() * 1000))
    limited_syncs: int = 0  # syncs whose timeline had a gap (more than its limit)
    backfilled: int = 0  # deliveries that came through /messages, filling such a gap
    sync_answers: int = 0  # long polls answered (woken or timed out) over all pupils
    member_events: int = 0  # membership events in those answers' timelines (joins, …)
    # Each pupil's last position (next_batch / pos): a later phase follows on from it.
    positions: dict[str, str] = attrs.Factory(dict)
    done: asyncio.Event = attrs.Factory(asyncio.Event)

    def arrive(self, mid: str, user_id: str, now: float) -> None:
        if user_id in self.expected.get(mid, ()) and user_id not in self.arrived[mid]:
            self.arrived[mid].add(user_id)
            self.latencies.append(now - self.sent[mid])
            self.outstanding -= 1
            self.check()

    def check(self) -> None:
        if not self.sending and self.outstanding == 0:
            self.done.set()

    def missing(self) -> int:
        return sum(len(self.expected[i] - self.arrived.get(i, set())) for i in self.expected)


def _note_marked(d: Delivery, events: list[Any], user_id: str, now: float) -> int:
    """Note the marked messages among ``events``; how many there were."""
    marked = 0
    for event in events:
        text = event.get("content", {}).get("body", "")
        if isinstance(text, str) and text.startswith(MARK):
            marked += 1
            d.arrive(text[len(MARK) :].split(" ", 1)[0], user_id, now)
    return marked


def _members(events: list[Any]) -> int:
    return sum(1 for e in events if e.get("type") == "m.room.member")


async def backfill(m: Morning, d: Delivery, user_id: str, room_id: str, prev_batch: str) -> None:
    """A limited timeline (more events since the last sync than its limit) leaves a gap;
    a client fills it from /messages, as Element does. Page back to the delivery's
    start, counting what arrives this way as arriving now."""
    token, start = m.tokens[user_id], prev_batch
    lazy = urllib.parse.quote(json.dumps({"lazy_load_members": True}))
    room = urllib.parse.quote(room_id)
    for _ in range(20):
        path = (
            f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=20"
            f"&from={urllib.parse.quote(start)}&filter={lazy}"
        )
        status, raw = await m.request("GET", path, token)
        if status != 200:
            return
        body = json.loads(raw)
        chunk = body.get("chunk", [])
        d.backfilled += _note_marked(d, chunk, user_id, time.monotonic())
        if not chunk or "end" not in body:
            return
        if min(e.get("origin_server_ts", 0) for e in chunk) < d.started_ms:
            return
        start = body["end"]


async def follow(m: Morning, user_id: str, since: str, d: Delivery, stop: asyncio.Event) -> None:
    """One pupil's client: long-poll /sync and note every marked message's arrival,
    filling a limited timeline's gap from /messages as a real client does."""
    token = m.tokens[user_id]
    while not stop.is_set():
        status, raw = await m.request("GET", sync_path(LAZY_FILTER, since, 10000), token)
        if status != 200:
            await asyncio.sleep(1)
            continue
        body = json.loads(raw)
        now = time.monotonic()
        since = d.positions[user_id] = body["next_batch"]
        d.sync_answers += 1
        for room_id, room in body.get("rooms", {}).get("join", {}).items():
            timeline = room.get("timeline", {})
            _note_marked(d, timeline.get("events", []), user_id, now)
            d.member_events += _members(timeline.get("events", []))
            if timeline.get("limited") and timeline.get("prev_batch"):
                d.limited_syncs += 1
                await backfill(m, d, user_id, room_id, timeline["prev_batch"])


async def initial_sliding(m: Morning, concurrency: int) -> dict[str, str]:
    """Every pupil's first sliding sync (Element X's room list): its ``pos`` to follow."""
    pos: dict[str, str] = {}

    def job(user_id: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            status, raw = await m.request("POST", SLIDING_SYNC, m.tokens[user_id], SLIDING_FOLLOW)
            if status == 200:
                pos[user_id] = json.loads(raw)["pos"]

        return run

    await limited([job(p.user_id) for p in m.pupils], concurrency)
    return pos


async def follow_sliding(
    m: Morning, user_id: str, pos: str, d: Delivery, stop: asyncio.Event
) -> None:
    """One pupil's Element X: long-poll sliding sync from ``pos`` and note every marked
    message's arrival (a limited timeline filled from /messages, as with /sync)."""
    token = m.tokens[user_id]
    to_device: str | None = None
    while not stop.is_set():
        body: dict[str, Any] = json.loads(json.dumps(SLIDING_FOLLOW))
        if to_device:
            body["extensions"]["to_device"]["since"] = to_device
        query = urllib.parse.urlencode({"pos": pos, "timeout": "10000"})
        status, raw = await m.request("POST", f"{SLIDING_SYNC}?{query}", token, body)
        if status != 200:
            await asyncio.sleep(1)
            continue
        answer = json.loads(raw)
        now = time.monotonic()
        pos = d.positions[user_id] = answer["pos"]
        d.sync_answers += 1
        to_device = answer.get("extensions", {}).get("to_device", {}).get("next_batch", to_device)
        for room_id, room in answer.get("rooms", {}).items():
            _note_marked(d, room.get("timeline", []), user_id, now)
            d.member_events += _members(room.get("timeline", []))
            if room.get("limited") and room.get("prev_batch"):
                d.limited_syncs += 1
                await backfill(m, d, user_id, room_id, room["prev_batch"])


async def send(m: Morning, d: Delivery, sender: str, room_id: str, to: set[str]) -> None:
    mid = f"{len(d.sent):06d}"
    d.expected[mid] = to - {sender}
    d.arrived[mid] = set()
    d.outstanding += len(d.expected[mid])
    d.sent[mid] = started = time.monotonic()
    path = (
        f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/send/m.room.message/"
        f"morning-{d.nonce}-{mid}"
    )
    body = {"msgtype": "m.text", "body": f"{MARK}{mid} Доброе утро / Good morning"}
    status, _ = await m.request("PUT", path, m.tokens[sender], body)
    d.send_seconds.append(time.monotonic() - started)
    if status != 200:  # counted in errors; nobody is to receive it
        d.outstanding -= len(d.expected[mid] - d.arrived[mid])
        d.expected[mid] = set()


async def delivery(
    m: Morning,
    since: dict[str, str],
    senders: int,
    interval: float,
    seconds: float,
    client: str = "lazy",
    positions: dict[str, str] | None = None,
    until: asyncio.Event | None = None,
) -> dict[str, Any]:
    """The delivery phase; ``client``: ``lazy`` (Element: /sync, lazy-loaded members;
    ``since`` holds next_batch tokens) or ``sliding`` (Element X: sliding sync; ``since``
    holds each pupil's ``pos`` from :func:`initial_sliding`). ``positions``, when given,
    receives where each pupil's client got to (a later phase follows on from there);
    ``until``: the messages go on until it is set, if that is later than ``seconds``."""
    d = Delivery()
    stop = asyncio.Event()
    follower = {"lazy": follow, "sliding": follow_sliding}[client]
    followers = [asyncio.create_task(follower(m, u, s, d, stop)) for u, s in since.items()]
    by_class: dict[str, list[str]] = {}
    for p in m.pupils:
        if p.user_id in since:
            by_class.setdefault(p.classes, []).append(p.user_id)
    everyone = set(since)
    # Senders spread over the classes, taken in turn.
    rng = random.Random(22)
    pool = [u for members in by_class.values() for u in members[:3]]
    rng.shuffle(pool)
    pool = pool[:senders]
    class_of = {p.user_id: p.classes for p in m.pupils}
    assert m.admin is not None
    await asyncio.sleep(3)  # every client is in its long poll
    sends = []
    started = time.monotonic()
    tick = 0
    while time.monotonic() - started < seconds or (until is not None and not until.is_set()):
        sends.append(asyncio.create_task(send(m, d, m.admin.user_id, m.announcements, everyone)))
        if pool:
            who = pool[tick % len(pool)]
            room = m.class_chat[class_of[who]]
            sends.append(asyncio.create_task(send(m, d, who, room, set(by_class[class_of[who]]))))
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * interval - time.monotonic()))
    await asyncio.gather(*sends)
    d.sending = False
    d.check()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(d.done.wait(), 30)
    stop.set()
    # Long polls end within their timeout; don't wait for them.
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    if positions is not None:
        positions.update(d.positions)
    expected = sum(len(v) for v in d.expected.values())
    return {
        "client": client,
        "syncing": len(since),
        "messages": len(d.sent),
        "deliveries_expected": expected,
        "deliveries_missing": d.missing(),
        "limited_syncs": d.limited_syncs,
        "backfilled": d.backfilled,
        "latency_s": spread(d.latencies),
        "send_s": spread(d.send_seconds),
        "sync_answers": d.sync_answers,
        "member_events_received": d.member_events,
    }


def new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600))


async def restart_with(m: Morning, module_config: dict[str, Any]) -> None:
    """Synapse again with ``module_config`` changed (and fresh connections to it)."""
    running = m.env.hs
    config = {**running.hs.module_config, **module_config}
    running.hs = attrs.evolve(running.hs, module_config=config)
    running.hs.write_config()
    await m.http.close()
    await asyncio.to_thread(running.restart)
    m.http = new_session()


@contextlib.contextmanager
def environment(
    presence: bool = False, workers: bool = False, client_readers: int = 1
) -> Iterator[BridgeEnv]:
    with (
        tempfile.TemporaryDirectory(prefix="parta-morning-") as tmp,
        bridge_env(Path(tmp), workers=workers, client_readers=client_readers) as env,
    ):
        if presence:
            running = env.hs
            extra = {**running.hs.extra, "presence": {"enabled": True}}
            running.hs = attrs.evolve(running.hs, extra=extra)
            running.hs.write_config()
            running.restart()
        yield env


async def run(
    env: BridgeEnv,
    students: int,
    concurrency: int = 20,
    baseline: int = 0,
    senders: int = 100,
    interval: float = 2.0,
    delivery_s: float = 60.0,
    samples: int = 10,
    ready_limit_s: float = 3600,
    echo: Callable[[str], None] = print,
    sliding: bool = False,
    staggered: bool = False,
    mixed: bool = False,
    open_rooms_at_import: bool = True,
    poll_s: float = 2.0,
) -> dict[str, Any]:
    """The whole scenario on ``env``; returns the report (see the module docstring).
    ``sliding``: a second delivery phase after the first, every pupil on sliding sync
    (Element X) instead (``report["delivery_sliding"]``). ``staggered``: half the pupils
    sign in first and sync; the other half signs in during a first delivery phase
    (``report["delivery_while_joining"]``); the delivery phase after it, to the same
    first half, is the same run's baseline; ``mixed``: the later half is every other
    pupil (each class half syncing, half signing in), not the roster's second half
    (whole classes). ``open_rooms_at_import`` False: the module's setting off (every
    room joined at the first sign-in, as before session 7). ``poll_s``: how often the
    waits for the joins ask whether they are done."""
    topology = (
        "workers: " + ", ".join(n for n, _ in env.hs.others) if env.hs.others else "one process"
    )
    report: dict[str, Any] = {
        "backend": env.hs.backend,
        "students": students,
        "topology": topology,
    }
    operator = await asyncio.to_thread(env.hs.register, "operator", True)
    m = Morning(env=env, http=new_session(), operator=operator.user_id, poll_s=poll_s)
    try:
        m.tokens[operator.user_id] = operator.access_token
        meter = ProcessMeter(lambda: process_ids(env))
        if not open_rooms_at_import:
            await restart_with(m, {"open_rooms_at_import": False})

        async with meter.phase("import", report):
            report["import"] = await import_school(m, students)
        echo(f"import: {report['import']}  (load {load_average()})")
        if env.hs.hs.module_config.get("open_rooms_at_import", True):
            # The school-wide rooms are joined behind the import: the morning starts when
            # they are (a restart for the baseline below would cut them short).
            async with meter.phase("open_rooms", report):
                report["open_rooms"] = await open_rooms_joined(m, ready_limit_s)
            echo(f"school-wide rooms joined: {report['open_rooms']}  (load {load_average()})")

        rest = list(m.pupils)
        if baseline:
            await restart_with(m, {"first_sign_in_joins": "during_login"})
            eager, rest = rest[:baseline], rest[baseline:]
            async with meter.phase("baseline_sign_ins", report):
                result = await sign_ins(m, eager, concurrency)
            result.pop("_answered")
            report["baseline_sign_ins"] = result
            echo(f"baseline (joins during the login): {result}  (load {load_average()})")
            await restart_with(m, {"first_sign_in_joins": "background"})

        # Staggered: the second half of the school signs in later, while the first half
        # is syncing and the messages go out (their joins wake every member's sync).
        # The roster's second half is whole classes; ``mixed``: every other pupil, so
        # each class is half in and syncing, half signing in (as a real morning is).
        late = (rest[1::2] if mixed else rest[len(rest) // 2 :]) if staggered else []
        late_ids = {p.user_id for p in late}
        rest = [p for p in rest if p.user_id not in late_ids]
        assert m.admin is not None
        async with meter.phase("sign_ins", report):
            result = await sign_ins(m, [m.admin, *rest], concurrency)
            answered = result.pop("_answered")
            report["sign_ins"] = result
            echo(f"first sign-ins: {result}  (load {load_average()})")
            report["rooms_ready"] = await rooms_ready(m, answered, ready_limit_s)
        echo(f"rooms joined: {report['rooms_ready']}  (load {load_average()})")
        report["user_directory_when_joined"] = await asyncio.to_thread(user_directory, m)
        echo(f"user directory: {report['user_directory_when_joined']}")

        syncing = [p for p in m.pupils if p.user_id not in late_ids]
        async with meter.phase("initial_syncs", report):
            report["initial_sync"], since = await initial_syncs(m, concurrency, samples, syncing)
        echo(f"initial sync: {report['initial_sync']}  (load {load_average()})")

        if late:
            async with meter.phase("delivery_while_joining", report):
                positions: dict[str, str] = {}
                joined = asyncio.Event()
                # The same delivery as below, to the same pupils, while the rest of the
                # school signs in and until their rooms are all joined.
                during, (late_result, late_ready) = await asyncio.gather(
                    delivery(
                        m, since, senders, interval, delivery_s, positions=positions, until=joined
                    ),
                    _late_sign_ins(m, late, concurrency, ready_limit_s, joined),
                )
            report["delivery_while_joining"] = during
            report["late_sign_ins"], report["late_rooms_ready"] = late_result, late_ready
            echo(f"delivery while the rest join: {during}  (load {load_average()})")
            echo(f"… their sign-ins: {late_result}; rooms: {late_ready}")
            since = await catch_up(m, positions, concurrency)

        async with meter.phase("delivery", report):
            report["delivery"] = await delivery(m, since, senders, interval, delivery_s)
        echo(f"delivery: {report['delivery']}  (load {load_average()})")
        if sliding:
            positions = await initial_sliding(m, concurrency)
            async with meter.phase("delivery_sliding", report):
                report["delivery_sliding"] = await delivery(
                    m, positions, senders, interval, delivery_s, "sliding"
                )
            echo(f"delivery, sliding sync: {report['delivery_sliding']}")
        report["user_directory_at_end"] = await asyncio.to_thread(user_directory, m)
        echo(f"user directory at the end: {report['user_directory_at_end']}")
        report["errors"] = len(m.errors)
        report["error_samples"] = m.errors[:10]
        echo(f"processes: {json.dumps(report['processes'])}")
        echo(f"errors: {len(m.errors)} {m.errors[:5]}")
    finally:
        await m.http.close()
    return report


async def _late_sign_ins(
    m: Morning, late: Sequence[SignIn], concurrency: int, limit_s: float, done: asyncio.Event
) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        await asyncio.sleep(3)  # the delivery's clients are in their long polls
        result = await sign_ins(m, late, concurrency)
        answered = result.pop("_answered")
        return result, await rooms_ready(m, answered, limit_s)
    finally:
        done.set()


async def catch_up(m: Morning, since: dict[str, str], concurrency: int) -> dict[str, str]:
    """Each client's sync once, without waiting: where it stands now (what came while it
    was not polling is behind it, as for a client that was away)."""
    now: dict[str, str] = {}

    def job(user_id: str, position: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            path = sync_path(LAZY_FILTER, position)
            status, raw = await m.request("GET", path, m.tokens[user_id])
            if status == 200:
                now[user_id] = json.loads(raw)["next_batch"]

        return run

    await limited([job(u, p) for u, p in since.items()], concurrency)
    return now


def summary(report: dict[str, Any]) -> list[str]:
    """The figures issue #22 asks for, one line each (the JSON report has the rest)."""
    lines = [
        f"{report['students']} students, {report['backend']}, {report['topology']};"
        f" import: {report['import']['people']} people in {report['import']['seconds']} s",
    ]
    if "open_rooms" in report:
        o = report["open_rooms"]
        lines.append(
            f"school-wide rooms joined behind the import: {o['joined']} of {o['people']}"
            f" people, {o['seconds_after_import']} s after it answered"
        )
    if "baseline_sign_ins" in report:
        b = report["baseline_sign_ins"]
        lines.append(
            f"baseline sign-ins (the login waits for the joins): {b['people']} in"
            f" {b['wall_s']} s; p50 {b['login_ms']['p50']:.0f} ms,"
            f" p95 {b['login_ms']['p95']:.0f} ms"
        )
    si, ready = report["sign_ins"], report["rooms_ready"]
    lines += [
        f"first sign-ins: {si['people']} in {si['wall_s']} s ({si['per_second']}/s);"
        f" p50 {si['login_ms']['p50']:.0f} ms, p95 {si['login_ms']['p95']:.0f} ms",
        f"rooms joined behind them: {ready['ready']} ready, {ready['not_ready']} not;"
        f" after the login p50 {ready['after_login_s']['p50']} s, p95"
        f" {ready['after_login_s']['p95']} s; all {ready['all_ready_after_first_login_s']} s"
        f" after the first login ({ready['people_per_s']} people/s)",
    ]
    if "late_sign_ins" in report:
        late, ready = report["late_sign_ins"], report["late_rooms_ready"]
        lines.append(
            f"the rest signing in meanwhile: {late['people']} in {late['wall_s']} s;"
            f" p95 {late['login_ms']['p95']:.0f} ms; rooms all joined"
            f" {ready['all_ready_after_first_login_s']} s after their first login"
        )
    for when in ("when_joined", "at_end"):
        u = report[f"user_directory_{when}"]
        lines.append(
            f"user directory {when.replace('_', ' ')}: {u['users_who_share_private_rooms']}"
            f" rows users_who_share_private_rooms, {u['users_in_public_rooms']}"
            f" users_in_public_rooms, {u['events_behind']} events behind"
        )
    sync = report["initial_sync"]
    kinds = [("lazy", "lazy-loaded members"), ("eager", "full members"), ("sliding", "sliding")]
    lines.append(
        "initial sync per pupil: "
        + "; ".join(
            f"{label} {sync[k]['kb']['p50']:.0f} KB (p95 {sync[k]['kb']['p95']:.0f} KB,"
            f" {sync[k]['seconds']['p50']} s)"
            for k, label in kinds
            if sync.get(k, {}).get("pupils")
        )
    )
    for key, label in (
        ("delivery_while_joining", "delivery while the rest of the school signs in"),
        ("delivery", "delivery"),
        ("delivery_sliding", "delivery, sliding sync"),
    ):
        if key not in report:
            continue
        d = report[key]
        lines.append(
            f"{label}: {d['syncing']} syncing, {d['messages']} messages,"
            f" {d['deliveries_expected']} deliveries, {d['deliveries_missing']} missing"
            f" ({d['backfilled']} through /messages after {d['limited_syncs']} limited syncs);"
            f" p50 {d['latency_s']['p50']} s, p95 {d['latency_s']['p95']} s,"
            f" p99 {d['latency_s']['p99']} s; sends p50 {d['send_s']['p50']} s;"
            f" {d['sync_answers']} sync answers carrying {d['member_events_received']}"
            " membership events"
        )
    lines.append(f"HTTP errors: {report['errors']}")
    rss: dict[str, int] = {}
    for phase in report["processes"].values():
        for name, mb in phase["rss_max_mb"].items():
            rss[name] = max(rss.get(name, 0), mb)
    lines.append("RSS max (MB): " + ", ".join(f"{n} {mb}" for n, mb in rss.items()))
    for name, phase in report["processes"].items():
        cpu = ", ".join(f"{n} {c}" for n, c in phase["cpu_percent"].items())
        lines.append(
            f"{name}: {phase['seconds']} s, CPU % of a core: {cpu};"
            f" load {phase['load_before']} → {phase['load_after']}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--baseline", type=int, default=40, help="pupils on the old path")
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--delivery", type=float, default=60.0, help="seconds of messages")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument(
        "--presence", action="store_true", help="Synapse's presence on (the config has it off)"
    )
    parser.add_argument(
        "--workers",
        action="store_true",
        help="PostgreSQL, main + client reader + event persister over Redis (no baseline)",
    )
    parser.add_argument(
        "--client-readers",
        type=int,
        default=1,
        help="with --workers: how many client readers answer /sync (a pupil sticks to one)",
    )
    parser.add_argument(
        "--sliding", action="store_true", help="a second delivery phase on sliding sync"
    )
    parser.add_argument(
        "--staggered",
        action="store_true",
        help="half the pupils sign in while the other half syncs and the messages go out",
    )
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="with --staggered: every other pupil signs in later (each class half in)",
    )
    parser.add_argument(
        "--rooms-at-sign-in",
        action="store_true",
        help="open_rooms_at_import: false (every room joined at the first sign-in)",
    )
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args()

    async def go() -> dict[str, Any]:
        with environment(args.presence, args.workers, args.client_readers) as env:
            return await run(
                env,
                args.students,
                args.concurrency,
                # The baseline restarts Synapse with another module config: one process.
                0 if args.workers else args.baseline,
                args.senders,
                args.interval,
                args.delivery,
                args.samples,
                sliding=args.sliding,
                staggered=args.staggered,
                mixed=args.mixed,
                open_rooms_at_import=not args.rooms_at_sign_in,
            )

    report = asyncio.run(go())
    report["cores"] = os.cpu_count()
    report["presence"] = args.presence
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print("\n".join(summary(report)))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
