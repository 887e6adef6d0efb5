"""Erasure of a person (#12 item 3), against a real Synapse with the module: nothing of
them is left in any of the module's tables (but the audit log, which keeps its entries
and gains a tombstone), nor in Synapse's media tables or the media folder; their
messages are redacted, their account deactivated and erased; and an erasure cut short
by a kill -9 finishes after a restart without doing anything twice."""

import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.homeserver import HttpError
from synapse_module.privacy.erasure import PAUSE_AFTER_ENV
from tests.harness import RunningHomeserver, running_homeserver
from tests.privacy_people import MODULE_CONFIG, Seeded, rows, seed
from tests.roster_helpers import api


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_homeserver(tmp_path_factory.mktemp("erase"), MODULE_CONFIG) as running:
        yield running


def module_tables(hs: RunningHomeserver) -> list[str]:
    if hs.hs.postgres is not None:
        found = rows(
            hs,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        )
    else:
        found = rows(hs, "SELECT name FROM sqlite_master WHERE type = 'table'")
    names = sorted(str(r[0]) for r in found)
    return [n for n in names if n.startswith(("parta_", "content_"))]


def traces(hs: RunningHomeserver, needles: list[str]) -> dict[str, list[str]]:
    """Every module table (the audit log aside) and Synapse's media tables, scanned
    whole for any of ``needles``: table → the rows where one was found."""
    found: dict[str, list[str]] = {}
    tables = [t for t in module_tables(hs) if t != "parta_audit"]
    assert len(tables) > 30, tables  # the scan sees the module's tables
    tables += ["local_media_repository", "local_media_repository_thumbnails"]
    for table in tables:
        for row in rows(hs, f"SELECT * FROM {table}"):
            text = " ".join(str(v) for v in row)
            if any(n in text for n in needles):
                found.setdefault(table, []).append(text[:200])
    return found


def media_files(hs: RunningHomeserver) -> set[str]:
    """The media IDs of every file in the media folder (local_content/ab/cd/rest)."""
    root = Path(hs.hs.directory) / "media_store"
    ids = set()
    for path in root.rglob("*"):
        if path.is_file():
            parts = path.relative_to(root).parts
            ids.add("".join(parts[1:]) if len(parts) >= 4 else str(path))
    return ids


def erase(hs: RunningHomeserver, seeded: Seeded) -> dict[str, Any]:
    school = seeded.school
    path = f"/schools/{school.school_id}/members/{seeded.subject.user_id}/erase"
    answer: dict[str, Any] = api(hs, "POST", path, school.admin, {"messages": "redact"})
    return answer


def wait_done(
    hs: RunningHomeserver, seeded: Seeded, erasure_id: str, seconds: float = 120
) -> dict[str, Any]:
    school = seeded.school
    deadline = time.monotonic() + seconds
    while True:
        status: dict[str, Any] = api(
            hs, "GET", f"/schools/{school.school_id}/erasures/{erasure_id}", school.admin
        )
        if status["status"] == "done":
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def wait_step(hs: RunningHomeserver, seeded: Seeded, erasure_id: str, step: str) -> None:
    school = seeded.school
    deadline = time.monotonic() + 120
    path = f"/schools/{school.school_id}/erasures/{erasure_id}"
    while step not in api(hs, "GET", path, school.admin)["steps_done"]:
        assert time.monotonic() < deadline, step
        time.sleep(0.2)


def audit_about(hs: RunningHomeserver, seeded: Seeded) -> list[dict[str, Any]]:
    school = seeded.school
    entries = api(hs, "GET", f"/schools/{school.school_id}/audit", school.admin)["entries"]
    return [e for e in entries if e["target"] == seeded.subject.user_id]


def timeline(hs: RunningHomeserver, seeded: Seeded) -> list[dict[str, Any]]:
    room = urllib.parse.quote(seeded.room_id, safe="")
    path = f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=200"
    chunk: list[dict[str, Any]] = hs.request("GET", path, token=seeded.school.teacher.access_token)[
        "chunk"
    ]
    return chunk


def assert_erased(hs: RunningHomeserver, seeded: Seeded) -> None:
    subject = seeded.subject
    # Nothing of them in the module's tables, Synapse's media tables or the folder.
    assert traces(hs, [subject.user_id, *seeded.media_ids]) == {}
    assert not media_files(hs) & set(seeded.media_ids)
    # Their messages are redacted; the classmate's are not.
    events = timeline(hs, seeded)
    theirs = [e for e in events if e["sender"] == subject.user_id and "state_key" not in e]
    assert theirs and all(not e["content"] for e in theirs), theirs[:2]
    assert any(e["content"].get("body") == "Чужое сообщение одноклассника" for e in events)
    # The account is gone: no sign-in, no profile.
    with pytest.raises(HttpError):
        hs.request(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": subject.localpart},
                "password": subject.password,
            },
        )
    # The classmate keeps their answer and attendance.
    assert rows(
        hs,
        "SELECT COUNT(*) FROM content_poll_responses WHERE user_id = ?",
        (seeded.classmate.user_id,),
    ) == [(1,)]
    # Each message redacted exactly once.
    counts = rows(
        hs,
        "SELECT r.redacts, COUNT(*) FROM redactions r JOIN events e ON e.event_id = r.redacts"
        " WHERE e.sender = ? GROUP BY r.redacts",
        (subject.user_id,),
    )
    assert counts and all(n == 1 for _, n in counts), counts
    # One request and one tombstone in the audit log, and the chain is whole.
    actions = [e["action"] for e in audit_about(hs, seeded)]
    assert actions.count("privacy.erase") == 1 and actions.count("privacy.erased") == 1
    operator = hs.register("auditor", admin=True)
    assert api(hs, "GET", "/audit/verify", operator)["ok"] is True


def test_an_erased_student_leaves_nothing_behind_but_the_tombstone(hs: RunningHomeserver) -> None:
    seeded = seed(hs)
    # Before: the scan does find them (it would see a leftover).
    before = traces(hs, [seeded.subject.user_id, *seeded.media_ids])
    assert {"parta_school_roles", "parta_consents", "local_media_repository"} <= set(before)
    assert set(seeded.media_ids) <= media_files(hs)

    started = erase(hs, seeded)
    assert started["status"] in ("running", "done")
    done = wait_done(hs, seeded, started["erasure_id"])
    assert done["steps_done"] == ["roster", "messages", "media", "module_rows", "account"]
    assert_erased(hs, seeded)

    # Asked again: done already, nothing more in the audit log.
    again = erase(hs, seeded)
    assert again["status"] == "done" and again["erasure_id"] == started["erasure_id"]
    actions = [e["action"] for e in audit_about(hs, seeded)]
    assert actions.count("privacy.erase") == 1 and actions.count("privacy.erased") == 1


def test_an_erasure_killed_midway_finishes_after_a_restart_and_nothing_twice(
    hs: RunningHomeserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(hs, messages=6, files=2)
    # Synapse started with the hook: the erasure stops for good after the 3rd redaction.
    monkeypatch.setenv(PAUSE_AFTER_ENV, "messages:3")
    hs.restart()
    started = erase(hs, seeded)
    wait_step(hs, seeded, started["erasure_id"], "roster")
    deadline = time.monotonic() + 60
    while len(redacted(hs, seeded)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    hs.proc.kill()  # kill -9, in the middle of the messages step
    hs.proc.wait()
    assert len(redacted(hs, seeded)) == 3
    monkeypatch.delenv(PAUSE_AFTER_ENV)
    hs.restart()  # the background job picks the journal up at start-up
    done = wait_done(hs, seeded, started["erasure_id"])
    assert done["steps_done"] == ["roster", "messages", "media", "module_rows", "account"]
    assert_erased(hs, seeded)


def redacted(hs: RunningHomeserver, seeded: Seeded) -> list[str]:
    found = rows(
        hs,
        "SELECT r.redacts FROM redactions r JOIN events e ON e.event_id = r.redacts"
        " WHERE e.sender = ?",
        (seeded.subject.user_id,),
    )
    return [str(r[0]) for r in found]


def test_only_administrators_erase_and_not_someone_of_another_school(hs: RunningHomeserver) -> None:
    seeded = seed(hs)
    school = seeded.school
    path = f"/schools/{school.school_id}/members/{seeded.subject.user_id}/erase"
    for user in (school.teacher, school.parent, seeded.subject):
        with pytest.raises(HttpError) as e:
            api(hs, "POST", path, user)
        assert e.value.status == 403
    with pytest.raises(HttpError) as e:
        api(hs, "POST", path, school.admin, {"messages": "burn"})
    assert e.value.status == 400
    stranger = f"/schools/{school.school_id}/members/@nobody:localhost/erase"
    with pytest.raises(HttpError) as e:
        api(hs, "POST", stranger, school.admin)
    assert e.value.status == 404
    assert json.dumps(e.value.body)  # a Matrix error, not a 500
