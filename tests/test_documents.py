"""Documents against the real Synapse: posting rules, type checks on the bytes, listing."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parta_common import events
from tests.content_school import (
    EXE,
    PDF,
    PNG,
    ClassRoom,
    api,
    make_school_class,
    matrix,
    q,
    room_events,
    send,
    upload,
)
from tests.harness import RunningHomeserver, User, running_homeserver


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> ClassRoom:
    """One school and class for this file's tests (building one takes seconds)."""
    return make_school_class(synapse, students=3)


MIB = 1024 * 1024


def document_message(
    url: str,
    title: str,
    size: int,
    mimetype: str = "application/pdf",
    msgtype: str = "m.file",
    **block: Any,
) -> dict[str, Any]:
    return {
        "msgtype": msgtype,
        "body": f"{title}.pdf",
        "url": url,
        "info": {"size": size, "mimetype": mimetype},
        events.DOCUMENT: {"title": title, **block},
    }


async def post_document(
    synapse: RunningHomeserver,
    user: User,
    room_id: str,
    title: str,
    data: bytes = PDF,
    mimetype: str = "application/pdf",
    **block: Any,
) -> tuple[int, Any]:
    status, uploaded = await upload(synapse, user, data, mimetype)
    assert status == 200, uploaded
    return await send(
        synapse,
        user,
        room_id,
        "m.room.message",
        document_message(uploaded["content_uri"], title, len(data), mimetype, **block),
    )


async def listing(
    synapse: RunningHomeserver, user: User, room_id: str, **params: str
) -> dict[str, Any]:
    status, body = await api(
        synapse, user, "GET", "/documents", params={"room_id": room_id, **params}
    )
    assert status == 200, body
    result: dict[str, Any] = body
    return result


async def wait_listed(
    synapse: RunningHomeserver, user: User, room_id: str, count: int, **params: str
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len((await listing(synapse, user, room_id, limit="200", **params))["documents"]) < count:
        assert loop.time() < deadline, "documents were not indexed in time"
        await asyncio.sleep(0.1)


async def test_school_documents_are_listed_filtered_sorted_and_paginated(
    synapse: RunningHomeserver,
    school: ClassRoom,
) -> None:
    # The school-wide documents room: administrators post there, everyone reads.
    room = school.school_rooms["documents"]
    plan = [
        ("Расписание уроков", "расписание", ["2026"], PDF, "application/pdf"),
        (
            "Контрольная по алгебре",
            "алгебра, 7 класс",
            ["математика", "2026"],
            PDF,
            "application/pdf",
        ),
        ("Фото с экскурсии", "музей", ["экскурсия"], PNG, "image/png"),
        ("Бланк заявления", "для родителей", ["2026"], PDF + b" " * 500, "application/pdf"),
    ]
    for title, description, tags, data, mimetype in plan:
        status, sent = await post_document(
            synapse, school.admin, room, title, data, mimetype, description=description, tags=tags
        )
        assert status == 200, sent
    await wait_listed(synapse, school.students[0], room, 4)

    newest_first = await listing(synapse, school.students[0], room)
    assert [d["title"] for d in newest_first["documents"]] == [p[0] for p in reversed(plan)]
    first = newest_first["documents"][0]
    assert first["kind"] == "document"
    assert first["sender"] == school.admin.user_id
    assert first["tags"] == ["2026"]
    assert first["url"].startswith("mxc://")

    by_title = await listing(synapse, school.students[0], room, sort="title")
    assert [d["title"] for d in by_title["documents"]] == sorted(p[0] for p in plan)
    by_size = await listing(synapse, school.students[0], room, sort="size", dir="desc")
    assert by_size["documents"][0]["title"] == "Бланк заявления"

    images = await listing(synapse, school.students[0], room, kind="image")
    assert [d["title"] for d in images["documents"]] == ["Фото с экскурсии"]
    tagged = await listing(synapse, school.students[0], room, tag="2026", sort="title")
    assert [d["title"] for d in tagged["documents"]] == [
        "Бланк заявления",
        "Контрольная по алгебре",
        "Расписание уроков",
    ]
    searched = await listing(synapse, school.students[0], room, q="АЛГЕБРА")
    assert [d["title"] for d in searched["documents"]] == ["Контрольная по алгебре"]
    by_author = await listing(synapse, school.students[0], room, author=school.teacher.user_id)
    assert by_author["documents"] == []
    since = newest_first["documents"][1]["ts"]
    recent = await listing(synapse, school.students[0], room, since=str(since))
    assert len(recent["documents"]) >= 2

    # Pagination: pages of one, in order, nothing twice, a last page without next_batch.
    seen: list[str] = []
    token: str | None = None
    while True:
        params = {"limit": "1", "sort": "title"}
        if token:
            params["from"] = token
        page = await listing(synapse, school.students[0], room, **params)
        seen += [d["title"] for d in page["documents"]]
        token = page["next_batch"]
        if token is None:
            break
    assert seen == sorted(p[0] for p in plan)

    # The whole school, or one class: the rooms the caller belongs in.
    status, body = await api(
        synapse,
        school.students[0],
        "GET",
        "/documents",
        params={"school_id": school.school_id, "tag": "экскурсия"},
    )
    assert status == 200, body
    assert [d["title"] for d in body["documents"]] == ["Фото с экскурсии"]
    status, body = await api(
        synapse,
        school.students[0],
        "GET",
        "/documents",
        params={"school_id": school.school_id, "class_id": school.class_id, "tag": "экскурсия"},
    )
    assert status == 200, body
    assert body["documents"] == []

    outsider = synapse.register("outsider")
    status, body = await api(
        synapse, outsider, "GET", "/documents", params={"school_id": school.school_id}
    )
    assert status == 403, body
    status, body = await api(synapse, outsider, "GET", "/documents", params={"room_id": room})
    assert status == 403, body
    status, body = await api(
        synapse, school.teacher, "GET", "/documents", params={"room_id": room, "sort": "colour"}
    )
    assert status == 400, body
    assert body["errcode"] == "M_INVALID_PARAM"


async def test_students_post_documents_only_while_handin_is_open(
    synapse: RunningHomeserver,
    school: ClassRoom,
) -> None:
    student = school.students[0]
    status, body = await post_document(synapse, student, school.room_id, "Домашняя работа")
    assert status == 403, body
    assert "hand-in" in body["error"]
    assert "сдачу работ" in body["error"]
    # Only staff open hand-in.
    path = f"/rooms/{q(school.room_id)}/handin"
    status, body = await api(synapse, student, "PUT", path, {"open": True})
    assert status == 403, body
    status, body = await api(synapse, school.teacher, "PUT", path, {"open": True})
    assert status == 200, body
    status, body = await api(synapse, student, "GET", path)
    assert status == 200, body
    assert body["open"] is True
    status, body = await post_document(
        synapse, student, school.room_id, "Домашняя работа", section="homework"
    )
    assert status == 200, body
    await wait_listed(synapse, school.teacher, school.room_id, 1, author=student.user_id)
    status, body = await api(synapse, school.teacher, "PUT", path, {"open": False})
    assert status == 200, body
    status, body = await post_document(synapse, student, school.room_id, "Опоздал")
    assert status == 403, body


async def test_malformed_document_is_refused_and_nothing_is_stored(
    synapse: RunningHomeserver,
    school: ClassRoom,
) -> None:
    status, uploaded = await upload(synapse, school.teacher, PDF, "application/pdf")
    assert status == 200, uploaded
    before = len(await room_events(synapse, school.teacher, school.room_id))
    cases = [
        (document_message(uploaded["content_uri"], "", len(PDF)), "title"),
        (document_message(uploaded["content_uri"], "Т", len(PDF), tags="один"), "tags"),
        (document_message("https://example.org/x.pdf", "Т", len(PDF)), "url"),
        (
            {**document_message(uploaded["content_uri"], "Т", len(PDF)), "msgtype": "m.text"},
            "msgtype",
        ),
    ]
    for content, field in cases:
        status, body = await send(
            synapse, school.teacher, school.room_id, "m.room.message", content
        )
        assert status == 400, body
        assert body["errcode"] == "M_BAD_JSON"
        assert field in body["error"]
        assert "Неверное событие" in body["error"]
        assert "Malformed" in body["error"]
    assert len(await room_events(synapse, school.teacher, school.room_id)) == before
    # Ordinary messages are untouched.
    status, body = await send(
        synapse,
        school.teacher,
        school.room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": "Привет"},
    )
    assert status == 200, body


async def test_types_are_checked_on_the_bytes(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    # An executable is refused at upload, whatever it claims to be.
    status, body = await upload(synapse, school.teacher, EXE, "application/pdf", "homework.pdf")
    assert status == 415, body
    assert body["errcode"] == "M_FORBIDDEN"
    assert "Windows executable" in body["error"]
    assert "Такие файлы загружать нельзя" in body["error"]
    status, body = await upload(synapse, school.teacher, b"#!/bin/sh\nrm -rf /\n", "text/plain")
    assert status == 415, body
    # An image posted as a PDF document: the bytes say otherwise.
    status, body = await post_document(
        synapse, school.teacher, school.room_id, "Ведомость", PNG, "image/png"
    )
    assert status == 200, body
    status, uploaded = await upload(synapse, school.teacher, PNG, "application/pdf")
    assert status == 200, uploaded
    status, body = await send(
        synapse,
        school.teacher,
        school.room_id,
        "m.room.message",
        document_message(uploaded["content_uri"], "Ведомость", len(PNG), "application/pdf"),
    )
    assert status == 400, body
    assert "image/png" in body["error"]
    assert "application/pdf" in body["error"]


async def test_teacher_posts_in_class_chat_and_a_student_downloads(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    handout = PDF + "Задание на каникулы".encode()
    status, sent = await post_document(
        synapse, school.teacher, school.room_id, "Задание на каникулы", handout, tags=["каникулы"]
    )
    assert status == 200, sent
    student = school.students[1]
    await wait_listed(synapse, student, school.room_id, 1, tag="каникулы")
    status, body = await api(
        synapse,
        student,
        "GET",
        "/documents",
        params={"school_id": school.school_id, "class_id": school.class_id, "tag": "каникулы"},
    )
    assert status == 200, body
    [document] = body["documents"]
    assert document["event_id"] == sent["event_id"]
    assert document["size"] == len(handout)
    server, media_id = document["url"][len("mxc://") :].split("/")
    status, data = await matrix(
        synapse, student, "GET", f"/_matrix/client/v1/media/download/{server}/{media_id}"
    )
    assert status == 200
    assert data == handout


SMALL_LIMITS = {
    "content": {
        "staff_uploads": {"document_mib": 3, "video_mib": 4, "image_mib": 2},
        "student_uploads": {"document_mib": 1, "video_mib": 2, "image_mib": 1},
    }
}


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    """A homeserver with small limits, so oversize files stay a few MiB."""
    directory: Path = tmp_path_factory.mktemp("small-limits")
    with running_homeserver(directory, module_config=SMALL_LIMITS) as running:
        yield running


async def _staff_known(synapse: RunningHomeserver, school: ClassRoom) -> None:
    """The upload role is learnt from power levels once they are indexed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        status, body = await api(synapse, school.teacher, "GET", "/media/limits")
        assert status == 200, body
        if body["limits"] == "staff":
            return
        assert loop.time() < deadline
        await asyncio.sleep(0.1)


async def test_upload_limits_per_role_and_kind(small_limits: RunningHomeserver) -> None:
    synapse = small_limits
    school = make_school_class(synapse, students=1)
    student = school.students[0]
    await _staff_known(synapse, school)
    # /media/config advertises each person's own limit.
    for user, expected in [(student, 2 * MIB), (school.teacher, 4 * MIB)]:
        status, config = await matrix(synapse, user, "GET", "/_matrix/client/v1/media/config")
        assert status == 200, config
        assert config["m.upload.size"] == expected
    status, config = await matrix(synapse, student, "GET", "/_matrix/client/v1/media/config")
    assert config["org.parta.upload_limits"] == {
        "document": 1 * MIB,
        "video": 2 * MIB,
        "image": 1 * MIB,
    }
    big_pdf = PDF + b"0" * (int(2.5 * MIB))
    # Over the student's largest limit: 413 before the bytes are stored.
    status, body = await upload(synapse, student, big_pdf, "application/pdf")
    assert status == 413, body
    assert body["errcode"] == "M_TOO_LARGE"
    # A teacher may upload it.
    status, body = await upload(synapse, school.teacher, big_pdf, "application/pdf")
    assert status == 200, body
    # Over every role's limit for images: 413 with the kind named.
    big_png = PNG + b"\x00" * int(2.5 * MIB)
    status, body = await upload(synapse, school.teacher, big_png, "image/png")
    assert status == 413, body
    assert body["errcode"] == "M_TOO_LARGE"
    assert "image" in body["error"]
    assert "изображение" in body["error"]
    # Over the global maximum: Synapse's own 413.
    status, body = await upload(synapse, school.teacher, PDF + b"0" * (5 * MIB), "application/pdf")
    assert status == 413, body
    # A 1.5 MiB PDF: a student may upload it (under 2 MiB) but not post it as a document
    # (students' documents are at most 1 MiB).
    status, body = await api(
        synapse, school.teacher, "PUT", f"/rooms/{q(school.room_id)}/handin", {"open": True}
    )
    assert status == 200, body
    status, body = await post_document(
        synapse, student, school.room_id, "Реферат", PDF + b"0" * int(1.5 * MIB)
    )
    assert status == 413, body
    assert "1 MiB" in body["error"]
