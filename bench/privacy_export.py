"""Export and erasure of a student with 500 / 1,000 / 5,000 messages and 200 files
(``python -m bench.privacy_export [--sizes 500,1000,5000] [--files 200]``).

One Synapse with the module (PostgreSQL when ``PARTA_TEST_DB=postgres``, else SQLite),
one school per size: the student sends the messages into the class chat and uploads the
files (64 KB each, each posted as an ``m.file`` message), a classmate writes as much
beside them. Then, timed: ``POST …/export`` (the zip, read to the end) and ``POST
…/erase`` until its journal says ``done`` (every message redacted, the files deleted,
the account erased). Ratios are against the smallest size in the same run; the goal is
linear growth and an export under 30 s at 5,000 messages.
"""

import argparse
import concurrent.futures
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness import RunningHomeserver, User, running_homeserver
from tests.privacy_people import MODULE_CONFIG, raw, send, upload
from tests.roster_helpers import API, api, build_school, wait_for_rooms

FILE_BYTES = 64 * 1024


def fill(
    hs: RunningHomeserver, subject: User, other: User, room_id: str, n: int, files: int
) -> None:
    """The student's messages and files (8 at a time), the classmate's messages."""
    blob = secrets.token_bytes(FILE_BYTES)

    def one_file(i: int) -> None:
        uri = upload(hs, subject, blob + i.to_bytes(4, "big"), f"file-{i}.pdf")
        send(hs, subject, room_id, {"msgtype": "m.file", "body": f"file-{i}.pdf", "url": uri})

    def text(user: User, body: str) -> None:
        send(hs, user, room_id, {"msgtype": "m.text", "body": body})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one_file, range(files)))
        list(pool.map(lambda i: text(subject, f"сообщение {i}"), range(n)))
        list(pool.map(lambda i: text(other, f"чужое {i}"), range(n // 10)))


def measure(hs: RunningHomeserver, n: int, files: int, erase: bool) -> dict[str, Any]:
    school = build_school(hs, hs.register("operator", admin=True), name=f"Школа {n}")
    subject, other = school.students[0], school.students[1]
    for user in (subject, other):
        wait_for_rooms(hs, user)
    room_id = school.class_a["rooms"]["class_chat"]
    started = time.monotonic()
    fill(hs, subject, other, room_id, n, files)
    seeded_s = time.monotonic() - started

    path = f"{API}/schools/{school.school_id}/members/{subject.user_id}/export"
    t0 = time.monotonic()
    status, _, body = raw(hs, "POST", path, school.admin.access_token)
    export_s = time.monotonic() - t0
    assert status == 200, body[:300]

    erase_s = None
    if erase:
        path = f"/schools/{school.school_id}/members/{subject.user_id}/erase"
        t0 = time.monotonic()
        journal = api(hs, "POST", path, school.admin, {"messages": "redact"})
        follow = f"/schools/{school.school_id}/erasures/{journal['erasure_id']}"
        while journal["status"] != "done":
            time.sleep(0.1)
            journal = api(hs, "GET", follow, school.admin)
        erase_s = round(time.monotonic() - t0, 1)
    return {
        "messages": n,
        "files": files,
        "seed_s": round(seeded_s, 1),
        "export_s": round(export_s, 2),
        "export_mb": round(len(body) / 1e6, 1),
        "erase_s": erase_s,
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,5000")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument(
        "--erase-max",
        type=int,
        default=10**9,
        help="measure the erasure only up to this many messages (bench/privacy_erasure.py"
        " times it step by step, against the one-at-a-time path)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp, running_homeserver(Path(tmp), MODULE_CONFIG) as hs:
        print(f"backend: {hs.backend}; load average at start: {os.getloadavg()}")
        for n in sizes:
            result = measure(hs, n, args.files, erase=n <= args.erase_max)
            results.append(result)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    base = results[0]
    print("| messages | files | export, s | × | archive, MB | erasure, s | × | load average |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        ex = r["export_s"] / base["export_s"] if base["export_s"] else 0
        er = r["erase_s"] / base["erase_s"] if r["erase_s"] and base["erase_s"] else 0
        print(
            f"| {r['messages']:,} | {r['files']} | {r['export_s']} | {ex:.1f} |"
            f" {r['export_mb']} | {r['erase_s']} | {er:.1f} | {r['load_average']} |"
        )


if __name__ == "__main__":
    main()
