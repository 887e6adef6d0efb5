"""Erasure of a student with 500 / 1,000 / 5,000 messages and 200 files, and how it grows
(``python -m bench privacy_erasure [--sizes 500,1000,5000] [--files 200] [--baseline 500]
[--concurrency 8] [--profile DIR]``).

One Synapse with the module (PostgreSQL when it answers, else SQLite; ``PARTA_TEST_DB``
chooses), one school per size, seeded as ``bench/privacy_export.py`` does: the student
sends N messages into the class chat and uploads the files (each posted as ``m.file``), a
classmate writes N/10 beside them. Timed: ``POST …/erase`` until the journal says
``done``, and each step as the journal reports it (polled every 0.2 s), so the
``messages`` step — one redaction per message and file, N + files of them — is timed on
its own. Each size is checked afterwards: every one of the student's messages redacted
exactly once; and the class chat's forward extremities are counted (the redactions in
flight fork the room's event graph, the next event joins the forks).

The baseline, in the same run and on the same Synapse: ``--baseline N`` erases a student
with N messages first with ``privacy.erasure_concurrency: 1`` (one redaction after
another, the path before this measurement), then Synapse restarts with ``--concurrency``
for the sizes. The growth exponent is the slope of log(time) over log(redactions) (least
squares over the sizes; 1 is linear).
"""

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.privacy_export import fill
from synapse_module.config import PrivacyConfig
from tests.harness import RunningHomeserver, running_homeserver
from tests.privacy_people import MODULE_CONFIG, rows
from tests.roster_helpers import api, build_school, wait_for_rooms

STEPS = ("roster", "messages", "media", "module_rows", "account")


def configure(hs: RunningHomeserver, concurrency: int) -> None:
    """Restart Synapse with ``privacy.erasure_concurrency`` set to ``concurrency``."""
    hs.hs.module_config["privacy"] = {"erasure_concurrency": concurrency}
    hs.hs.write_config()
    hs.restart()


@contextlib.contextmanager
def sampled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples Synapse (``pid``) into ``out`` (collapsed stacks) while inside."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    # --nonblocking: py-spy does not pause Synapse for each sample (paused, at 200 a
    # second, the erasure took 3–4× as long as without the profiler).
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100", "--nonblocking"]
    proc = subprocess.Popen(
        [*cmd, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file and stops
        proc.wait(timeout=60)


def erase(
    hs: RunningHomeserver, n: int, files: int, concurrency: int, profile: Path | None
) -> dict[str, Any]:
    school = build_school(hs, hs.register("operator", admin=True), name=f"Школа {n}")
    subject, other = school.students[0], school.students[1]
    for user in (subject, other):
        wait_for_rooms(hs, user)
    room_id = school.class_a["rooms"]["class_chat"]
    t0 = time.monotonic()
    fill(hs, subject, other, room_id, n, files)
    seed_s = time.monotonic() - t0

    path = f"/schools/{school.school_id}/members/{subject.user_id}/erase"
    out = profile / f"erase-{n}-at-{concurrency}.txt" if profile else None
    seen: dict[str, float] = {}
    log_from = hs.hs.log_path.stat().st_size
    with sampled(hs.proc.pid, out):
        t0 = time.monotonic()
        journal = api(hs, "POST", path, school.admin, {"messages": "redact"})
        follow = f"/schools/{school.school_id}/erasures/{journal['erasure_id']}"
        while True:
            now = time.monotonic() - t0
            for step in journal["steps_done"]:
                seen.setdefault(step, now)
            if journal["status"] == "done":
                break
            time.sleep(0.2)  # each ask costs Synapse a little: not too often
            journal = api(hs, "GET", follow, school.admin)
        erase_s = time.monotonic() - t0

    counts = rows(
        hs,
        "SELECT e.event_id, COUNT(r.redacts) FROM events e"
        " LEFT JOIN redactions r ON r.redacts = e.event_id"
        " WHERE e.room_id = ? AND e.sender = ? AND e.state_key IS NULL"
        " AND e.type = 'm.room.message' GROUP BY e.event_id",
        (room_id, subject.user_id),
    )
    once = sum(1 for _, c in counts if c == 1)
    assert len(counts) == n + files and once == len(counts), (len(counts), once)
    # The redactions in flight fork the room's graph; the next event joins the forks.
    extremities = rows(
        hs, "SELECT COUNT(*) FROM event_forward_extremities WHERE room_id = ?", (room_id,)
    )[0][0]
    messages_s = seen["messages"] - seen["roster"]
    warnings = logcontext_warnings(hs.hs.log_path, log_from)
    return {
        "messages": n,
        "files": files,
        "redactions": n + files,
        "concurrency": concurrency,
        "seed_s": round(seed_s, 1),
        "erase_s": round(erase_s, 2),
        "messages_step_s": round(messages_s, 2),
        "ms_per_redaction": round(1000 * messages_s / (n + files), 1),
        "steps_at_s": {s: round(seen[s], 2) for s in STEPS if s in seen},
        "redacted_once": once,
        "forward_extremities_after": int(extremities),
        # Synapse's "Re-starting finished log context" & co. written during the erasure.
        "logcontext_warnings": warnings,
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


LOGCONTEXT_WARNINGS = (
    "Re-starting finished log context",
    "without recording a start rusage",
    "Expected logging context",
)


def logcontext_warnings(log: Path, start: int) -> dict[str, int]:
    """The log-context warning lines Synapse wrote from byte ``start`` of its log on,
    by the log context they were written in (``parta_erasure``, ``POST``, numbers
    dropped). From the start of the file if it has rotated meanwhile (50 MB)."""
    with log.open("rb") as f:
        if log.stat().st_size >= start:
            f.seek(start)
        text = f.read().decode("utf-8", errors="replace")
    found: dict[str, int] = {}
    for line in text.splitlines():
        if any(w in line for w in LOGCONTEXT_WARNINGS):
            fields = line.split(" - ")
            context = fields[4].rsplit("-", 1)[0] if len(fields) > 4 else "?"
            found[context] = found.get(context, 0) + 1
    return found


def exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) over log(x)."""
    if len({x for x, _ in points}) < 2:
        return None
    logs = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    mx = sum(x for x, _ in logs) / len(logs)
    my = sum(y for _, y in logs) / len(logs)
    num = sum((x - mx) * (y - my) for x, y in logs)
    den = sum((x - mx) ** 2 for x, _ in logs)
    return num / den


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,5000", help="messages per student")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument(
        "--baseline",
        type=int,
        default=500,
        help="messages of the one-at-a-time baseline (0: none)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="privacy.erasure_concurrency")
    parser.add_argument(
        "--profile",
        type=Path,
        help="a folder: py-spy samples Synapse during each erasure (collapsed stacks)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_homeserver(Path(tmp), dict(MODULE_CONFIG)) as hs,
    ):
        print(f"backend: {hs.backend}; load average at start: {os.getloadavg()}", flush=True)
        runs = [(args.baseline, 1)] if args.baseline else []
        runs += [(n, args.concurrency) for n in sizes]
        configured = PrivacyConfig().erasure_concurrency  # what it started with
        for n, concurrency in runs:
            if concurrency != configured:
                configure(hs, concurrency)
                configured = concurrency
            result = erase(hs, n, args.files, concurrency, args.profile)
            results.append(result)
            print(json.dumps(result, ensure_ascii=False), flush=True)

    print()
    print(
        "| messages + files | at once | erasure, s | messages step, s | ms a redaction"
        " | × (step) | load average |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|")
    measured = [r for r in results if r["concurrency"] == args.concurrency]
    first = measured[0] if measured else results[0]
    for r in results:
        ratio = r["messages_step_s"] / first["messages_step_s"] if first["messages_step_s"] else 0
        print(
            f"| {r['messages']:,} + {r['files']} | {r['concurrency']} | {r['erase_s']}"
            f" | {r['messages_step_s']} | {r['ms_per_redaction']} | {ratio:.2f}"
            f" | {r['load_average']} |"
        )
    step = exponent([(r["redactions"], r["messages_step_s"]) for r in measured])
    total = exponent([(r["redactions"], r["erase_s"]) for r in measured])
    if step is not None and total is not None:
        print(f"growth exponent (1 = linear): messages step {step:.2f}, whole erasure {total:.2f}")
    base = [r for r in results if r["concurrency"] == 1 and args.concurrency != 1]
    same = [r for r in measured if base and r["messages"] == base[0]["messages"]]
    if base and same:
        speedup = base[0]["messages_step_s"] / same[0]["messages_step_s"]
        print(
            f"at {base[0]['messages']:,} messages: {speedup:.1f}× the one-at-a-time path"
            f" ({base[0]['ms_per_redaction']} → {same[0]['ms_per_redaction']} ms a redaction)"
        )


if __name__ == "__main__":
    main()
