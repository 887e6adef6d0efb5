"""A person's request to erase (docs/privacy.md, "A person asks to be erased"): who may
ask for whom, one waiting request per person, the school's queue with its due dates, and
the answer — carried out by the existing erasure (the request is done when it is) or
declined with a reason the requester reads. Against a real Synapse with the module."""

import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_module.clock import CLOCK_FILE_VARIABLE
from synapse_module.privacy.rules import (
    erasure_request_due,
    may_request_erasure,
    puts_in_school,
    working_days_after,
)
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.privacy_people import send
from tests.roster_helpers import (
    School,
    api,
    api_error,
    build_school,
    wait_for_rooms,
)

# -- the due date: 10 working days, weekends and Russia's days off skipped ----------------

MON = datetime.date(2026, 12, 7)
D = datetime.date


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (MON, 10, D(2026, 12, 21)),  # two whole weeks: Monday again
        (D(2026, 12, 11), 10, D(2026, 12, 25)),  # a Friday
        (D(2026, 12, 12), 10, D(2026, 12, 25)),  # a Saturday
        (D(2026, 12, 13), 10, D(2026, 12, 25)),  # a Sunday
        (D(2026, 12, 11), 1, D(2026, 12, 14)),  # Friday → Monday
        (MON, 4, D(2026, 12, 11)),  # within the week
        (MON, 0, MON),
        # Over the new year: 31 December 2026 is a day off (moved from 4 January), then
        # 1–8 January are the New Year holidays and Christmas: 29, 30 December and from
        # 11 January on.
        (D(2026, 12, 28), 10, D(2027, 1, 20)),
        (D(2026, 12, 30), 1, D(2027, 1, 11)),
        # 9 May 2026 is a Saturday: Monday 11 May is off instead; 1 May a Friday.
        (D(2026, 4, 30), 2, D(2026, 5, 5)),
        (D(2026, 5, 8), 1, D(2026, 5, 12)),
        # 12 June (Friday) off; 23 February (Monday) off.
        (D(2026, 6, 11), 1, D(2026, 6, 15)),
        (D(2026, 2, 20), 1, D(2026, 2, 24)),
        # A Saturday the government made a working day counts: 1 November 2025 (its
        # Monday, 3 November, and Tuesday, 4 November, are off).
        (D(2025, 10, 31), 1, D(2025, 11, 1)),
        (D(2025, 10, 31), 2, D(2025, 11, 5)),
    ],
)
def test_working_days_after(start: datetime.date, days: int, due: datetime.date) -> None:
    assert working_days_after(start, days) == due


def test_a_region_s_own_days_off_are_skipped_too() -> None:
    """A republic's day off the federal calendar lacks (the operator lists it in
    ``privacy.extra_days_off``): skipped like a holiday."""
    tuesday = D(2026, 12, 8)
    assert working_days_after(MON, 1) == tuesday
    assert working_days_after(MON, 1, frozenset({tuesday})) == D(2026, 12, 9)
    assert erasure_request_due(MON, frozenset({tuesday})) == D(2026, 12, 22)


def test_a_request_is_due_ten_working_days_after_it_was_made() -> None:
    assert erasure_request_due(MON) == D(2026, 12, 21)
    assert erasure_request_due(D(2026, 12, 28)) == D(2027, 1, 20)


# -- who asks for whom: the consents' rule, for oneself or one's child ---------------------


@pytest.mark.parametrize(
    ("relation", "student", "grade", "self_from", "allowed"),
    [
        ("guardian", True, 5, 8, True),  # a parent for their child
        ("guardian", True, 9, 8, True),
        ("self", True, 5, 8, False),  # a 5th-grader: their parent asks
        ("self", True, 9, 8, True),  # a 9th-grader asks for themself
        ("self", True, 8, 8, True),
        ("self", True, 11, None, False),  # the school lets no student act for themself
        ("self", False, None, 8, True),  # a teacher, a parent, an administrator
        ("manager", True, 9, 8, False),  # an administrator erases; they file nothing
        ("other", True, 9, 8, False),
    ],
)
def test_who_asks_for_an_erasure(
    relation: str, student: bool, grade: int | None, self_from: int | None, allowed: bool
) -> None:
    assert may_request_erasure(relation, student, grade, self_from) is allowed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "details", "member"),
    [
        ("member.put", '{"roles": ["teacher"], "classes": {}}', True),
        ("member.put", '{"roles": [], "classes": {}}', False),  # a removal
        ("member.put", "not json", False),
        ("member.put", "[]", False),
        ("account.created", '{"display_name": "Маша"}', True),  # made by an import
    ],
)
def test_which_roster_entries_put_a_person_in_the_school(
    action: str, details: str, member: bool
) -> None:
    assert puts_in_school(action, details) is member


# -- against the real Synapse -----------------------------------------------------------------


# A region's own day off, as the operator lists it (config/module.example.yaml).
REGION_DAY_OFF = "2027-01-20"


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's clock: a file of Unix seconds (``synapse_module.clock``), now."""
    path = tmp_path_factory.mktemp("clock") / "now"
    set_clock(path, time.time())
    return path


def set_clock(path: Path, seconds: float) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(seconds), encoding="utf-8")
    tmp.replace(path)


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory, clock: Path) -> Iterator[RunningHomeserver]:
    config = {"privacy": {"extra_days_off": [REGION_DAY_OFF]}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CLOCK_FILE_VARIABLE, str(clock))
        with running_homeserver(tmp_path_factory.mktemp("erasure_requests"), config) as hs:
            yield hs


class Pupils:
    def __init__(self, school: School, fifth: User, ninth: User):
        self.school = school
        self.fifth = fifth
        self.ninth = ninth


@pytest.fixture(scope="module")
def pupils(hs: RunningHomeserver) -> Pupils:
    school = build_school(hs, hs.register("operator", admin=True))
    sid = school.school_id
    found = []
    for grade, letter in ((5, "В"), (9, "А")):
        cls = api(
            hs,
            "POST",
            f"/schools/{sid}/classes",
            school.admin,
            {"grade": grade, "letter": letter, "year": "2026/27"},
        )
        pupil = hs.register(f"pupil{grade}")
        body = {"roles": ["student"], "classes": [cls["class_id"]]}
        api(hs, "PUT", f"/schools/{sid}/members/{pupil.user_id}", school.admin, body)
        found.append(pupil)
    return Pupils(school, found[0], found[1])


def path(school: School, tail: str = "") -> str:
    return f"/schools/{school.school_id}/erasure_requests{tail}"


def file(hs: RunningHomeserver, school: School, who: User, subject: User | None = None) -> Any:
    body = {} if subject is None else {"user_id": subject.user_id}
    return api(hs, "POST", path(school), who, body)


def listed(hs: RunningHomeserver, school: School, who: User) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api(hs, "GET", path(school), who)["requests"]
    return found


def school_today(hs: RunningHomeserver, school: School) -> datetime.date:
    return datetime.date.fromisoformat(api(hs, "GET", path(school), school.admin)["today"])


def test_who_may_ask_for_whom(hs: RunningHomeserver, pupils: Pupils) -> None:
    """Parent for their own child yes, for another's no; a 5th-grader for themself no,
    a 9th-grader yes; a teacher for themself yes; a student for a classmate no. A refusal
    is 403 in Russian and English and stores nothing."""
    school = pupils.school
    child, other_child = school.students[0], school.students[1]
    allowed = [
        (school.parent, child, "guardian"),
        (pupils.ninth, None, "self"),
        (school.teacher, None, "self"),
    ]
    refused = [
        (school.parent, other_child),
        (pupils.fifth, None),
        (school.students[2], None),  # a 7th-grader: grade 8 in this school
        (school.students[1], child),
        (school.teacher, child),  # their student, not their child
        (school.admin, child),  # an administrator erases directly, files nothing
    ]
    for who, subject in refused:
        error = api_error(
            hs, "POST", path(school), who, {} if subject is None else {"user_id": subject.user_id}
        )
        assert error.status == 403, (who.user_id, error.body)
        assert error.body["errcode"] == "M_FORBIDDEN"
        assert "родитель" in error.body["error"] and "parent" in error.body["error"]
    assert listed(hs, school, school.admin) == []  # nothing stored by a refusal
    today = school_today(hs, school)
    for who, subject, relation in allowed:
        made = file(hs, school, who, subject)
        assert made["new"] is True and made["status"] == "open", made
        assert made["relation"] == relation
        assert made["user_id"] == (subject or who).user_id
        assert made["requested_by"] == who.user_id
        assert made["due_date"] == erasure_request_due(today).isoformat()
        assert made["overdue"] is False
    # Someone not in the school, and a body of the wrong shape: said, nothing stored.
    stranger = hs.register("stranger")
    assert api_error(hs, "POST", path(school), stranger, {}).status == 404
    bad = api_error(hs, "POST", path(school), school.parent, {"user_id": 5})
    assert (bad.status, bad.body["errcode"]) == (400, "M_BAD_JSON")
    assert len(listed(hs, school, school.admin)) == 3


def test_a_second_request_answers_the_waiting_one(hs: RunningHomeserver, pupils: Pupils) -> None:
    school = pupils.school
    first = file(hs, school, pupils.ninth)
    again = file(hs, school, pupils.ninth)
    assert again["new"] is False and again["request_id"] == first["request_id"]
    mine = listed(hs, school, pupils.ninth)
    assert [r["request_id"] for r in mine] == [first["request_id"]]


def test_the_school_sees_every_request_a_person_their_own(
    hs: RunningHomeserver, pupils: Pupils
) -> None:
    school = pupils.school
    every = listed(hs, school, school.admin)
    assert {r["requested_by"] for r in every} >= {school.parent.user_id, school.teacher.user_id}
    assert all(r["status"] == "open" for r in every)
    created = [r["created_ts"] for r in every]
    assert created == sorted(created)  # open ones, oldest first
    assert {r["requested_by"] for r in listed(hs, school, school.parent)} == {school.parent.user_id}
    assert listed(hs, school, school.students[1]) == []
    # The administrator's read is recorded.
    entries = api(hs, "GET", f"/schools/{school.school_id}/audit", school.admin)["entries"]
    actions = {e["action"] for e in entries}
    assert {"privacy.erasure_request", "privacy.erasure_requests_read"} <= actions


def wait_request(
    hs: RunningHomeserver, school: School, who: User, request_id: str, status: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        found = {r["request_id"]: r for r in listed(hs, school, who)}[request_id]
        if found["status"] == status:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_carried_out_the_request_follows_the_erasure_to_done(
    hs: RunningHomeserver, pupils: Pupils
) -> None:
    """The parent's request for their child: the administrator carries it out (the
    existing erasure, the school's policy for the messages); when the erasure is done
    the request is, and no longer names the child."""
    school = pupils.school
    child = school.students[0]
    request = file(hs, school, school.parent, child)
    request_id = request["request_id"]
    carry = path(school, f"/{request_id}/carry_out")
    assert api_error(hs, "POST", carry, school.parent, {}).status == 403
    started = api(hs, "POST", carry, school.admin, {})
    assert started["status"] in ("in_progress", "done") and started["erasure_id"]
    erasure = api(
        hs, "GET", f"/schools/{school.school_id}/erasures/{started['erasure_id']}", school.admin
    )
    assert erasure["messages"] == "redact"  # the school's erasure_messages, unset
    done = wait_request(hs, school, school.parent, request_id, "done")
    assert done["user_id"] is None and done["finished_ts"] is not None
    assert done["decided_by"] == school.admin.user_id
    members = api(hs, "GET", f"/schools/{school.school_id}/members", school.admin)
    assert child.user_id not in {m["user_id"] for m in members["members"]}
    # Asked again: the same answer, nothing started twice.
    assert api(hs, "POST", carry, school.admin, {})["erasure_id"] == started["erasure_id"]
    # Declining a carried-out request is refused in words.
    error = api_error(
        hs, "POST", path(school, f"/{request_id}/decline"), school.admin, {"reason": "x"}
    )
    assert (error.status, error.body["errcode"]) == (409, "M_BAD_STATE")


def test_claimed_for_carrying_out_a_request_cannot_be_declined(
    hs: RunningHomeserver, pupils: Pupils
) -> None:
    """The school's two answers cannot both land: carrying out claims the request before
    its erasure starts, so a decline at that moment is refused; a request claimed and
    not yet linked to its erasure (a crash between the two) is carried on by the next
    click, to the same end as ever."""
    school = pupils.school
    teacher = hs.register("teacher-leaving")
    body = {"roles": ["teacher"]}
    api(hs, "PUT", f"/schools/{school.school_id}/members/{teacher.user_id}", school.admin, body)
    request_id = file(hs, school, teacher)["request_id"]
    # As the carry-out leaves it between its claim and the erasure's start.
    hs.sql(
        "UPDATE parta_erasure_requests SET status = 'in_progress', decided_by = ?,"
        " decided_ts = ? WHERE request_id = ?",
        (school.admin.user_id, int(time.time() * 1000), request_id),
    )
    decline = path(school, f"/{request_id}/decline")
    error = api_error(hs, "POST", decline, school.admin, {"reason": "Нужно хранить"})
    assert (error.status, error.body["errcode"]) == (409, "M_BAD_STATE")
    waiting = {r["request_id"]: r for r in listed(hs, school, school.admin)}[request_id]
    assert waiting["status"] == "in_progress" and waiting["erasure_id"] is None
    started = api(hs, "POST", path(school, f"/{request_id}/carry_out"), school.admin, {})
    assert started["erasure_id"]
    done = wait_request(hs, school, school.admin, request_id, "done")
    assert done["reason"] is None and done["decided_by"] == school.admin.user_id


def test_declined_the_requester_reads_the_reason(hs: RunningHomeserver, pupils: Pupils) -> None:
    school = pupils.school
    request_id = file(hs, school, school.teacher)["request_id"]
    decline = path(school, f"/{request_id}/decline")
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        error = api_error(hs, "POST", decline, school.admin, body)
        assert (error.status, error.body["errcode"]) == (400, "M_BAD_JSON"), body
    assert api_error(hs, "POST", decline, school.teacher, {"reason": "нет"}).status == 403
    reason = "Школа обязана хранить журнал успеваемости 5 лет (приказ Минпросвещения)."
    declined = api(hs, "POST", decline, school.admin, {"reason": reason})
    assert declined["status"] == "declined" and declined["reason"] == reason
    mine = {r["request_id"]: r for r in listed(hs, school, school.teacher)}[request_id]
    assert (mine["status"], mine["reason"]) == ("declined", reason)
    # The same answer again is the same; another one, or carrying it out, is refused.
    assert api(hs, "POST", decline, school.admin, {"reason": reason})["status"] == "declined"
    assert api_error(hs, "POST", decline, school.admin, {"reason": "другая"}).status == 409
    carry = path(school, f"/{request_id}/carry_out")
    assert api_error(hs, "POST", carry, school.admin, {}).status == 409
    # Declined, a new request may be filed.
    assert file(hs, school, school.teacher)["new"] is True
    missing = api_error(
        hs, "POST", path(school, "/erq_nope/decline"), school.admin, {"reason": "x"}
    )
    assert (missing.status, missing.body["errcode"]) == (404, "M_NOT_FOUND")


def test_only_the_bot_reads_what_to_tell(hs: RunningHomeserver, pupils: Pupils) -> None:
    school = pupils.school
    for who in (school.admin, school.parent):
        error = api_error(hs, "GET", "/internal/erasure_requests/to_tell", who)
        assert error.status == 403
        error = api_error(hs, "POST", "/internal/erasure_requests/erq_x/told", who, {})
        assert error.status == 403


# -- a former member: out of the roster, or moved to another school ----------------------


def joined_room(hs: RunningHomeserver, school: School, who: User) -> str:
    """The class 7А chat, once ``who`` (its teacher) has joined it."""
    room_id: str = school.class_a["rooms"]["class_chat"]
    deadline = time.monotonic() + 60
    while (
        room_id
        not in hs.request("GET", "/_matrix/client/v3/joined_rooms", token=who.access_token)[
            "joined_rooms"
        ]
    ):
        assert time.monotonic() < deadline, f"{who.user_id} not in {room_id}"
        time.sleep(0.1)
    return room_id


def new_teacher(hs: RunningHomeserver, school: School, name: str) -> User:
    teacher = hs.register(name)
    body = {"roles": ["teacher"], "classes": [school.class_a["class_id"]]}
    api(hs, "PUT", f"/schools/{school.school_id}/members/{teacher.user_id}", school.admin, body)
    wait_for_rooms(hs, teacher)
    return teacher


def redactions_of(hs: RunningHomeserver, event_id: str) -> int:
    [(count,)] = hs.rows("SELECT COUNT(*) FROM redactions WHERE redacts = ?", (event_id,))
    return int(count)


def erasure_of(hs: RunningHomeserver, school: School, erasure_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    path = f"/schools/{school.school_id}/erasures/{erasure_id}"
    while (journal := api(hs, "GET", path, school.admin))["status"] != "done":
        assert time.monotonic() < deadline, journal
        time.sleep(0.2)
    found: dict[str, Any] = journal
    return found


def test_a_request_of_someone_since_removed_from_the_roster_is_carried_out(
    hs: RunningHomeserver, pupils: Pupils
) -> None:
    """A teacher asks to be erased, then leaves the school (the roster removes them)
    before the school answers: the school still holds their messages, so carrying out
    erases them — the school's part; the account stays, since the teacher registered
    it themself (the scope rule: a school takes only an account Parta made for it)."""
    school = pupils.school
    leaver = new_teacher(hs, school, "teacher-left")
    event_id = send(
        hs, leaver, joined_room(hs, school, leaver), {"msgtype": "m.text", "body": "До свидания"}
    )
    request_id = file(hs, school, leaver)["request_id"]
    api(hs, "DELETE", f"/schools/{school.school_id}/members/{leaver.user_id}", school.admin)
    started = api(hs, "POST", path(school, f"/{request_id}/carry_out"), school.admin, {})
    assert started["erasure_id"], started
    journal = erasure_of(hs, school, started["erasure_id"])
    assert journal["scope"] == "school", journal
    assert wait_request(hs, school, school.admin, request_id, "done")["user_id"] is None
    assert redactions_of(hs, event_id) == 1
    assert hs.request("GET", "/_matrix/client/v3/account/whoami", token=leaver.access_token)
    # Asked again, directly: erased already, nothing started twice.
    again = api(
        hs, "POST", f"/schools/{school.school_id}/members/{leaver.user_id}/erase", school.admin, {}
    )
    assert again["erasure_id"] == started["erasure_id"] and again["status"] == "done"


def test_a_request_of_someone_who_moved_schools_erases_this_school_s_part(
    hs: RunningHomeserver, pupils: Pupils
) -> None:
    """Moved to another school (out of this one's roster, into the other's): this
    school's messages and rows go, the account and the other school's part stay."""
    school = pupils.school
    other = build_school(hs, hs.register("operator2", admin=True), "Школа № 2")
    mover = new_teacher(hs, school, "teacher-moved")
    here = send(hs, mover, joined_room(hs, school, mover), {"msgtype": "m.text", "body": "Здесь"})
    request_id = file(hs, school, mover)["request_id"]
    api(hs, "DELETE", f"/schools/{school.school_id}/members/{mover.user_id}", school.admin)
    there_body = {"roles": ["teacher"], "classes": [other.class_a["class_id"]]}
    api(hs, "PUT", f"/schools/{other.school_id}/members/{mover.user_id}", other.admin, there_body)
    wait_for_rooms(hs, mover)
    there = send(hs, mover, joined_room(hs, other, mover), {"msgtype": "m.text", "body": "Там"})
    started = api(hs, "POST", path(school, f"/{request_id}/carry_out"), school.admin, {})
    journal = erasure_of(hs, school, started["erasure_id"])
    assert journal["scope"] == "school", journal
    assert journal["steps_done"] == ["roster", "messages", "school_rows"]
    assert (redactions_of(hs, here), redactions_of(hs, there)) == (1, 0)
    assert wait_request(hs, school, school.admin, request_id, "done")["user_id"] is None
    members = api(hs, "GET", f"/schools/{other.school_id}/members", other.admin)["members"]
    assert mover.user_id in {m["user_id"] for m in members}
    assert api(hs, "GET", "/me", mover)  # the account still signs in and reads
    # The other school never held anyone of this one: its administrator cannot erase
    # this school's teacher, and this one cannot erase the other's.
    for erasing, stranger in ((other, school.teacher), (school, other.teacher)):
        error = api_error(
            hs,
            "POST",
            f"/schools/{erasing.school_id}/members/{stranger.user_id}/erase",
            erasing.admin,
            {},
        )
        assert (error.status, error.body["errcode"]) == (404, "M_NOT_FOUND")


def test_a_stranger_is_never_erased_by_a_school(hs: RunningHomeserver, pupils: Pupils) -> None:
    """Never a member: 404 in Russian and English, and no erasure journalled; nor Parta's
    own account, which sits in every school's rooms."""
    school = pupils.school
    stranger = hs.register("never-a-member")
    [(service,)] = hs.rows(
        "SELECT sender FROM events WHERE room_id = ? AND type = 'm.room.create'",
        (school.class_a["rooms"]["class_chat"],),
    )
    for user_id in (stranger.user_id, str(service), "@nobody:example.org"):
        erase_path = f"/schools/{school.school_id}/members/{user_id}/erase"
        error = api_error(hs, "POST", erase_path, school.admin, {})
        assert (error.status, error.body["errcode"]) == (404, "M_NOT_FOUND"), user_id
        assert "не состоит" in error.body["error"] and "not in this school" in error.body["error"]
    [(count,)] = hs.rows(
        "SELECT COUNT(*) FROM parta_erasures WHERE user_id IN (?, ?)", (stranger.user_id, service)
    )
    assert count == 0


def test_a_former_member_is_known_by_their_rooms_when_the_log_no_longer_has_them(
    hs: RunningHomeserver, pupils: Pupils
) -> None:
    """The audit log's roster history may have been trimmed by the school's rule: their
    joins to the school's rooms still say they were a member (and the school still holds
    their messages there)."""
    school = pupils.school
    gone = new_teacher(hs, school, "teacher-long-gone")
    event_id = send(hs, gone, joined_room(hs, school, gone), {"msgtype": "m.text", "body": "Давно"})
    api(hs, "DELETE", f"/schools/{school.school_id}/members/{gone.user_id}", school.admin)
    # As if retention had trimmed the log's front past them (the last test: the chain
    # is not checked in this module).
    hs.sql("DELETE FROM parta_audit WHERE target = ?", (gone.user_id,))
    erase_path = f"/schools/{school.school_id}/members/{gone.user_id}/erase"
    started = api(hs, "POST", erase_path, school.admin, {})
    # Their own account (registered themself) stays: the school's part only.
    assert erasure_of(hs, school, started["erasure_id"])["scope"] == "school"
    assert redactions_of(hs, event_id) == 1


def test_a_request_made_before_the_new_year_is_due_after_its_holidays(
    hs: RunningHomeserver, pupils: Pupils, clock: Path
) -> None:
    """Made on Monday 28 December 2026 (the school's date): 29 and 30 December, then
    from 11 January — 31 December and 1–8 January are days off — the tenth working
    day is 20 January, which this server's region also has off: 21 January."""
    school = pupils.school
    teacher = new_teacher(hs, school, "teacher-new-year")
    moscow = datetime.timezone(datetime.timedelta(hours=3))
    made = datetime.datetime(2026, 12, 28, 12, 0, tzinfo=moscow).timestamp()
    set_clock(clock, made)
    try:
        request = file(hs, school, teacher)
        assert request["due_date"] == "2027-01-21", request
        assert (
            request["due_date"]
            == erasure_request_due(
                D(2026, 12, 28), frozenset({D.fromisoformat(REGION_DAY_OFF)})
            ).isoformat()
        )
        assert school_today(hs, school) == D(2026, 12, 28)
    finally:
        set_clock(clock, time.time())
