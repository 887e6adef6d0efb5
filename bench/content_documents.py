"""Listing and filtering documents: 1,000 vs 10,000 in a school.

Run: ``python -m bench.content_documents``. The module's own tables and SQL
(``synapse_module.content.store``) on SQLite and, when it answers, PostgreSQL. A school
has 20 rooms: half the documents are in its documents room, the rest spread over 19 class
rooms; each query is what the API runs for one page (50) of the documents room, or of all
20 rooms at once. The figure is the ratio of the time per
query at 10,000 documents to the time at 1,000: 1 means the index makes size irrelevant,
10 would be a full scan.
"""

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.content_db import Cursor, backends, open_db
from synapse_module.content import store as db

ROOMS = [f"!room{i:02d}:bench" for i in range(20)]
KINDS = ["document", "document", "document", "image", "video"]
TAGS = ["математика", "русский", "история", "2026", "экзамен", "домашнее", "родителям", "приказ"]
WORDS = ["расписание", "контрольная", "алгебра", "приказ", "экскурсия", "олимпиада", "журнал"]


def fill(conn: Any, cur: Cursor, count: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    for i in range(count):
        title = f"{rnd.choice(WORDS).capitalize()} {rnd.choice(WORDS)} №{i}"
        db.insert_document_txn(
            cur,  # type: ignore[arg-type]
            {
                "doc_id": f"$doc{i:07d}",
                # Half in the school's documents room, the rest over 19 class rooms.
                "room_id": ROOMS[0] if rnd.random() < 0.5 else rnd.choice(ROOMS[1:]),
                "sender": f"@teacher{rnd.randrange(5)}:bench",
                "ts": 1_700_000_000_000 + i * 60_000,
                "kind": rnd.choice(KINDS),
                "msgtype": "m.file",
                "title": title,
                "description": " ".join(rnd.choice(WORDS) for _ in range(8)),
                "section": None,
                "tags": rnd.sample(TAGS, 2),
                "size": rnd.randrange(1_000, 50_000_000),
                "mimetype": "application/pdf",
                "url": f"mxc://bench/{i}",
                "filename": f"{i}.pdf",
            },
        )
    conn.commit()


Query = Callable[[Cursor], Any]


def queries(size: int) -> dict[str, Query]:
    room = [ROOMS[0]]

    def page(**kw: Any) -> Query:
        args: dict[str, Any] = {
            "kind": None, "tag": None, "author": None, "since": None, "until": None,
            "query": None, "sort": "date", "descending": True, "cursor": None, "limit": 51,
        }  # fmt: skip
        args.update(kw)
        rooms = kw.pop("rooms", room)
        args.pop("rooms", None)
        return lambda cur: db.list_documents_txn(cur, rooms, **args)  # type: ignore[arg-type]

    return {
        "newest first": page(),
        "by title": page(sort="title", descending=False),
        "by size": page(sort="size"),
        "kind = video": page(kind="video"),
        "by author": page(author="@teacher3:bench"),
        "tag = экзамен": page(tag="экзамен"),
        "date range (1 day)": page(since=1_700_000_000_000, until=1_700_086_400_000),
        # The page after the 500 newest documents of the school.
        "page after 500 (keyset)": page(
            cursor=(1_700_000_000_000 + (size - 500) * 60_000, f"$doc{size - 500:07d}")
        ),
        "whole school (20 rooms)": page(rooms=ROOMS),
        "search 'алгебра'": page(query="алгебра"),
    }


def measure(cur: Cursor, query: Query, repeat: int = 60) -> float:
    query(cur)  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        query(cur)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run(backend: str) -> dict[str, tuple[float, float]]:
    results: dict[str, dict[int, float]] = {}
    for size in (1_000, 10_000):
        with open_db(backend) as (conn, cur):
            fill(conn, cur, size)
            if backend == "postgres":
                cur.execute("ANALYZE")
                conn.commit()
            for name, query in queries(size).items():
                results.setdefault(name, {})[size] = measure(cur, query)
    return {name: (by[1_000], by[10_000]) for name, by in results.items()}


def main() -> None:
    for backend in backends():
        print(f"\n{backend}: median ms per query (one page of 50)")
        print(f"{'query':28} {'1,000':>8} {'10,000':>8} {'ratio':>6}")
        for name, (small, big) in run(backend).items():
            print(f"{name:28} {small:8.3f} {big:8.3f} {big / small:6.2f}")


if __name__ == "__main__":
    main()
