"""Importing a OneRoster school through the bot's roster sync, at several sizes, in one run.

    python -m bench.bridge_import [--students 500 1000 2000] [--concurrency 4]

Each size is a fresh school (same generator as the tests: ~25 students a class, one or
two guardians each, teachers and administrators) imported into one Synapse with the
module and the bot's registration. Reported per size: wall time, people, seconds per
person, the stage split (school and classes / claims in the bot's database / the
module's member batches, which make the accounts and write the roster) and where the
module's time goes per endpoint. The baseline, measured in the same run on the same
Synapse, is a bare account registration through Synapse's admin API (no module, no
rooms): the ratio says how much a roster person costs beyond "an account exists".
Linear growth means seconds per person stays flat as the school grows.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.synapse_tools import make_users
from bridge import roster_sync
from bridge.api import ModuleClient
from bridge.config import load
from bridge.db import create_database
from bridge.roster_sync import RosterSync, SignIn
from parta_common.oneroster import read_files
from tests.bridge_env import BridgeEnv, bridge_env
from tests.data.make_sample_school import make_school
from tests.harness import User


async def baseline(env: BridgeEnv, operator: User, count: int) -> float:
    """Seconds per bare account (admin API, no password hash, no module work)."""
    started = time.monotonic()
    await make_users(env.hs, operator, "base", count)
    return (time.monotonic() - started) / count


async def import_school(
    env: BridgeEnv, operator: User, students: int, index: int
) -> dict[str, Any]:
    prefix = f"b{index}-"
    files = make_school(students, seed=index, school_id=f"{prefix}sch", prefix=prefix)
    roster = read_files({k: v.encode() for k, v in files.items()})
    config = load(env.bot.config_path)
    db = create_database(config.database)
    await db.start()
    try:
        async with aiohttp.ClientSession() as session:
            # As the roster CLI does: with the operator's own token (the bot acts for a
            # person only on their command).
            module = ModuleClient(
                session, env.hs.base_url, operator.access_token, acts_for_others=False
            )
            sync = RosterSync(db, module, operator.user_id, env.hs.server_name)
            started = time.monotonic()
            plan = await sync.plan(roster)
            result = await sync.apply(plan, f"bench-{index}")
            wall = time.monotonic() - started
            replan = time.monotonic()
            again = await sync.plan(roster)
            noop = time.monotonic() - replan
            assert again.empty, "a second plan must find nothing to do"
            first, later = await sign_ins(
                session, env, result.sign_ins[:: max(1, len(result.sign_ins) // SIGN_INS)]
            )
    finally:
        await db.stop()
    people = len(roster.memberships(f"{prefix}sch"))
    return {
        "students": students,
        "people": people,
        "classes": len(roster.classes),
        "wall": wall,
        "per_person": wall / people,
        "stages": result.timings,
        "endpoints": module.timings,
        "noop_plan": noop,
        "first_sign_in": first,
        "later_sign_in": later,
    }


SIGN_INS = 20


async def sign_ins(
    session: aiohttp.ClientSession, env: BridgeEnv, people: list[SignIn]
) -> tuple[float, float]:
    """Mean seconds of a first sign-in with the printed code (the module queues the
    person's rooms to be joined behind it: bench/school_morning.py measures those) and
    of a second one, for a spread of the imported people."""

    async def login(who: SignIn) -> float:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": who.user_id},
            "password": who.code,
        }
        started = time.monotonic()
        async with session.post(f"{env.hs.base_url}/_matrix/client/v3/login", json=body) as r:
            assert r.status == 200, await r.text()
        return time.monotonic() - started

    first = [await login(who) for who in people]
    later = [await login(who) for who in people]
    return sum(first) / len(first), sum(later) / len(later)


async def main_async(sizes: list[int], concurrency: int) -> None:
    roster_sync.CONCURRENCY = concurrency
    with tempfile.TemporaryDirectory() as directory, bridge_env(Path(directory)) as env:
        operator = env.hs.register("operator", admin=True)
        base = await baseline(env, operator, 100)
        print(f"baseline: bare account via the admin API: {1000 * base:.0f} ms per account")
        rows = []
        for index, students in enumerate(sizes):
            row = await import_school(env, operator, students, index)
            rows.append(row)
            print(
                f"{students:5d} students, {row['people']:5d} people, {row['classes']:3d} classes:"
                f" {row['wall']:7.1f} s, {row['per_person']:.2f} s/person"
                f" ({row['per_person'] / base:.0f}× baseline), re-plan {row['noop_plan']:.2f} s"
            )
            print(
                f"      sign-in with the code: first {1000 * row['first_sign_in']:.0f} ms"
                f" (the rooms follow in the background), later {1000 * row['later_sign_in']:.0f} ms"
            )
            stages = ", ".join(f"{k} {v:.0f} s" for k, v in row["stages"].items())
            print(f"      stages: {stages}")
            for key, (calls, seconds) in sorted(row["endpoints"].items(), key=lambda kv: -kv[1][1])[
                :4
            ]:
                print(f"      {key}: {int(calls)} calls, mean {1000 * seconds / calls:.0f} ms")
        first = rows[0]["per_person"]
        growth = ", ".join(f"{r['students']}: {r['per_person'] / first:.2f}" for r in rows)
        print(f"seconds per person relative to {rows[0]['students']} students: {growth}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--concurrency", type=int, default=roster_sync.CONCURRENCY)
    args = parser.parse_args()
    asyncio.run(main_async(args.students, args.concurrency))


if __name__ == "__main__":
    main()
