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

import attrs
import pytest

from devtools.homeserver import HttpError
from synapse_module.privacy.erasure import PAUSE_AFTER_ENV
from synapse_module.privacy.rules import ACCOUNT_ROWS
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.privacy_people import MODULE_CONFIG, Seeded, attendance, rows, seed, send
from tests.roster_helpers import School, api, api_error, build_school, wait_for_rooms

ALL_STEPS = ["roster", "messages", "school_rows", "media", "module_rows", "account"]


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
    seeded = seed(hs, made_by_parta=True)
    # Before: the scan does find them (it would see a leftover).
    before = traces(hs, [seeded.subject.user_id, *seeded.media_ids])
    assert {"parta_school_roles", "parta_consents", "local_media_repository"} <= set(before)
    assert set(seeded.media_ids) <= media_files(hs)

    started = erase(hs, seeded)
    assert started["status"] in ("running", "done")
    done = wait_done(hs, seeded, started["erasure_id"])
    assert done["steps_done"] == ALL_STEPS and done["scope"] == "account"
    assert_erased(hs, seeded)

    # Asked again: done already, nothing more in the audit log.
    again = erase(hs, seeded)
    assert again["status"] == "done" and again["erasure_id"] == started["erasure_id"]
    actions = [e["action"] for e in audit_about(hs, seeded)]
    assert actions.count("privacy.erase") == 1 and actions.count("privacy.erased") == 1


def test_an_erasure_killed_midway_finishes_after_a_restart_and_nothing_twice(
    hs: RunningHomeserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(hs, messages=6, files=2, made_by_parta=True)
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
    assert done["steps_done"] == ALL_STEPS
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
    seeded = seed(hs, made_by_parta=True)
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


# -- a person in two schools -------------------------------------------------------------


def test_every_row_of_a_person_is_a_schools_or_the_accounts() -> None:
    """Each table the whole erasure clears is cleared per school too, unless it holds the
    account's rows (a password, a sign-in code): nothing is forgotten by school A's part."""
    from synapse_module.privacy.rules import ERASE_ROWS, MARK_ROWS
    from synapse_module.privacy.store import SCHOOL_ERASE_ROWS, SCHOOL_MARK_ROWS, school_scoped

    per_school = {(t, c) for t, c, _ in SCHOOL_ERASE_ROWS}
    assert {(t, c) for t, c in ERASE_ROWS if t not in ACCOUNT_ROWS} == per_school
    assert {(t, c) for t, c in MARK_ROWS} == {(t, c) for t, c, _ in SCHOOL_MARK_ROWS}
    sql, args = school_scoped(
        "a = {school} AND b IN ({rooms}) AND c = {school}", "sch_1", ["!r1", "!r2"]
    )
    assert sql == "a = ? AND b IN (?, ?) AND c = ?"
    assert args == ["sch_1", "!r1", "!r2", "sch_1"]
    assert school_scoped("b IN ({rooms})", "s", [])[1] == [""]  # no room: matches nothing


@attrs.define
class Second:
    """School B, where school A's seeded student learns too, wrote, answered, came."""

    school: School
    room_id: str
    texts: list[str]
    poll_id: str


def seed_second_school(hs: RunningHomeserver, seeded: Seeded) -> Second:
    school = build_school(hs, hs.register("operator", admin=True), "Школа № 2")
    subject = seeded.subject
    api(
        hs,
        "PUT",
        f"/schools/{school.school_id}/members/{subject.user_id}",
        school.admin,
        {"roles": ["student"], "classes": [school.class_a["class_id"]]},
    )
    wait_for_rooms(hs, subject)
    room_id = school.class_a["rooms"]["class_chat"]
    api(
        hs,
        "PUT",
        f"/schools/{school.school_id}/members/{subject.user_id}/consents",
        school.admin,
        {"consents": {"video_lessons": True, "photos": True}, "document_number": "№ 2-7"},
    )
    texts = [f"Сообщение во второй школе № {n}" for n in range(2)]
    for text in texts:
        send(hs, subject, room_id, {"msgtype": "m.text", "body": text})
    poll = api(
        hs,
        "POST",
        f"/rooms/{urllib.parse.quote(room_id, safe='')}/polls",
        school.teacher,
        {"question": "2 + 2?", "quiz": True,
         "answers": [{"text": "4", "correct": True}, {"text": "5"}]},
    )  # fmt: skip
    answers = api(hs, "GET", f"/polls/{poll['poll_id']}", subject)["answers"]
    api(hs, "POST", f"/polls/{poll['poll_id']}/votes", subject, {"answers": [answers[0]["id"]]})
    attendance(hs, room_id, subject, int(time.time() * 1000) - 7_200_000)
    return Second(school, room_id, texts, poll["poll_id"])


def school_marks(hs: RunningHomeserver, school: School, poll_ids: list[str]) -> list[str]:
    """What names school A in a row: its ID, its rooms, its classes, its polls."""
    rooms = school_rooms(hs, school)
    classes = [school.class_a["class_id"], school.class_b["class_id"]]
    return [school.school_id, *rooms, *classes, *poll_ids]


def school_rooms(hs: RunningHomeserver, school: School) -> list[str]:
    found = rows(
        hs,
        "SELECT room_id FROM parta_rooms WHERE school_id = ?"
        " OR class_id IN (SELECT class_id FROM parta_classes WHERE school_id = ?)",
        (school.school_id, school.school_id),
    )
    return sorted({str(r[0]) for r in found})


def erase_in(hs: RunningHomeserver, school: School, user_id: str) -> dict[str, Any]:
    path = f"/schools/{school.school_id}/members/{user_id}/erase"
    answer: dict[str, Any] = api(hs, "POST", path, school.admin, {"messages": "redact"})
    return answer


def done_in(hs: RunningHomeserver, school: School, erasure_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    path = f"/schools/{school.school_id}/erasures/{erasure_id}"
    while (status := api(hs, "GET", path, school.admin))["status"] != "done":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    done: dict[str, Any] = status
    return done


def redactions_in(hs: RunningHomeserver, user_id: str, room_ids: list[str]) -> dict[str, int]:
    """Their events in these rooms (messages and memberships) → how often redacted."""
    marks = ", ".join("?" for _ in room_ids)
    found = rows(
        hs,
        "SELECT e.event_id, COUNT(r.redacts) FROM events e"
        " LEFT JOIN redactions r ON r.redacts = e.event_id"
        f" WHERE e.room_id IN ({marks}) AND (e.sender = ? OR (e.type = 'm.room.member'"
        " AND e.state_key = ?)) AND e.type != 'm.room.redaction' GROUP BY e.event_id",
        (*room_ids, user_id, user_id),
    )
    return {str(e): int(n) for e, n in found}


def can_sign_in(hs: RunningHomeserver, user: User) -> bool:
    try:
        hs.request(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user.localpart},
                "password": user.password,
            },
        )
    except HttpError:
        return False
    return True


def assert_gone_from_a_only(
    hs: RunningHomeserver,
    seeded: Seeded,
    second: Second,
    before: dict[str, list[str]],
    b_timeline_before: list[dict[str, Any]],
) -> None:
    subject = seeded.subject
    a_marks = school_marks(hs, seeded.school, [seeded.poll_id])
    after = traces(hs, [subject.user_id])
    # Nothing of theirs left in school A's rows …
    leftovers = {
        t: [r for r in found if any(m in r for m in a_marks)] for t, found in after.items()
    }
    assert {t: r for t, r in leftovers.items() if r} == {}
    # … school B's rows about them exactly as they were, the account's rows still there.
    b_marks = school_marks(hs, second.school, [second.poll_id])

    def of_b(found: dict[str, list[str]]) -> dict[str, list[str]]:
        kept = {t: sorted(r for r in rs if any(m in r for m in b_marks)) for t, rs in found.items()}
        return {t: rs for t, rs in kept.items() if rs}

    assert of_b(after) == of_b(before)
    assert {"parta_school_roles", "parta_consents", "content_poll_responses"} <= set(of_b(after))
    assert {t for t in before if t in ACCOUNT_ROWS} <= set(after)
    # In A's rooms each of their events is redacted once (messages, name and avatar) …
    a_rooms = school_rooms(hs, seeded.school)
    in_a = redactions_in(hs, subject.user_id, a_rooms)
    assert in_a and set(in_a.values()) == {1}, in_a
    # … in B's rooms none, and B's timeline is the same.
    b_rooms = school_rooms(hs, second.school)
    in_b = redactions_in(hs, subject.user_id, b_rooms)
    assert in_b and set(in_b.values()) == {0}, in_b
    assert b_timeline(hs, second) == b_timeline_before
    # Their uploads stay (the account's), and they still sign in.
    assert set(seeded.media_ids) <= media_files(hs)
    assert can_sign_in(hs, subject)
    members = api(hs, "GET", f"/schools/{seeded.school.school_id}/members", seeded.school.admin)
    assert subject.user_id not in [m["user_id"] for m in members["members"]]
    members = api(hs, "GET", f"/schools/{second.school.school_id}/members", second.school.admin)
    assert subject.user_id in [m["user_id"] for m in members["members"]]


def b_timeline(hs: RunningHomeserver, second: Second) -> list[dict[str, Any]]:
    room = urllib.parse.quote(second.room_id, safe="")
    path = f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=200"
    token = second.school.teacher.access_token
    chunk = hs.request("GET", path, token=token)["chunk"]
    return [
        {"event_id": e["event_id"], "content": e["content"]}
        for e in chunk
        if e["type"] == "m.room.message"
    ]


def test_a_person_in_two_schools_erased_by_one_keeps_the_other_and_then_goes(
    hs: RunningHomeserver,
) -> None:
    seeded = seed(hs, made_by_parta=True)
    second = seed_second_school(hs, seeded)
    subject = seeded.subject
    before = traces(hs, [subject.user_id])
    b_before = b_timeline(hs, second)
    assert set(second.texts) <= {m["content"].get("body") for m in b_before}

    # School A erases them: A's part only; the account and B's data stay.
    started = erase_in(hs, seeded.school, subject.user_id)
    done = done_in(hs, seeded.school, started["erasure_id"])
    assert done["steps_done"] == ["roster", "messages", "school_rows"]
    assert done["scope"] == "school"
    assert_gone_from_a_only(hs, seeded, second, before, b_before)
    entries = audit_about(hs, seeded)
    tombstone = [e for e in entries if e["action"] == "privacy.erased"]
    assert len(tombstone) == 1 and tombstone[0]["details"]["scope"] == "school"

    # School B erases them: no school holds them any more, the whole account goes.
    started = erase_in(hs, second.school, subject.user_id)
    done = done_in(hs, second.school, started["erasure_id"])
    assert done["steps_done"] == ALL_STEPS and done["scope"] == "account"
    assert traces(hs, [subject.user_id, *seeded.media_ids]) == {}
    assert not media_files(hs) & set(seeded.media_ids)
    assert not can_sign_in(hs, subject)
    b_rooms = school_rooms(hs, second.school)
    assert set(redactions_in(hs, subject.user_id, b_rooms).values()) == {1}
    operator = hs.register("auditor", admin=True)
    assert api(hs, "GET", "/audit/verify", operator)["ok"] is True


def test_a_schools_part_killed_midway_finishes_after_a_restart(
    hs: RunningHomeserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(hs, messages=4, made_by_parta=True)
    second = seed_second_school(hs, seeded)
    subject = seeded.subject
    before = traces(hs, [subject.user_id])
    b_before = b_timeline(hs, second)
    monkeypatch.setenv(PAUSE_AFTER_ENV, "messages:2")
    hs.restart()
    started = erase_in(hs, seeded.school, subject.user_id)
    a_rooms = school_rooms(hs, seeded.school)
    deadline = time.monotonic() + 60
    while sum(redactions_in(hs, subject.user_id, a_rooms).values()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    hs.proc.kill()  # kill -9, in the middle of school A's messages
    hs.proc.wait()
    monkeypatch.delenv(PAUSE_AFTER_ENV)
    hs.restart()
    done = done_in(hs, seeded.school, started["erasure_id"])
    assert done["steps_done"] == ["roster", "messages", "school_rows"]
    assert done["scope"] == "school"
    assert_gone_from_a_only(hs, seeded, second, before, b_before)


def test_the_operator_erases_a_whole_account_in_every_school_at_once(
    hs: RunningHomeserver,
) -> None:
    seeded = seed(hs, made_by_parta=True)
    second = seed_second_school(hs, seeded)
    subject = seeded.subject
    path = f"/users/{urllib.parse.quote(subject.user_id, safe='')}/erase"
    for user in (seeded.school.admin, second.school.admin, subject):
        with pytest.raises(HttpError) as refused:
            api(hs, "POST", path, user, {})
        assert refused.value.status == 403
        assert refused.value.body["org.parta.message"]["id"] == (
            "privacy.erase_account_operator_only"
        )
    operator = hs.register("operator", admin=True)
    started = api(hs, "POST", path, operator, {"messages": "redact"})
    assert {e["school_id"] for e in started["erasures"]} == {
        seeded.school.school_id,
        second.school.school_id,
    }
    assert {e["asked"] for e in started["erasures"]} == {"account"}
    scopes: list[str] = []
    for erasure, school in zip(
        sorted(started["erasures"], key=lambda e: e["school_id"]),
        sorted([seeded.school, second.school], key=lambda s: s.school_id),
        strict=True,
    ):
        scopes.append(done_in(hs, school, erasure["erasure_id"])["scope"])
    assert "account" in scopes  # the last school's part took the account
    assert traces(hs, [subject.user_id, *seeded.media_ids]) == {}
    assert not can_sign_in(hs, subject)
    for school in (seeded.school, second.school):
        rooms = school_rooms(hs, school)
        assert set(redactions_in(hs, subject.user_id, rooms).values()) == {1}
    # Nobody left to erase: a Matrix error, not a 500.
    with pytest.raises(HttpError) as gone:
        api(hs, "POST", path, operator, {})
    assert gone.value.status == 404


def test_the_schools_policy_says_what_becomes_of_messages_when_the_request_does_not(
    hs: RunningHomeserver,
) -> None:
    """A school that keeps messages (``erasure_messages: keep_anonymised``): an erasure
    whose request leaves ``messages`` out keeps them — in the room, under the person's
    user ID, with no name — while their rows and the account go as always."""
    seeded = seed(hs, made_by_parta=True)
    school, subject = seeded.school, seeded.subject
    sid = school.school_id
    # Only the two rules are a policy.
    refused = api_error(
        hs, "PATCH", f"/schools/{sid}", school.admin, {"policy": {"erasure_messages": "delete"}}
    )
    assert refused.status == 400, refused
    assert api(hs, "GET", f"/schools/{sid}", school.admin)["policy"]["erasure_messages"] == "redact"
    policy = {"erasure_messages": "keep_anonymised"}
    changed = api(hs, "PATCH", f"/schools/{sid}", school.admin, {"policy": policy})
    assert changed["policy"]["erasure_messages"] == "keep_anonymised"

    started = api(hs, "POST", f"/schools/{sid}/members/{subject.user_id}/erase", school.admin)
    assert started["messages"] == "keep_anonymised"
    done = wait_done(hs, seeded, started["erasure_id"])
    assert done["messages"] == "keep_anonymised" and done["scope"] == "account"
    assert "messages" in done["steps_done"]
    # The messages stay, none redacted; the account is gone and so are their rows.
    events = timeline(hs, seeded)
    bodies = [
        e["content"].get("body")
        for e in events
        if e["sender"] == subject.user_id and e["type"] == "m.room.message"
    ]
    assert set(seeded.messages) <= set(bodies)
    redacted = rows(
        hs,
        "SELECT COUNT(*) FROM redactions r JOIN events e ON e.event_id = r.redacts"
        " WHERE e.sender = ? AND e.type = 'm.room.message'",
        (subject.user_id,),
    )
    assert redacted == [(0,)]
    assert not can_sign_in(hs, subject)
    entries = audit_about(hs, seeded)
    erase = [e for e in entries if e["action"] == "privacy.erase"]
    assert [e["details"]["messages"] for e in erase] == ["keep_anonymised"]
