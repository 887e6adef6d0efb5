"""The school morning's delivery phase under several Synapse setups, in turn (issue #22).

    python -m bench school_delivery --students 150 [--senders 50] [--interval 2]
        [--delivery 30] [--rounds 2] [--variants gc_default,generated]
        [--clients lazy,sliding]
        [--py-spy SECONDS] [--profile-dir DIR] [--json results.json]

One school on one Synapse process with the module and the bot's registration (PostgreSQL
unless PARTA_TEST_DB=sqlite), imported and signed in once as ``bench/school_morning.py``
does (the sample school of ``--students`` pupils, every pupil and an administrator signed
in, every pupil's rooms joined). Then ``--rounds`` times, each of ``--variants`` in turn:
Synapse restarted with the variant's settings laid over the config ``make run``
generates, every pupil's initial sync (lazy-loaded members, timeline 10: fresh tokens),
and the morning's delivery phase (every pupil long-polling /sync while the administrator
posts an announcement and one of ``--senders`` pupils a class-chat message every
``--interval`` s, for ``--delivery`` s). Per round and variant: delivery p50/p95/p99,
sends p50, deliveries missing, HTTP errors, Synapse's CPU (% of one core) and the load
average before and after. Alternating the variants on the same school puts them under
the same machine load; compare them by the ratio within a round.

``--clients``: whom the pupils' clients imitate in the delivery phase, each in turn
after each variant's restart: ``lazy`` (Element: /sync with lazy-loaded members, the
default) and ``sliding`` (Element X: sliding sync, MSC4186, as Synapse serves it
natively, its room list of 20 with Element X's extensions; an initial sliding sync per
pupil first). Synapse's CPU a delivery, by client, says what each kind of client costs
the server for the same messages.

``--py-spy SECONDS``: with ``py-spy`` on PATH, record Synapse for that many seconds of
each delivery (from its fourth second) into ``--profile-dir`` as collapsed stacks
(``<variant>-<round>.txt``; only samples holding the GIL: where Synapse's one core
goes); ``python -m bench.school_delivery --top FILE`` prints a profile's heaviest
frames.

The variants (``VARIANTS``): ``generated`` is the config as generated; the others each
undo or change one setting of it, to measure what that setting is worth. ``NAME@DIR``
runs a variant with the module from another checkout (``git worktree add DIR main``):
Synapse's PYTHONPATH then starts there, to compare the module's code before and after.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from bench.school_morning import (
    CLIENTS,
    Morning,
    ProcessMeter,
    delivery,
    import_school,
    initial_sliding,
    initial_syncs,
    load_average,
    new_session,
    process_ids,
    rooms_ready,
    sign_ins,
)
from devtools import homeserver
from devtools.homeserver import Homeserver
from tests.bridge_env import BridgeEnv, bridge_env


def _pool(hs: Homeserver, connections: int) -> dict[str, Any]:
    if hs.postgres is None:
        return {}
    args = {**hs.postgres.connect_args(), "cp_min": 1, "cp_max": connections}
    return {"database": {"name": "psycopg2", "args": args}}


THIS_CHECKOUT = homeserver.REPO_ROOT

# Settings laid over the generated config, by name (a function of the homeserver, for
# settings that name a file in its directory).
VARIANTS: dict[str, Callable[[Homeserver], dict[str, Any]]] = {
    "generated": lambda hs: {},
    # Python's own thresholds for Synapse's collector (the generated config's before
    # the delivery profile).
    "gc_default": lambda hs: {"gc_thresholds": [700, 10, 10]},
    # Twice the generated config's PostgreSQL connections (5).
    "pool_10": lambda hs: _pool(hs, 10),
    # What unread counts and push cost (not a setting to use: no badges, no push).
    "push_off": lambda hs: {"push": {"enabled": False}},
}


def parse_variant(spec: str) -> tuple[str, Path | None]:
    """``NAME`` or ``NAME@CHECKOUT``: the settings, and the checkout whose
    ``synapse_module`` Synapse loads (None: this one)."""
    name, _, checkout = spec.partition("@")
    return name, Path(checkout).resolve() if checkout else None


async def restart_as(m: Morning, base_extra: dict[str, Any], spec: str) -> None:
    """Synapse again with the variant's settings (and module code)."""
    name, checkout = parse_variant(spec)
    # Synapse's PYTHONPATH starts with homeserver.REPO_ROOT (``Homeserver._spawn``).
    homeserver.REPO_ROOT = checkout or THIS_CHECKOUT
    running = m.env.hs
    extra = {**base_extra, **VARIANTS[name](running.hs)}
    running.hs = attrs.evolve(running.hs, extra=extra)
    running.hs.write_config()
    await m.http.close()
    await asyncio.to_thread(running.restart)
    m.http = new_session()


@contextlib.contextmanager
def py_spy(pid: int, seconds: float, out: Path | None, delay: float = 4.0) -> Iterator[None]:
    """py-spy recording ``pid`` for ``seconds`` from ``delay`` s on, while the block runs."""
    exe = shutil.which("py-spy")
    if out is None or not seconds or exe is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    command = (
        f"sleep {delay}; exec {exe} record -p {pid} -d {int(seconds)} -r 50 --gil --nonblocking"
        f" -f raw -o {out}"
    )
    proc = subprocess.Popen(
        ["sh", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        try:
            proc.wait(timeout=seconds + delay + 30)
        except subprocess.TimeoutExpired:
            proc.kill()


# A frame's file from its package on (site-packages/ or the checkout dropped).
SHORTEN = re.compile(r"\(/\S*?(?:site-packages/|/wt/[^/]+/|/work/main/)")


def top(path: Path, n: int = 30) -> list[str]:
    """The heaviest frames of a collapsed-stack profile: inclusive, then self (% of
    samples), file paths shortened to the package."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        total += c
        frames = [SHORTEN.sub("(", f) for f in stack.split(";")]
        own[frames[-1]] += c
        for f in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            inclusive[f] += c
    total = max(total, 1)
    lines = [f"{total} samples", "inclusive:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(n)]
    lines += ["self:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(n)]
    return lines


async def run(
    env: BridgeEnv,
    students: int,
    variants: list[str],
    rounds: int = 2,
    senders: int = 50,
    interval: float = 2.0,
    delivery_s: float = 30.0,
    concurrency: int = 20,
    spy_seconds: float = 0.0,
    profile_dir: Path | None = None,
    echo: Callable[[str], None] = print,
    clients: tuple[str, ...] = ("lazy",),
) -> dict[str, Any]:
    report: dict[str, Any] = {"backend": env.hs.backend, "students": students, "rounds": []}
    operator = await asyncio.to_thread(env.hs.register, "operator", True)
    m = Morning(env=env, http=new_session(), operator=operator.user_id)
    base_extra = dict(env.hs.hs.extra)
    try:
        m.tokens[operator.user_id] = operator.access_token
        report["import"] = await import_school(m, students)
        echo(f"import: {report['import']}  (load {load_average()})")
        assert m.admin is not None
        signed = await sign_ins(m, [m.admin, *m.pupils], concurrency)
        ready = await rooms_ready(m, signed.pop("_answered"), 3600)
        echo(f"sign-ins: {signed}; rooms: {ready}  (load {load_average()})")
        meter = ProcessMeter(lambda: process_ids(env))
        for n in range(rounds):
            for variant in variants:
                await restart_as(m, base_extra, variant)
                for client in clients:
                    row = await _delivery_row(
                        m,
                        meter,
                        n,
                        variant,
                        client,
                        concurrency,
                        senders,
                        interval,
                        delivery_s,
                        spy_seconds,
                        profile_dir,
                    )
                    report["rounds"].append(row)
                    echo(line(row))
    finally:
        await m.http.close()
    return report


async def _delivery_row(
    m: Morning,
    meter: ProcessMeter,
    n: int,
    variant: str,
    client: str,
    concurrency: int,
    senders: int,
    interval: float,
    delivery_s: float,
    spy_seconds: float,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """One delivery phase of a round: fresh initial syncs by ``client``, then the
    messages; the row of figures."""
    env = m.env
    if client == "sliding":
        since = await initial_sliding(m, concurrency)
    else:
        _, since = await initial_syncs(m, concurrency, 0)
    phase: dict[str, Any] = {}
    label = re.sub(r"[^\w.-]+", "_", f"{variant}-{client}")
    spy_out = profile_dir / f"{label}-{n + 1}.txt" if profile_dir else None
    mine = os.times()
    with py_spy(env.hs.proc.pid, spy_seconds, spy_out):
        async with meter.phase("delivery", phase):
            result = await delivery(m, since, senders, interval, delivery_s, client)
    after = os.times()
    seconds = phase["processes"]["delivery"]["seconds"]
    row = {
        "round": n + 1,
        "variant": variant,
        "client": client,
        **result,
        "synapse_cpu_percent": phase["processes"]["delivery"]["cpu_percent"].get("synapse"),
        "load": [
            phase["processes"]["delivery"]["load_before"],
            phase["processes"]["delivery"]["load_after"],
        ],
        "seconds": seconds,
        # Synapse's CPU time per message received (each a /sync woken and
        # answered, and the client's next long poll): what one process holds.
        "synapse_cpu_ms_per_delivery": round(
            10
            * (phase["processes"]["delivery"]["cpu_percent"].get("synapse") or 0)
            * seconds
            / max(1, result["deliveries_expected"] - result["deliveries_missing"]),
            1,
        ),
        "synapse_rss_max_mb": phase["processes"]["delivery"]["rss_max_mb"].get("synapse"),
        # This load tool's own CPU (it shares the machine with Synapse).
        "load_tool_cpu_percent": round(
            100 * (after.user + after.system - mine.user - mine.system) / seconds
        ),
        "errors": len(m.errors),
    }
    m.errors.clear()
    return row


def line(row: dict[str, Any]) -> str:
    lat, send = row["latency_s"], row["send_s"]
    return (
        f"round {row['round']} {row['variant']} ({row['client']}): {row['syncing']} syncing,"
        f" {row['messages']} messages, {row['deliveries_missing']} of"
        f" {row['deliveries_expected']} missing; delivery p50 {lat['p50']} s, p95"
        f" {lat['p95']} s, p99 {lat['p99']} s; sends p50 {send['p50']} s; Synapse"
        f" {row['synapse_cpu_percent']} % of a core, {row['synapse_cpu_ms_per_delivery']} ms a"
        f" delivery (load tool"
        f" {row['load_tool_cpu_percent']} %), RSS max {row['synapse_rss_max_mb']} MB;"
        f" errors {row['errors']};"
        f" load {row['load'][0]} → {row['load'][1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=150)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--delivery", type=float, default=30.0, help="seconds of messages")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="gc_default,generated")
    parser.add_argument("--clients", default="lazy", help="lazy, sliding or both")
    parser.add_argument("--py-spy", type=float, default=0.0, help="seconds to record")
    parser.add_argument("--profile-dir", type=Path)
    parser.add_argument("--top", type=Path, help="print a recorded profile's heaviest frames")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.top:
        print("\n".join(top(args.top)))
        return
    variants = args.variants.split(",")
    clients = tuple(args.clients.split(","))
    if set(clients) - set(CLIENTS):
        parser.error(f"unknown clients {clients}; known: {', '.join(CLIENTS)}")
    unknown = [v for v in variants if parse_variant(v)[0] not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    async def go() -> dict[str, Any]:
        with (
            tempfile.TemporaryDirectory(prefix="parta-delivery-") as tmp,
            bridge_env(Path(tmp)) as env,
        ):
            return await run(
                env,
                args.students,
                variants,
                args.rounds,
                args.senders,
                args.interval,
                args.delivery,
                spy_seconds=args.py_spy,
                profile_dir=args.profile_dir,
                clients=clients,
            )

    report = asyncio.run(go())
    report["cores"] = os.cpu_count()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print("\n".join(line(r) for r in report["rounds"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
