"""What the module adds to sending a message: events/s with Parta against the same
Synapse without it, alternating rounds in one run. Goal: ≥ 0.95.

    python -m bench.roster_overhead [--messages 400] [--rounds 3] [--concurrency 8]
"""

import argparse
import asyncio
import itertools
import statistics

from bench.synapse_tools import Stopwatch, call, homeserver, session
from tests.harness import RunningHomeserver
from tests.roster_helpers import api

counter = itertools.count()


async def send_many(hs: RunningHomeserver, token: str, room_id: str, n: int, conc: int) -> float:
    """Messages per second for ``n`` messages with ``conc`` in flight."""
    sem = asyncio.Semaphore(conc)
    async with session(token) as s:

        async def one() -> None:
            async with sem:
                txn = next(counter)
                url = f"{hs.base_url}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/b{txn}"
                await call(s, "PUT", url, {"msgtype": "m.text", "body": f"Сообщение {txn}"})

        watch = Stopwatch()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / watch.seconds


def prepare_with_module(hs: RunningHomeserver) -> tuple[str, str]:
    """A student in a class chat: the module's whole path for a school room."""
    operator = hs.register("op", admin=True)
    admin = hs.register("admin")
    school = api(
        hs, "POST", "/schools", operator, {"name": "Школа", "administrators": [admin.user_id]}
    )
    cls = api(
        hs,
        "POST",
        f"/schools/{school['school_id']}/classes",
        admin,
        {"grade": 7, "letter": "А", "year": "2026/27"},
    )
    student = hs.register("student")
    api(
        hs,
        "PUT",
        f"/schools/{school['school_id']}/members/{student.user_id}",
        admin,
        {"roles": ["student"], "classes": [cls["class_id"]]},
    )
    return student.access_token, cls["rooms"]["class_chat"]


def prepare_plain(hs: RunningHomeserver) -> tuple[str, str]:
    user = hs.register("user")
    room = hs.request("POST", "/_matrix/client/v3/createRoom", {"name": "Класс"}, user.access_token)
    return user.access_token, room["room_id"]


async def main(messages: int, rounds: int, concurrency: int) -> None:
    with homeserver(True) as with_module, homeserver(False) as without:
        a = prepare_with_module(with_module)
        b = prepare_plain(without)
        # Warm both up (JIT-free Python still warms caches and connection pools).
        await send_many(with_module, *a, 50, concurrency)
        await send_many(without, *b, 50, concurrency)
        rates_a, rates_b = [], []
        for _ in range(rounds):
            rates_a.append(await send_many(with_module, *a, messages, concurrency))
            rates_b.append(await send_many(without, *b, messages, concurrency))
        ratios = [x / y for x, y in zip(rates_a, rates_b, strict=True)]
        print(
            f"backend: {with_module.backend}; {rounds} rounds of {messages} messages, "
            f"{concurrency} in flight"
        )
        for name, rates in (("with Parta:   ", rates_a), ("without Parta:", rates_b)):
            rounded = [round(r) for r in rates]
            print(f"{name} {statistics.median(rates):7.1f} events/s  {rounded}")
        print(f"ratio (median of per-round ratios): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds, args.concurrency))
