"""Export of a person's data (#12 item 2): everything Parta and Synapse hold about them in
the school, as a zip with data.json, a readable Russian index.html and the files they
uploaded — and nothing of anyone else. Against a real Synapse with the module."""

import datetime as dt
import io
import json
import secrets
import time
import urllib.parse
import zipfile
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_module.clock import CLOCK_FILE_VARIABLE
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.privacy_people import MODULE_CONFIG, Seeded, raw, seed
from tests.roster_helpers import API, api

MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The time the module's rules read (quiet hours): the real time until a test sets it."""
    return tmp_path_factory.mktemp("clock") / "now"


def set_clock(path: Path, when: dt.datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(when.timestamp()), encoding="utf-8")
    tmp.replace(path)


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory, clock_file: Path) -> Iterator[RunningHomeserver]:
    set_clock(clock_file, dt.datetime.now(dt.UTC))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CLOCK_FILE_VARIABLE, str(clock_file))
        with running_homeserver(tmp_path_factory.mktemp("export"), MODULE_CONFIG) as running:
            env.delenv(CLOCK_FILE_VARIABLE)
            yield running


@pytest.fixture(scope="module")
def seeded(hs: RunningHomeserver) -> Seeded:
    return seed(hs)


def export(hs: RunningHomeserver, seeded: Seeded, user: User, subject: User) -> tuple[int, bytes]:
    path = f"{API}/schools/{seeded.school.school_id}/members/{subject.user_id}/export"
    status, headers, body = raw(hs, "POST", path, user.access_token)
    if status == 200:
        assert headers["Content-Type"] == "application/zip"
    return status, body


def wait_indexed(hs: RunningHomeserver, seeded: Seeded) -> None:
    """Votes are indexed as their events arrive: wait until both are counted."""
    deadline = time.monotonic() + 30
    while True:
        results = api(hs, "GET", f"/polls/{seeded.poll_id}", seeded.school.teacher)
        if results.get("voters") == 2 or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def test_the_parent_gets_a_readable_archive_of_everything_about_the_child(
    hs: RunningHomeserver, seeded: Seeded
) -> None:
    wait_indexed(hs, seeded)
    school, subject = seeded.school, seeded.subject
    status, body = export(hs, seeded, school.parent, subject)
    assert status == 200, body[:500]
    archive = zipfile.ZipFile(io.BytesIO(body))
    names = set(archive.namelist())
    assert {"data.json", "index.html"} <= names
    data: dict[str, Any] = json.loads(archive.read("data.json"))
    assert data["user_id"] == subject.user_id
    assert data["made_by"] == school.parent.user_id
    assert data["profile"]["user_id"] == subject.user_id
    assert data["roles"] == [{"role": "student"}]
    assert [c["class_id"] for c in data["classes"]] == [school.class_a["class_id"]]
    assert data["guardians"] == [
        {"parent_user_id": school.parent.user_id, "child_user_id": subject.user_id}
    ]
    consent = data["consents"]["video_lessons"]
    assert consent["granted"] is True and consent["document_number"] == "№ 12"

    bodies = [m["content"].get("body") for m in data["messages"]]
    for text in seeded.messages:
        assert text in bodies
    assert "homework-0.pdf" in bodies
    assert all(m["room_id"] in school_rooms(hs, seeded) for m in data["messages"])

    # The file itself, byte for byte.
    [upload] = data["files"]
    assert upload["media_id"] == seeded.media_ids[0] and upload["in_archive"] is True
    assert archive.read(f"media/{seeded.media_ids[0]}") == seeded.file_bytes

    [session] = data["attendance"]
    assert session["room_id"] == seeded.room_id and session["left_at"] > session["joined_at"]
    [answer] = data["poll_answers"]
    assert answer["poll_id"] == seeded.poll_id and answer["quiz"] is True
    assert answer["score"] == 1

    actions = {e["action"] for e in data["audit"]}
    assert {"consent.put", "privacy.export"} <= actions
    assert all(subject.user_id in (e["actor"], e["target"]) for e in data["audit"])

    # Nothing of the classmate: not their messages, file, answers, attendance.
    text = archive.read("data.json").decode()
    assert seeded.classmate.user_id not in text
    assert "Чужое сообщение" not in text
    assert len([n for n in names if n.startswith("media/")]) == 1

    # The index reads in Russian, every section with its count.
    page = archive.read("index.html").decode()
    assert '<html lang="ru">' in page
    for heading in (
        "Профиль",
        "Роли в школе",
        "Согласия",
        "Сообщения в комнатах школы",
        "Загруженные файлы",
        "Посещение уроков",
        "Ответы в опросах и баллы за тесты",
        "Записи журнала действий о человеке",
    ):
        assert f"<h2>{heading}</h2>" in page, heading
    assert "Сообщение ученика № 0" in page


def school_rooms(hs: RunningHomeserver, seeded: Seeded) -> set[str]:
    rooms = set(seeded.school.class_a["rooms"].values())
    rooms.update(seeded.school.class_b["rooms"].values())
    rooms.update(
        api(hs, "GET", f"/schools/{seeded.school.school_id}", seeded.school.admin)["rooms"].values()
    )
    return rooms


def test_who_may_export_and_that_every_export_is_audited(
    hs: RunningHomeserver, seeded: Seeded
) -> None:
    school, subject = seeded.school, seeded.subject
    for user in (school.admin, subject):
        status, _ = export(hs, seeded, user, subject)
        assert status == 200, user.user_id
    for user in (seeded.classmate, school.teacher, school.other_student):
        status, body = export(hs, seeded, user, subject)
        assert status == 403, (user.user_id, body)
        refusal = json.loads(body)
        assert refusal["errcode"] == "M_FORBIDDEN"
        assert refusal["org.parta.message"]["id"] == "privacy.export_not_allowed"
    # The parent has no child but the first student.
    status, _ = export(hs, seeded, school.parent, seeded.classmate)
    assert status == 403
    audit = api(hs, "GET", f"/schools/{school.school_id}/audit", school.admin)["entries"]
    exports = [
        e for e in audit if e["action"] == "privacy.export" and e["target"] == subject.user_id
    ]
    assert {e["actor"] for e in exports} >= {
        school.parent.user_id,
        school.admin.user_id,
        subject.user_id,
    }


def test_reads_of_personal_data_are_audited(hs: RunningHomeserver, seeded: Seeded) -> None:
    """#12 item 4: an administrator's member list, a teacher's quiz scores by person."""
    school = seeded.school
    sid = school.school_id
    api(hs, "GET", f"/schools/{sid}/members?role=student", school.admin)
    api(hs, "GET", f"/polls/{seeded.poll_id}/scores", school.teacher)
    entries = api(hs, "GET", f"/schools/{sid}/audit", school.admin)["entries"]
    members = [e for e in entries if e["action"] == "members.read"]
    assert members and members[-1]["actor"] == school.admin.user_id
    assert members[-1]["details"] == {"role": "student"}
    scores = [e for e in entries if e["action"] == "quiz_scores.read"]
    assert [(e["actor"], e["target"]) for e in scores] == [(school.teacher.user_id, seeded.poll_id)]


def test_a_message_held_by_quiet_hours_is_in_the_teachers_export(
    hs: RunningHomeserver, seeded: Seeded, clock_file: Path
) -> None:
    """A teacher's evening message waits for the morning in ``parta_held_messages``, not in
    the room: the export lists it (room, when held, when it goes, type, content)."""
    school = seeded.school
    parents = school.class_a["rooms"]["parents_chat"]
    policy = {"quiet_hours": {"teacher": {"from": "21:00", "until": "08:00", "weekends": True}}}
    api(hs, "PATCH", f"/schools/{school.school_id}", school.admin, {"policy": policy})
    evening = dt.datetime(2026, 12, 7, 22, 0, tzinfo=MOSCOW)  # a Monday, 22:00 in Moscow
    set_clock(clock_file, evening)
    text = "Родительское собрание в четверг в 19:00"
    before = int(time.time() * 1000)
    try:
        room = urllib.parse.quote(parents, safe="")
        path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{secrets.token_hex(8)}"
        body = json.dumps({"msgtype": "m.text", "body": text}).encode()
        status, _, answer = raw(hs, "PUT", path, school.teacher.access_token, body)
        assert status == 403 and b"quiet_held" in answer, answer
    finally:
        set_clock(clock_file, dt.datetime.now(dt.UTC))
        api(
            hs,
            "PATCH",
            f"/schools/{school.school_id}",
            school.admin,
            {"policy": {"quiet_hours": {}}},
        )

    status, zipped = export(hs, seeded, school.teacher, school.teacher)
    assert status == 200, zipped[:500]
    archive = zipfile.ZipFile(io.BytesIO(zipped))
    data = json.loads(archive.read("data.json"))
    [held] = data["held_messages"]
    assert held["room_id"] == parents and held["event_type"] == "m.room.message"
    assert held["content"] == {"msgtype": "m.text", "body": text}
    # When it was held: the real time (rows record it; the clock decides what is quiet).
    assert before <= held["held_at"] <= int(time.time() * 1000)
    morning = dt.datetime(2026, 12, 8, 8, 0, tzinfo=MOSCOW)
    assert held["release_at"] == int(morning.timestamp() * 1000)
    assert held["sent_at"] is None and held["event_id"] is None  # still waiting
    page = archive.read("index.html").decode()
    assert "<h2>Сообщения, задержанные тихими часами" in page and text in page
    # Not in the student's export: held messages are their sender's.
    status, zipped = export(hs, seeded, seeded.subject, seeded.subject)
    assert json.loads(zipfile.ZipFile(io.BytesIO(zipped)).read("data.json"))["held_messages"] == []


def test_the_statistics_first_seen_date_is_in_the_export(
    hs: RunningHomeserver, seeded: Seeded
) -> None:
    """The statistics' journal of first sign-ins (``parta_stats_seen``, filled from
    Synapse's ``user_ips`` by the statistics job: tests/test_statistics.py) is the
    person's data too."""
    subject = seeded.subject
    first = int(dt.datetime(2026, 9, 1, 8, 30, tzinfo=MOSCOW).timestamp() * 1000)
    hs.sql("DELETE FROM parta_stats_seen WHERE user_id = ?", (subject.user_id,))
    hs.sql(
        "INSERT INTO parta_stats_seen (user_id, first_seen_ts) VALUES (?, ?)",
        (subject.user_id, first),
    )
    status, zipped = export(hs, seeded, subject, subject)
    assert status == 200, zipped[:500]
    archive = zipfile.ZipFile(io.BytesIO(zipped))
    assert json.loads(archive.read("data.json"))["first_seen"] == [{"first_seen_ts": first}]
    page = archive.read("index.html").decode()
    assert "<h2>Первый вход, замеченный статистикой</h2>" in page
    assert "2026-09-01 05:30 UTC" in page


def test_a_request_to_erase_is_in_the_export(hs: RunningHomeserver, seeded: Seeded) -> None:
    """The parent's request to erase their child's data is the child's data (and the
    parent's): both exports list it, with the school's answer."""
    school, subject = seeded.school, seeded.subject
    requests = f"/schools/{school.school_id}/erasure_requests"
    made = api(hs, "POST", requests, school.parent, {"user_id": subject.user_id})
    reason = "Журнал успеваемости хранится по закону."
    api(hs, "POST", f"{requests}/{made['request_id']}/decline", school.admin, {"reason": reason})
    for whose in (subject, school.parent):
        status, zipped = export(hs, seeded, school.admin, whose)
        assert status == 200, zipped[:500]
        archive = zipfile.ZipFile(io.BytesIO(zipped))
        [row] = [
            r
            for r in json.loads(archive.read("data.json"))["erasure_requests"]
            if r["request_id"] == made["request_id"]
        ]
        assert (row["user_id"], row["requested_by"]) == (subject.user_id, school.parent.user_id)
        assert (row["status"], row["reason"]) == ("declined", reason)
        assert "<h2>Запросы на удаление данных</h2>" in archive.read("index.html").decode()
