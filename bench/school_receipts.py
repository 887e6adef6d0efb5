"""The read-receipt wave: a school reads one announcement while everyone syncs (issue #22).

    python -m bench school_receipts --students 300 --readers 300
    PARTA_TEST_DB=sqlite python -m bench.school_receipts --students 40 --readers 40
    options: [--spread 5] [--concurrency 20] [--poll 30] [--quiet 5] [--settle 120]
             [--rounds 1] [--variants none,m.read.private,m.read,m.read+filter,m.read/unsynced]
             [--json results.json]

Real clients (Element Web, Element X, FluffyChat) send a public read receipt
(``POST /rooms/{id}/receipt/m.read/{event}``) when their user reads a message, and
Synapse hands every public receipt in a room to every member's /sync: in the
announcements room (every pupil of the school) a thousand pupils reading one
announcement is up to a thousand times a thousand sync answers.

On a fresh Synapse with the module and the bot's registration (127.0.0.1, the config
``make run`` generates, one process; PostgreSQL unless PARTA_TEST_DB=sqlite), the school
is imported and signed in once as ``bench/school_morning.py`` does (the sample school of
``--students`` pupils, every pupil's rooms joined, one initial sync each, lazy-loaded
members). Then, for each of ``--variants`` in turn (``--rounds`` times):

1. every pupil long-polls /sync (``--poll`` s; the morning's lazy filter) and the load
   tool waits until they are all in their long poll;
2. the administrator posts one announcement;
3. ``--readers`` pupils (the same ones every time) read it: each, once its own sync has
   brought the announcement, waits a random 0..``--spread`` s (pupils opening the app)
   and posts a receipt of the variant's type on it, ``--concurrency`` at a time;
4. the window closes when every receipt is posted, no sync answer has carried anything
   for ``--quiet`` s and Synapse's CPU over the last ``--quiet`` s is under 15 % of a
   core (at most ``--settle`` s after the last receipt).

The variants: ``none`` (the baseline: the announcement alone), ``m.read.private`` (what
Element Web sends with ``sendReadReceipts: false``), ``m.read`` (public, every client's
default) and ``m.read+filter`` (public receipts, but every pupil's sync filter drops
``m.receipt`` from ``room.ephemeral``: does the filter stop the wake-ups?) and
``m.read/unsynced`` (public receipts with nobody syncing: what the receipts' own writes
cost, to subtract).

Per variant: Synapse's CPU seconds over the window (from /proc), the sync answers all
clients received and how many carried something (wake-ups; the others are long polls
that timed out), how many carried receipts, bytes, the time from the announcement until
the last answer that carried something and until Synapse was last busy, the
announcement's delivery p50/p95, the receipts' own latency, HTTP errors, the load
average. Compare variants by their ratios against ``none`` in the same run; write the
load average beside any figure. Everything stops by itself; the homeserver and the bot
are torn down at the end. The last lines printed are the figures, one a variant.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from bench.school_morning import (
    LAZY_FILTER,
    MARK,
    Morning,
    _cpu_s,
    import_school,
    initial_syncs,
    load_average,
    new_session,
    rooms_ready,
    sign_ins,
    spread,
)
from tests.bridge_env import BridgeEnv, bridge_env

# The morning's filter with m.receipt dropped from the rooms' ephemeral events.
NO_RECEIPTS_FILTER: dict[str, Any] = {
    "room": {**LAZY_FILTER["room"], "ephemeral": {"not_types": ["m.receipt"]}}
}
# Variant → (receipt type posted or None, the pupils' sync filter or None: nobody
# syncing, what the receipts' own writes cost).
VARIANTS: dict[str, tuple[str | None, dict[str, Any] | None]] = {
    "none": (None, LAZY_FILTER),
    "m.read.private": ("m.read.private", LAZY_FILTER),
    "m.read": ("m.read", LAZY_FILTER),
    "m.read+filter": ("m.read", NO_RECEIPTS_FILTER),
    "m.read/unsynced": ("m.read", None),
}
DEFAULT_VARIANTS = "none,m.read.private,m.read,m.read+filter,m.read/unsynced"
# Synapse counts as idle below this share of a core.
IDLE_CORE_SHARE = 0.15


@attrs.define
class Wave:
    """One variant's window: what every pupil's sync received."""

    sent_at: float = 0.0
    # In the announcement's text: its arrival is known before its send has answered.
    nonce: str = attrs.Factory(lambda: secrets.token_hex(6))
    event_id: str = ""
    answers: int = 0  # every sync answer
    wakeups: int = 0  # answers that carried something (not a long poll timing out)
    with_receipts: int = 0  # answers that carried an m.receipt
    receipts_seen: int = 0  # readers' receipts, counted in every answer (user, event)
    bytes: int = 0
    last_wakeup: float = 0.0
    arrived: dict[str, float] = attrs.Factory(dict)  # pupil → announcement arrived
    seen: dict[str, asyncio.Event] = attrs.Factory(dict)  # pupil → it arrived
    receipt_posted: dict[str, float] = attrs.Factory(dict)  # reader → POST answered
    receipt_latency: list[float] = attrs.Factory(list)  # posted → in another's sync
    receipt_send_s: list[float] = attrs.Factory(list)
    in_poll: set[str] = attrs.Factory(set)  # pupils with a long poll open


def _carries(body: dict[str, Any]) -> bool:
    """Whether a sync answer has anything in it (else its long poll timed out)."""
    rooms = body.get("rooms", {})
    if any(rooms.get(k) for k in ("join", "invite", "leave", "knock")):
        return True
    return any(
        body.get(k, {}).get("events")
        for k in ("account_data", "presence", "to_device")
        if isinstance(body.get(k), dict)
    ) or bool(body.get("device_lists", {}).get("changed"))


def _note(w: Wave, user_id: str, body: dict[str, Any], now: float) -> None:
    for room in body.get("rooms", {}).get("join", {}).values():
        for event in room.get("timeline", {}).get("events", []):
            text = event.get("content", {}).get("body", "")
            mine = isinstance(text, str) and text.startswith(f"{MARK}{w.nonce} ")
            if mine and user_id not in w.arrived:
                w.arrived[user_id] = now
                w.seen.setdefault(user_id, asyncio.Event()).set()
        receipts = [
            e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == "m.receipt"
        ]
        if receipts:
            w.with_receipts += 1
        for receipt in receipts:
            for by_type in receipt.get("content", {}).get(w.event_id, {}).values():
                for reader in by_type:
                    w.receipts_seen += 1
                    posted = w.receipt_posted.get(reader)
                    if posted is not None and reader != user_id:
                        w.receipt_latency.append(max(0.0, now - posted))


async def follow(
    m: Morning,
    user_id: str,
    since: dict[str, str],
    filter_: dict[str, Any],
    poll_s: float,
    wave: Callable[[], Wave],
) -> None:
    """One pupil's client: long-poll /sync with ``filter_`` until cancelled, noting in
    the current wave what each answer carried."""
    token = m.tokens[user_id]
    path_filter = json.dumps(filter_, separators=(",", ":"))
    while True:
        w = wave()
        w.in_poll.add(user_id)
        query = {"filter": path_filter, "timeout": str(int(poll_s * 1000)), "since": since[user_id]}
        status, raw = await m.request(
            "GET", "/_matrix/client/v3/sync?" + urllib.parse.urlencode(query), token
        )
        w.in_poll.discard(user_id)
        w = wave()
        now = time.monotonic()
        if status != 200:
            await asyncio.sleep(1)
            continue
        body = json.loads(raw)
        since[user_id] = body["next_batch"]
        w.answers += 1
        w.bytes += len(raw)
        if _carries(body):
            w.wakeups += 1
            w.last_wakeup = now
        _note(w, user_id, body, now)


class SynapseCpu:
    """Synapse's CPU seconds, sampled every 0.5 s: when it was last busy."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return _cpu_s(self.pid)

    async def _sample(self) -> None:
        while True:
            self.samples.append((time.monotonic(), self.now()))
            del self.samples[:-400]
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def share_since(self, seconds: float) -> float:
        """Synapse's share of a core over the last ``seconds``."""
        if len(self.samples) < 2:
            return 1.0
        t1, c1 = self.samples[-1]
        older = [s for s in self.samples if s[0] <= t1 - seconds] or self.samples[:1]
        t0, c0 = older[-1]
        return (c1 - c0) / max(t1 - t0, 1e-9)

    def last_busy(self, after: float) -> float:
        """When the last 0.5 s interval after ``after`` with Synapse busy ended."""
        last = after
        for (t0, c0), (t1, c1) in zip(self.samples, self.samples[1:], strict=False):
            if t1 > after and (c1 - c0) / max(t1 - t0, 1e-9) >= IDLE_CORE_SHARE:
                last = t1
        return last


async def read_it(
    m: Morning,
    w: Wave,
    reader: str,
    receipt_type: str,
    rng: random.Random,
    spread_s: float,
    gate: asyncio.Semaphore,
    syncing: bool,
) -> None:
    """One pupil opening the app: once the announcement is in their sync, a moment
    later, a receipt on it (when nobody syncs, a moment after the send)."""
    if syncing:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(w.seen.setdefault(reader, asyncio.Event()).wait(), 60)
    await asyncio.sleep(rng.uniform(0, spread_s))
    room = urllib.parse.quote(m.announcements)
    path = (
        f"/_matrix/client/v3/rooms/{room}/receipt/{receipt_type}/{urllib.parse.quote(w.event_id)}"
    )
    async with gate:
        started = time.monotonic()
        # Posted before the answer: another pupil's sync may carry it first.
        w.receipt_posted[reader] = started
        status, _ = await m.request("POST", path, m.tokens[reader], {})
        w.receipt_send_s.append(time.monotonic() - started)
        if status != 200:
            w.receipt_posted.pop(reader, None)


async def wave(
    m: Morning,
    variant: str,
    since: dict[str, str],
    readers: list[str],
    spread_s: float,
    concurrency: int,
    poll_s: float,
    quiet_s: float,
    settle_s: float,
    seed: int,
) -> dict[str, Any]:
    """One variant: pupils long-polling, one announcement, the readers' receipts."""
    receipt_type, filter_ = VARIANTS[variant]
    current = Wave()
    syncing = {} if filter_ is None else since
    followers = [
        asyncio.create_task(follow(m, u, since, filter_, poll_s, lambda: current))
        for u in syncing
        if filter_ is not None
    ]
    cpu = SynapseCpu(m.env.hs.proc.pid)
    cpu.start()
    try:
        # Every pupil in a long poll, Synapse idle, before the window opens.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (  # noqa: ASYNC110 (polls /proc too)
            len(current.in_poll) < len(syncing) or cpu.share_since(2) >= IDLE_CORE_SHARE
        ):
            await asyncio.sleep(0.5)
        current = w = Wave()
        errors_before, load_before = len(m.errors), load_average()
        mine, cpu_before = os.times(), cpu.now()
        w.sent_at = time.monotonic()
        path = (
            f"/_matrix/client/v3/rooms/{urllib.parse.quote(m.announcements)}/send/"
            f"m.room.message/receipts-{w.nonce}"
        )
        body = {"msgtype": "m.text", "body": f"{MARK}{w.nonce} {variant}: Прочтите / Please read"}
        assert m.admin is not None
        status, raw = await m.request("PUT", path, m.tokens[m.admin.user_id], body)
        send_s = time.monotonic() - w.sent_at
        if status == 200:
            w.event_id = json.loads(raw)["event_id"]
        if status == 200 and receipt_type is not None:
            rng, gate = random.Random(seed), asyncio.Semaphore(concurrency)
            await asyncio.gather(
                *(
                    read_it(m, w, r, receipt_type, rng, spread_s, gate, bool(syncing))
                    for r in readers
                )
            )
        posted = time.monotonic()
        # Quiet: nothing carried for quiet_s, Synapse idle over quiet_s.
        settled = False
        while not settled and time.monotonic() - posted < settle_s:
            await asyncio.sleep(0.5)
            settled = (
                time.monotonic() - max(w.last_wakeup, posted) >= quiet_s
                and cpu.share_since(quiet_s) < IDLE_CORE_SHARE
            )
        closed = time.monotonic()
        cpu_s = cpu.now() - cpu_before
        after = os.times()
        window = closed - w.sent_at
        arrivals = [t - w.sent_at for u, t in w.arrived.items() if u != m.admin.user_id]
        return {
            "variant": variant,
            "syncing": len(syncing),
            "readers": len(readers) if receipt_type else 0,
            "receipts_posted": len(w.receipt_send_s),
            "window_s": round(window, 1),
            # False: still busy --settle s after the last receipt; the figures are cut.
            "settled": settled,
            "synapse_cpu_s": round(cpu_s, 2),
            "sync_answers": w.answers,
            "wakeups": w.wakeups,
            "answers_with_receipts": w.with_receipts,
            "receipts_delivered": w.receipts_seen,
            "kb": round(w.bytes / 1024),
            "last_wakeup_s": round(max(w.last_wakeup - w.sent_at, 0.0), 1),
            "synapse_busy_until_s": round(cpu.last_busy(w.sent_at) - w.sent_at, 1),
            "announcement_arrived": len(arrivals),
            "announcement_s": spread(arrivals),
            "announcement_send_s": round(send_s, 3),
            "receipt_post_s": spread(w.receipt_send_s),
            "receipt_to_others_s": spread(w.receipt_latency),
            "errors": len(m.errors) - errors_before,
            "load": [load_before, load_average()],
            "load_tool_cpu_s": round(after.user + after.system - mine.user - mine.system, 2),
        }
    finally:
        await cpu.stop()
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)


async def run(
    env: BridgeEnv,
    students: int,
    readers: int,
    variants: list[str],
    rounds: int = 1,
    spread_s: float = 5.0,
    concurrency: int = 20,
    poll_s: float = 30.0,
    quiet_s: float = 5.0,
    settle_s: float = 120.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The school, then each variant's wave in turn; returns the report."""
    report: dict[str, Any] = {
        "backend": env.hs.backend,
        "students": students,
        "readers": readers,
        "spread_s": spread_s,
        "waves": [],
    }
    operator = await asyncio.to_thread(env.hs.register, "operator", True)
    m = Morning(env=env, http=new_session(), operator=operator.user_id)
    try:
        m.tokens[operator.user_id] = operator.access_token
        report["import"] = await import_school(m, students)
        echo(f"import: {report['import']}  (load {load_average()})")
        assert m.admin is not None
        signed = await sign_ins(m, [m.admin, *m.pupils], concurrency)
        report["rooms_ready"] = await rooms_ready(m, signed.pop("_answered"), 3600)
        echo(f"sign-ins: {signed}; rooms: {report['rooms_ready']}  (load {load_average()})")
        _, since = await initial_syncs(m, concurrency, 0)
        report["setup_errors"] = len(m.errors)
        report["setup_error_samples"] = m.errors[:5]
        pupils = sorted(since)
        chosen = random.Random(22).sample(pupils, min(readers, len(pupils)))
        for n in range(rounds):
            for i, variant in enumerate(variants):
                row = await wave(
                    m,
                    variant,
                    since,
                    chosen,
                    spread_s,
                    concurrency,
                    poll_s,
                    quiet_s,
                    settle_s,
                    seed=1000 * n + i,
                )
                row["round"] = n + 1
                report["waves"].append(row)
                echo(line(row))
        report["errors"] = len(m.errors)
        report["error_samples"] = m.errors[:10]
    finally:
        await m.http.close()
    report["ratios_to_none"] = ratios(report["waves"])
    return report


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each wave's CPU, wake-ups and bytes against the round's ``none``."""
    out = []
    for row in rows:
        base = next(
            (r for r in rows if r["round"] == row["round"] and r["variant"] == "none"), None
        )
        if base is None or row is base:
            continue
        out.append(
            {
                "round": row["round"],
                "variant": row["variant"],
                **{
                    k: round(row[k] / base[k], 1) if base[k] else None
                    for k in ("synapse_cpu_s", "wakeups", "kb")
                },
            }
        )
    return out


def line(row: dict[str, Any]) -> str:
    a, r = row["announcement_s"], row["receipt_to_others_s"]
    cut = "" if row["settled"] else " NOT SETTLED (figures cut at --settle);"
    return (
        f"round {row['round']} {row['variant']}: {row['syncing']} syncing,"
        f" {row['receipts_posted']} receipts posted; Synapse {row['synapse_cpu_s']} CPU s"
        f" in {row['window_s']} s; {row['sync_answers']} sync answers, {row['wakeups']}"
        f" wake-ups ({row['answers_with_receipts']} with receipts, {row['receipts_delivered']}"
        f" receipts delivered), {row['kb']} KB; last wake-up {row['last_wakeup_s']} s,"
        f" Synapse busy until {row['synapse_busy_until_s']} s; announcement"
        f" {row['announcement_arrived']} arrived, p95 {a['p95']} s; receipts to others"
        f" p95 {r['p95']} s; errors {row['errors']};{cut}"
        f" load {row['load'][0]} → {row['load'][1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--readers", type=int, default=300)
    parser.add_argument("--spread", type=float, default=5.0, help="seconds readers spread over")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--poll", type=float, default=30.0, help="sync long-poll seconds")
    parser.add_argument("--quiet", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    async def go() -> dict[str, Any]:
        with (
            tempfile.TemporaryDirectory(prefix="parta-receipts-") as tmp,
            bridge_env(Path(tmp)) as env,
        ):
            return await run(
                env,
                args.students,
                args.readers,
                variants,
                args.rounds,
                args.spread,
                args.concurrency,
                args.poll,
                args.quiet,
                args.settle,
            )

    report = asyncio.run(go())
    report["cores"] = os.cpu_count()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    for row in report["waves"]:
        print(line(row))
    for r in report["ratios_to_none"]:
        print(
            f"round {r['round']} {r['variant']} / none: CPU ×{r['synapse_cpu_s']},"
            f" wake-ups ×{r['wakeups']}, bytes ×{r['kb']}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
