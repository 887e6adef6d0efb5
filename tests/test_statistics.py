"""Statistics (issue 11, item 2): the arithmetic as tables, then a seeded school against
a real Synapse — real messages, a lesson with attendance, a broadcast with viewer links
through the API — whose figures equal what the test counts itself; the XLSX read back
with openpyxl; and the daily rows surviving restarts."""

import datetime
import io
import secrets
import time
import urllib.parse
import zipfile
import zoneinfo
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest

from parta_common import tokens
from synapse_module.statistics import rules
from synapse_module.statistics.rules import DayInputs, Figures
from synapse_module.statistics.workbook import SCHOOL_COLUMNS, TRACK_COLUMNS, header
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import API, api, api_error

SECRET = secrets.token_urlsafe(32)
MSK = zoneinfo.ZoneInfo("Europe/Moscow")
MESSAGE_TYPES = ("m.room.message", "org.matrix.msc3381.poll.start")
DAY = 86_400_000


# -- the arithmetic ---------------------------------------------------------------


def test_day_figures_table() -> None:
    inputs = DayInputs(
        people=[
            ("s1", "teacher", "@t", True),
            ("s1", "student", "@a", True),
            ("s1", "student", "@b", False),  # an import's account, never used
            ("s1", "student", "@c", True),
            ("s1", "parent", "@p", True),
            ("s1", "parent", "@t", True),  # a teacher who is a parent counts in both
            ("s1", "administrator", "@adm", True),  # not a column
            ("s2", "student", "@d", False),
            ("s9", "student", "@x", True),  # a school not asked about
        ],
        signed_in=frozenset({"@t", "@a", "@d"}),
        room_school={"!c1": "s1", "!c2": "s1", "!ann": "s1", "!c3": "s2", "!old": "s1"},
        class_chats={"!c1": "A", "!c2": "B", "!c3": "C"},
        messages=[("!c1", "@t", 3), ("!c1", "@a", 2), ("!ann", "@t", 1), ("!else", "@z", 9)],
        active_rooms=["!c1", "!ann", "!c3"],
        lessons=[("!c1", 40, 3), ("!c2", 45, 1), ("!c3", 10, 2)],
        broadcasts=[("!ann", 5), ("!else", 7)],
    )
    out = rules.day_figures(["s1", "s2"], inputs)
    assert out["s1"] == Figures(
        teachers=1,
        teachers_registered=1,
        teachers_signed_in=1,
        students=3,
        students_registered=2,
        students_signed_in=1,
        parents=2,
        parents_registered=2,
        parents_signed_in=1,
        classes=2,
        active_classes=1,
        messages=6,
        senders=2,
        lessons=2,
        lesson_minutes=85,
        lesson_attendees=4,
        broadcasts=1,
        viewers=5,
    )
    # Seen signed in means registered, whatever the import's journal says.
    assert out["s2"] == Figures(
        students=1,
        students_registered=1,
        students_signed_in=1,
        classes=1,
        active_classes=1,
        lessons=1,
        lesson_minutes=10,
        lesson_attendees=2,
    )
    assert set(out) == {"s1", "s2"}


TODAY = datetime.date(2026, 12, 7)


def _track(first: datetime.date, messages: list[int]) -> dict[datetime.date, Figures]:
    return {first + datetime.timedelta(n): Figures(messages=m) for n, m in enumerate(messages)}


@pytest.mark.parametrize(
    ("tracks", "per_week"),
    [
        # 30 days of 2 messages a day: 14 a week, as a 30-day average.
        ([_track(datetime.date(2026, 11, 8), [2] * 30)], 14.0),
        # A school three days old in a 30-day period: its three days, not thirty.
        ([_track(datetime.date(2026, 12, 5), [10, 5, 6])], 49.0),
        # Shorter than a week: one day's 10 messages are 70 a week; two days' 3 are 10.5.
        ([_track(datetime.date(2026, 12, 7), [10])], 70.0),
        ([_track(datetime.date(2026, 12, 6), [1, 2])], 10.5),
        # Exactly a week: its messages.
        ([_track(datetime.date(2026, 12, 1), [1, 2, 3, 4, 5, 6, 7])], 28.0),
        # A fortnight: half of it.
        ([_track(datetime.date(2026, 11, 24), [2] * 14)], 14.0),
        # Two schools: their weeks together, each over its own days.
        ([_track(datetime.date(2026, 11, 8), [2] * 30), _track(TODAY, [3])], 35.0),
        # No days (a period in the future, or before the school existed): 0.
        ([{}], 0.0),
        ([], 0.0),
    ],
)
def test_messages_per_week_is_a_weekly_rate_for_any_period(
    tracks: list[dict[datetime.date, Figures]], per_week: float
) -> None:
    assert rules.per_week(tracks) == pytest.approx(per_week)


def test_period_and_shares_table() -> None:
    d1, d2 = datetime.date(2026, 12, 1), datetime.date(2026, 12, 2)
    track = {
        d1: Figures(students=10, students_signed_in=4, classes=2, messages=7, lessons=1),
        d2: Figures(students=12, students_signed_in=6, classes=2, messages=3, lessons=1),
    }
    period = rules.period_figures(track)
    # The roster as on the last day; activity summed.
    assert (period.students, period.students_signed_in, period.classes) == (12, 6, 2)
    assert (period.messages, period.lessons) == (10, 2)
    derived = rules.derived(Figures(students=12, students_signed_in=6, messages=10), 5.04)
    assert derived["students_signed_in_share"] == 50.0
    assert derived["messages_per_week"] == 5.0
    assert derived["teachers_signed_in_share"] == 0.0  # nobody of nobody
    assert rules.period_figures({}) == Figures()
    today = datetime.date(2026, 12, 7)
    cases: list[tuple[str | None, str | None, object]] = [
        (None, None, (today - datetime.timedelta(29), today)),
        ("2026-12-01", "2026-12-03", (d1, datetime.date(2026, 12, 3))),
        ("2026-12-03", "2026-12-01", rules.BAD_PERIOD),
        ("2026-13-01", None, rules.BAD_PERIOD),
        ("2025-01-01", "2026-12-01", rules.PERIOD_TOO_LONG),
    ]
    for raw_from, raw_to, expected in cases:
        assert rules.parse_period(raw_from, raw_to, today) == expected, (raw_from, raw_to)
    start, end = rules.day_bounds(d1, MSK)
    assert end - start == DAY
    assert datetime.datetime.fromtimestamp(start / 1000, MSK).hour == 0
    assert rules.day_of(start, MSK) == d1 and rules.day_of(end - 1, MSK) == d1


# -- a seeded school against a real Synapse -------------------------------------------


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    """A Synapse of our own (its restarts disturb no other test), lessons enabled."""
    config = {
        "media": {"enabled": True, "token_secret": SECRET, "sfu_public_url": "http://127.0.0.1:1/"}
    }
    with running_homeserver(tmp_path_factory.mktemp("stats"), module_config=config) as running:
        yield running


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def send(hs: RunningHomeserver, user: User, room_id: str, text: str) -> None:
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{secrets.token_hex(6)}"
    hs.request("PUT", path, {"msgtype": "m.text", "body": text}, user.access_token)


def count_messages(hs: RunningHomeserver, viewer: User, room_id: str) -> tuple[int, set[str]]:
    """Messages of today (Moscow) in a room as a member reads them, not the service's."""
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/messages?dir=b&limit=200"
    chunk = hs.request("GET", path, None, viewer.access_token)["chunk"]
    start, end = rules.day_bounds(datetime.datetime.now(MSK).date(), MSK)
    found = [
        e
        for e in chunk
        if e["type"] in MESSAGE_TYPES
        and not e["sender"].startswith("@parta:")
        and start <= e["origin_server_ts"] < end
    ]
    return len(found), {e["sender"] for e in found}


def wait_for(check: Any, what: str, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds:.0f} s")
        time.sleep(0.5)


def test_statistics_of_a_seeded_school(hs: RunningHomeserver) -> None:
    operator = hs.register("operator", admin=True)
    coord, other_coord = hs.register("coord"), hs.register("coord-other")
    admin, teacher = hs.register("admin"), hs.register("teacher")
    students = [hs.register(f"student{n}") for n in range(4)]
    parent = hs.register("parent")
    region = api(hs, "POST", "/units", operator, {"kind": "region", "name": "Регион"})
    mun = api(
        hs,
        "POST",
        "/units",
        operator,
        {"kind": "municipality", "name": "Район", "parent_id": region["unit_id"]},
    )
    other = api(
        hs,
        "POST",
        "/units",
        operator,
        {"kind": "municipality", "name": "Другой", "parent_id": region["unit_id"]},
    )
    m, o = mun["unit_id"], other["unit_id"]
    api(hs, "PUT", f"/units/{m}/coordinators/{q(coord.user_id)}", operator)
    api(hs, "PUT", f"/units/{o}/coordinators/{q(other_coord.user_id)}", operator)
    school = api(
        hs,
        "POST",
        "/schools",
        coord,
        {"name": "Школа № 7", "unit_id": m, "administrators": [admin.user_id]},
    )
    sid = school["school_id"]
    classes = [
        api(
            hs,
            "POST",
            f"/schools/{sid}/classes",
            admin,
            {"grade": 5, "letter": x, "year": "2026/27"},
        )
        for x in ("а", "б")
    ]
    class_a, class_b = classes
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{q(teacher.user_id)}",
        admin,
        {"roles": ["teacher"], "classes": [class_a["class_id"]]},
    )
    for n, student in enumerate(students):
        target = class_a if n < 3 else class_b
        api(
            hs,
            "PUT",
            f"/schools/{sid}/members/{q(student.user_id)}",
            admin,
            {"roles": ["student"], "classes": [target["class_id"]]},
        )
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{q(parent.user_id)}",
        admin,
        {"roles": ["parent"], "children": [students[0].user_id]},
    )

    # Activity: messages in class 5А's chat and the announcements, a lesson, a broadcast.
    chat = class_a["rooms"]["class_chat"]
    announcements = school["rooms"]["announcements"]
    send(hs, teacher, chat, "Домашнее задание на завтра")
    send(hs, students[0], chat, "Спасибо!")
    send(hs, students[1], chat, "Понял")
    send(hs, admin, announcements, "Собрание в пятницу")
    lesson = hs.request(
        "POST", f"{API}/rooms/{q(chat)}/lessons", {"title": "Дроби"}, teacher.access_token
    )
    service = tokens.sign_service_token(SECRET, "sfu")
    t0 = lesson["started_at"]
    hs.request(
        "POST",
        f"{API}/internal/attendance",
        {
            "events": [
                {
                    "kind": "join",
                    "room_id": chat,
                    "user_id": u.user_id,
                    "session_id": s,
                    "ts": t0 + 1,
                }
                for u, s in ((teacher, "t"), (students[0], "a"), (students[1], "b"))
            ]
        },
        service,
    )
    ended = hs.request(
        "POST", f"{API}/rooms/{q(chat)}/lessons/{lesson['lesson_id']}/end", {}, teacher.access_token
    )
    minutes = (ended["ended_at"] - ended["started_at"]) // 60_000
    broadcast = api(
        hs,
        "POST",
        f"/rooms/{q(chat)}/broadcasts",
        admin,
        {"title": "Линейка", "speakers": [teacher.user_id]},
    )
    for _ in range(2):
        api(
            hs,
            "POST",
            f"/rooms/{q(chat)}/broadcasts/{broadcast['broadcast_id']}/viewer_links",
            admin,
            {},
        )
    # Who has made a request with their token: the teacher, two students, the admin.

    # Counted independently: what members of the rooms read.
    in_chat, chat_senders = count_messages(hs, teacher, chat)
    in_ann, ann_senders = count_messages(hs, admin, announcements)
    expected = {
        "teachers": 1,
        "teachers_registered": 1,
        "teachers_signed_in": 1,
        "students": 4,
        "students_registered": 4,
        "students_signed_in": 2,
        "parents": 1,
        "parents_registered": 1,
        "parents_signed_in": 0,
        "classes": 2,
        "active_classes": 1,
        "messages": in_chat + in_ann,
        "senders": len(chat_senders | ann_senders),
        "lessons": 1,
        "lesson_minutes": minutes,
        "lesson_attendees": 3,
        "broadcasts": 1,
        # Viewer links made: the public one a public broadcast gets, and two more.
        "viewers": int("viewer_link" in broadcast) + 2,
    }
    assert in_chat + in_ann >= 4

    def figures_now() -> dict[str, Any] | None:
        report: dict[str, Any] = api(hs, "GET", f"/units/{m}/statistics", coord)
        totals = report["totals"]
        # user_ips is written a few seconds late: wait until the sign-ins are in.
        if totals["students_signed_in"] < 2 or totals["teachers_signed_in"] < 1:
            return None
        return report

    report = wait_for(figures_now, "sign-ins in the statistics")
    today = datetime.datetime.now(MSK).date().isoformat()
    assert report["unit"] == {"unit_id": m, "kind": "municipality", "name": "Район"}
    assert report["to"] == today and report["days"] == 30
    assert {k: report["totals"][k] for k in expected} == expected
    assert report["totals"]["schools"] == 1
    assert report["totals"]["students_signed_in_share"] == 50.0
    assert report["totals"]["average_attendance"] == 3.0
    # The school is a day old: its messages a week are today's × 7, not averaged over
    # the 30 days of the period it did not exist in (nor over days still to come).
    week = round(expected["messages"] * 7.0, 1)
    assert report["totals"]["messages_per_week"] == week
    ahead = (datetime.datetime.now(MSK).date() + datetime.timedelta(6)).isoformat()
    to_come = api(hs, "GET", f"/units/{m}/statistics?from={today}&to={ahead}", coord)
    assert (to_come["days"], to_come["totals"]["messages_per_week"]) == (7, week)
    [row] = report["schools"]
    assert row["school_id"] == sid and row["name"] == "Школа № 7"
    assert row["messages_per_week"] == week
    assert {k: row[k] for k in expected} == expected
    assert report["track"][-1]["day"] == today
    assert report["track"][-1]["messages"] == expected["messages"]
    # The region above sees the same school; the school's administrator sees it too.
    by_region = api(hs, "GET", f"/units/{region['unit_id']}/statistics", operator)
    assert {k: by_region["totals"][k] for k in expected} == expected
    by_admin = api(hs, "GET", f"/schools/{sid}/statistics", admin)
    assert {k: by_admin["totals"][k] for k in expected} == expected
    # Nobody else: another municipality's coordinator, a teacher, a student.
    assert api_error(hs, "GET", f"/units/{m}/statistics", other_coord).status == 403
    assert api_error(hs, "GET", f"/schools/{sid}/statistics", other_coord).status == 403
    assert api_error(hs, "GET", f"/schools/{sid}/statistics", teacher).status == 403
    assert api_error(hs, "GET", f"/units/{m}/statistics.xlsx", students[0]).status == 403
    assert api(hs, "GET", f"/units/{o}/statistics", other_coord)["totals"]["students"] == 0
    bad = api_error(hs, "GET", f"/units/{m}/statistics?from=2026-12-09&to=2026-12-01", coord)
    assert bad.status == 400 and bad.body["errcode"] == "M_INVALID_PARAM"

    # The workbook, read back.
    raw = download(hs, f"/units/{m}/statistics.xlsx", coord)
    book = openpyxl.load_workbook(io.BytesIO(raw))
    assert book.sheetnames == ["Общая статистика", "Школы", "Трэк активности"]
    summary = {r[0]: r[1] for r in book["Общая статистика"].iter_rows(min_row=3, values_only=True)}
    assert summary[header("students_signed_in")] == 2
    assert summary[header("messages")] == expected["messages"]
    schools_sheet = list(book["Школы"].iter_rows(values_only=True))
    assert schools_sheet[0] == (header("school"), *(header(n) for n in SCHOOL_COLUMNS))
    assert schools_sheet[0][1] == "Учителей по списку"
    written = dict(zip(schools_sheet[0], schools_sheet[1], strict=True))
    assert written[header("school")] == "Школа № 7"
    assert {k: written[header(k)] for k in expected} == expected
    track_sheet = list(book["Трэк активности"].iter_rows(values_only=True))
    assert track_sheet[0] == (header("day"), *(header(n) for n in TRACK_COLUMNS))
    last = dict(zip(track_sheet[0], track_sheet[-1], strict=True))
    assert last[header("day")] == today
    assert last[header("messages")] == expected["messages"]
    assert last[header("lessons")] == 1
    with zipfile.ZipFile(io.BytesIO(raw)) as parts:
        charts = [n for n in parts.namelist() if n.startswith("xl/charts/chart")]
        xml = " ".join(parts.read(n).decode() for n in charts)
    assert len(charts) == 2
    assert "<lineChart>" in xml and "<barChart>" in xml
    school_book = openpyxl.load_workbook(
        io.BytesIO(download(hs, f"/schools/{sid}/statistics.xlsx", admin))
    )
    assert len(school_book.sheetnames) == 3

    # -- daily rows: move the day's activity to yesterday, restart: the job writes it ----
    rooms = list(school["rooms"].values()) + [r for c in classes for r in c["rooms"].values()]
    marks = ",".join("?" * len(rooms))
    hs.sql(
        f"UPDATE events SET origin_server_ts = origin_server_ts - ? WHERE room_id IN ({marks})",
        (DAY, *rooms),
    )
    hs.sql(f"UPDATE parta_lessons SET started_at = started_at - {DAY}, ended_at = ended_at - {DAY}")
    hs.sql(f"UPDATE parta_room_sessions SET joined_at = joined_at - {DAY}")
    hs.sql(f"UPDATE parta_broadcasts SET created_at = created_at - {DAY}")
    hs.sql(f"UPDATE parta_stats_seen SET first_seen_ts = first_seen_ts - {DAY}")
    hs.sql(f"UPDATE parta_schools SET created_ts = created_ts - {2 * DAY}")
    yesterday = (datetime.datetime.now(MSK).date() - datetime.timedelta(1)).isoformat()
    period = f"from={yesterday}&to={yesterday}"
    hs.restart()

    def yesterdays_row() -> dict[str, Any] | None:
        report: dict[str, Any] = api(hs, "GET", f"/units/{m}/statistics?{period}", coord)
        return report if report["track"] else None

    snapshot = wait_for(yesterdays_row, "yesterday's row from the job after a restart")
    assert {k: snapshot["totals"][k] for k in expected} == expected
    assert snapshot["totals"]["messages_per_week"] == week  # one day: × 7
    # The default period: the school's three days (created two days ago), today's none.
    three = api(hs, "GET", f"/units/{m}/statistics", coord)
    assert len(three["track"]) == 3, three["track"]
    assert three["totals"]["messages_per_week"] == round(expected["messages"] * 7 / 3, 1)
    assert snapshot["track"][0]["day"] == yesterday
    # Take the evidence away from Synapse's tables, restart again: the row stays.
    hs.sql(
        f"UPDATE events SET origin_server_ts = origin_server_ts - ? WHERE room_id IN ({marks})",
        (10 * DAY, *rooms),
    )
    hs.restart()
    again = api(hs, "GET", f"/units/{m}/statistics?{period}", coord)
    assert {k: again["totals"][k] for k in expected} == expected
    assert (
        api(hs, "GET", f"/units/{m}/statistics?from={today}&to={today}", coord)["totals"][
            "messages"
        ]
        == 0
    )


def download(hs: RunningHomeserver, path: str, user: User) -> bytes:
    import urllib.request

    req = urllib.request.Request(f"{hs.base_url}{API}{path}")
    req.add_header("Authorization", f"Bearer {user.access_token}")
    with urllib.request.urlopen(req, timeout=60) as answer:
        assert answer.headers["Content-Type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        data: bytes = answer.read()
    return data


def test_names_people_typed_are_stored_as_text_in_the_workbook() -> None:
    """A school named with a control character (the API fuzzer's) answered 500, and one
    starting with ``=`` would have been a formula in the region's file."""
    from synapse_module.statistics.workbook import _append

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    _append(sheet, ["Школа\x01 № 1", '=HYPERLINK("http://evil.example")', 5])
    out = io.BytesIO()
    book.save(out)
    read = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    assert read is not None
    name, formula, number = (c for c in read[1])
    assert name.value == "Школа № 1"
    assert formula.value == '=HYPERLINK("http://evil.example")' and formula.data_type == "s"
    assert number.value == 5
