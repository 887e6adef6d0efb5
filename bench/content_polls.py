"""Counting a poll: 10 vs 1,000 (vs 10,000) voters (``python -m bench.content_polls``).

What ``GET /polls/{poll_id}`` does for the counts: read every stored response of the
poll (``content_poll_responses``, by its index on ``poll_id``) and apply MSC3381's rules
(latest response before the end, unknown answers ignored, ``max_selections``). Each voter
answers twice (changes their mind once), one in ten sends an invalid answer, so the
rows are 2 × voters. The ratio is against 10 voters in the same run.
"""

import random
import statistics
import time

from bench.content_db import Cursor, backends, open_db
from synapse_module.content import polls as counting
from synapse_module.content import store as db

ANSWERS = ["a1", "a2", "a3", "a4"]


def fill(conn: object, cur: Cursor, poll_id: str, voters: int) -> None:
    rnd = random.Random(voters)
    db.insert_poll_txn(
        cur,  # type: ignore[arg-type]
        {
            "poll_id": poll_id, "room_id": "!r:bench", "event_id": f"${poll_id}",
            "sender": "@t:bench", "question": "?",
            "answers": [{"id": a, "text": a} for a in ANSWERS], "max_selections": 1,
            "disclosed": True, "anonymous": False, "quiz": False, "correct": None,
            "created_ts": 0,
        },
    )  # fmt: skip
    for v in range(voters):
        for round_ in range(2):
            answer = "zz" if rnd.random() < 0.1 else rnd.choice(ANSWERS)
            db.add_response_txn(
                cur,  # type: ignore[arg-type]
                f"${poll_id}-{v}-{round_}",
                poll_id,
                f"@s{v}:bench",
                1_000 + v * 10 + round_,
                [answer],
            )
    conn.commit()  # type: ignore[attr-defined]


def count(cur: Cursor, poll_id: str) -> counting.Tally:
    poll = db.get_poll_txn(cur, poll_id)  # type: ignore[arg-type]
    assert poll is not None
    rows = db.responses_txn(cur, poll_id)  # type: ignore[arg-type]
    return counting.tally(
        ANSWERS,
        poll["max_selections"],
        (counting.Response(u, ts, tuple(a)) for u, ts, a in rows),
        None,
    )


def main() -> None:
    sizes = (10, 1_000, 10_000)
    for backend in backends():
        with open_db(backend) as (conn, cur):
            for size in sizes:
                fill(conn, cur, f"pol{size}", size)
            times = {}
            for size in sizes:
                count(cur, f"pol{size}")
                samples = []
                for _ in range(20):
                    start = time.perf_counter()
                    tally = count(cur, f"pol{size}")
                    samples.append(time.perf_counter() - start)
                assert tally.voters <= size
                times[size] = statistics.median(samples) * 1000
        print(f"\n{backend}: median ms to count a poll (rows = 2 × voters)")
        for size in sizes:
            print(f"{size:>7} voters {times[size]:9.3f} ms   ×{times[size] / times[10]:7.1f}")


if __name__ == "__main__":
    main()
