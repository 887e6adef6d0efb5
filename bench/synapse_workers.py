"""Synapse with Parta: one process against main + 2 workers, messages/s and sync latency.

Both topologies run in the same session on PostgreSQL with the module loaded (workers:
main + client reader + event persister over a private Redis, behind the development
router — the same shape tests/test_workers.py runs), one after the other, alternating
``--rounds`` times so a change in the machine's load hits both. The load:

* ``--rooms`` rooms, each with ``--senders`` people sending ``--messages`` messages each,
  as fast as Synapse answers (one message in flight per sender);
* ``--watchers`` more people per room long-polling /sync (what a class's phones do).

Figures: messages/s (all messages over the wall time of the send phase), and sync
latency: from the moment a message is sent to its arrival in each watcher's /sync (what
a classmate waits), p50/p95 over every (message, watcher) pair, split into the send's own
round trip and what /sync adds after the sender's answer. The machine's 1-minute
load average is printed beside each figure: other processes (other developers, CI)
share its 2 cores, and there three Synapse processes compete with the load generator
for the same CPUs, so the ratio here is a floor for what workers give on a machine with
a core per process.

    python -m bench synapse_workers [--rounds 2] [--rooms 5] [--senders 4] ...
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.synapse_tools import call, login_as, make_users, session
from tests.harness import RunningHomeserver, running_homeserver, running_workers


@contextlib.contextmanager
def topology(kind: str) -> Iterator[RunningHomeserver]:
    with tempfile.TemporaryDirectory(prefix=f"parta-bench-{kind}-") as tmp:
        if kind == "single":
            with running_homeserver(Path(tmp), backend="postgres") as hs:
                yield hs
        else:
            with running_workers(Path(tmp)) as hs:
                yield hs


async def measure(hs: RunningHomeserver, args: argparse.Namespace) -> dict[str, Any]:
    admin = hs.register("benchadmin", admin=True)
    per_room = args.senders + args.watchers
    ids = await make_users(hs, admin, "p", args.rooms * per_room)
    tokens = await asyncio.gather(*(login_as(hs, admin, u) for u in ids))
    people = list(zip(ids, tokens, strict=True))
    base = f"{hs.base_url}/_matrix/client/v3"

    rooms: list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]] = []
    async with session(admin.access_token) as s:
        for r in range(args.rooms):
            members = people[r * per_room : (r + 1) * per_room]
            room = await call(
                s,
                "POST",
                f"{base}/createRoom",
                {"preset": "public_chat", "name": f"bench {r}"},
            )
            rooms.append((room["room_id"], members[: args.senders], members[args.senders :]))
    for room_id, senders, watchers in rooms:
        for _, token in senders + watchers:
            async with session(token) as s:
                await call(s, "POST", f"{base}/join/{room_id}", {})

    sent_at: dict[str, float] = {}
    answered_at: dict[str, float] = {}
    send_times: list[float] = []
    latencies: list[float] = []
    seen_at: list[tuple[str, float]] = []
    total = args.rooms * args.senders * args.messages
    expected = total * args.watchers
    done = asyncio.Event()

    async def watch(token: str) -> None:
        async with session(token) as s:
            first = await call(s, "GET", f"{base}/sync?timeout=0")
            since = first["next_batch"]
            while not done.is_set():
                data = await call(s, "GET", f"{base}/sync?timeout=5000&since={since}")
                now = time.perf_counter()
                since = data["next_batch"]
                for room in data.get("rooms", {}).get("join", {}).values():
                    for event in room.get("timeline", {}).get("events", []):
                        marker = event.get("content", {}).get("bench")
                        if marker in sent_at:
                            latencies.append(now - sent_at[marker])
                            seen_at.append((marker, now))
                if len(latencies) >= expected:
                    done.set()

    async def send(token: str, room_id: str, who: int) -> None:
        async with session(token) as s:
            for i in range(args.messages):
                marker = f"{who}-{i}"
                sent_at[marker] = time.perf_counter()
                await call(
                    s,
                    "PUT",
                    f"{base}/rooms/{room_id}/send/m.room.message/{marker}",
                    {"msgtype": "m.text", "body": f"сообщение {i}", "bench": marker},
                )
                answered_at[marker] = time.perf_counter()
                send_times.append(answered_at[marker] - sent_at[marker])

    watch_tasks = [asyncio.create_task(watch(token)) for _, _, ws in rooms for _, token in ws]
    await asyncio.sleep(1)  # every watcher is in its long poll
    processes = [("main", hs.proc), *((n, p) for n, p in hs.others if n not in ("redis", "router"))]
    cpu_before = sum(cpu_seconds(p.pid) for _, p in processes)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    n = 0
    send_jobs = []
    for room_id, ss, _ in rooms:
        for _, token in ss:
            send_jobs.append(send(token, room_id, n))
            n += 1
    await asyncio.gather(*send_jobs)
    send_seconds = time.perf_counter() - start
    cpu_used = sum(cpu_seconds(p.pid) for _, p in processes) - cpu_before
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=120)
    done.set()
    for task in watch_tasks:
        task.cancel()
    await asyncio.gather(*watch_tasks, return_exceptions=True)
    latencies.sort()
    send_times.sort()
    # After the sender's answer: what sync adds once the message is stored (≤ 0: a
    # watcher had it before the sender's own answer came back).
    after = sorted(max(0.0, t - answered_at[m]) for m, t in seen_at if m in answered_at)
    return {
        "messages": total,
        "messages_per_second": round(total / send_seconds, 1),
        # Synapse's own CPU (every process) over the send phase: what a core buys.
        "synapse_cores_used": round(cpu_used / send_seconds, 2),
        "messages_per_synapse_cpu_second": round(total / cpu_used, 1),
        "sync_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "sync_latency_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "send_p50_ms": round(statistics.median(send_times) * 1000, 1),
        "sync_after_send_answer_p50_ms": round(statistics.median(after) * 1000, 1),
        "sync_after_send_answer_p95_ms": round(after[int(len(after) * 0.95) - 1] * 1000, 1),
        "deliveries_seen": f"{len(latencies)}/{expected}",
        "load_average_1m": f"{load_before:.1f} → {os.getloadavg()[0]:.1f}",
        "rss_mib": {name: rss_mib(proc.pid) for name, proc in processes},
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> int:
    """Resident memory of a process, MiB (/proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=5)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--watchers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=40)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"single": [], "workers": []}
    for round_ in range(args.rounds):
        order = ("single", "workers") if round_ % 2 == 0 else ("workers", "single")
        for kind in order:
            with topology(kind) as hs:
                figures = asyncio.run(measure(hs, args))
            results[kind].append(figures)
            print(kind, json.dumps(figures, ensure_ascii=False), flush=True)
    print()
    print(f"cores: {os.cpu_count()}  (main + 2 workers compete for them with the load generator)")
    for metric in (
        "messages_per_second",
        "messages_per_synapse_cpu_second",
        "sync_latency_p50_ms",
        "sync_latency_p95_ms",
        "send_p50_ms",
        "sync_after_send_answer_p50_ms",
        "sync_after_send_answer_p95_ms",
    ):
        single = statistics.median(r[metric] for r in results["single"])
        workers = statistics.median(r[metric] for r in results["workers"])
        print(
            f"{metric:24s} single {single:8.1f}  workers {workers:8.1f}",
            f"ratio {workers / single:.2f}",
        )


if __name__ == "__main__":
    main()
