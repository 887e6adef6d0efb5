"""Every listing's number, cursor and text parameters are bounded and typed: a wrong value
is 400 ``M_INVALID_PARAM`` naming the parameter (Russian and English), never a 500 — on
PostgreSQL as on SQLite (issue 17, item 10)."""

import base64
import json

import pytest

from parta_common import events
from tests.content_school import ClassRoom, api, make_school_class, q, send, upload
from tests.harness import RunningHomeserver
from tests.roster_helpers import api_error


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> ClassRoom:
    return make_school_class(synapse, students=1)


def cursor(value: object, key: object = "$x") -> str:
    raw = json.dumps([value, key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Numbers no 64-bit column holds, below the range, and not numbers at all.
BAD_NUMBERS = [
    str(2**63),
    str(2**64 + 5),
    "9" * 40,
    "-1",
    str(-(2**63) - 1),
    "abc",
    "1e3",
    "1.5",
    "0x10",
    "١٢",  # Arabic-Indic digits: int() takes them, a database column would not
    " 7",
    "\x00",
]
# Cursors on a number column (sort by date or size or views): out of range, or not a number.
BAD_NUMBER_CURSORS = [
    cursor(2**63),
    cursor(2**64),
    cursor(-(2**63) - 1),
    cursor("abc"),
    cursor(True),
    cursor(1.5),
    cursor(None),
    cursor(1, 7),
    cursor(1, "\x00"),
    "not-base64-!!",
    cursor(1, "x" * 5000),
]
# Cursors on a text column (sort by title or topic).
BAD_TEXT_CURSORS = [cursor(12), cursor(2**64), cursor("a\x00b"), cursor(["a"])]


def assert_bad_param(status: int, body: dict[str, object], name: str) -> None:
    assert status == 400, body
    assert body["errcode"] == "M_INVALID_PARAM"
    error = str(body["error"])
    assert name in error and "Неверный параметр" in error and "Invalid parameter" in error


async def test_documents_listing_parameters(synapse: RunningHomeserver, school: ClassRoom) -> None:
    teacher = school.teacher
    status, uploaded = await upload(synapse, teacher, b"%PDF-1.4\n%%EOF\n", "application/pdf")
    assert status == 200, uploaded
    for title in ("Первый", "Второй"):
        status, _ = await send(
            synapse,
            teacher,
            school.room_id,
            "m.room.message",
            {
                "msgtype": "m.file",
                "body": "a.pdf",
                "url": uploaded["content_uri"],
                "info": {"size": 15, "mimetype": "application/pdf"},
                events.DOCUMENT: {"title": title},
            },
        )
        assert status == 200
    base = {"room_id": school.room_id}
    for name in ("limit", "since", "until"):
        for value in BAD_NUMBERS:
            status, body = await api(
                synapse, teacher, "GET", "/documents", params={**base, name: value}
            )
            assert_bad_param(status, body, name)
    for value in ("0", "201"):
        status, body = await api(
            synapse, teacher, "GET", "/documents", params={**base, "limit": value}
        )
        assert_bad_param(status, body, "limit")
    for sort, bad_cursors in (
        ("date", BAD_NUMBER_CURSORS),
        ("size", BAD_NUMBER_CURSORS),
        ("title", BAD_TEXT_CURSORS),
    ):
        for token in bad_cursors:
            status, body = await api(
                synapse, teacher, "GET", "/documents", params={**base, "sort": sort, "from": token}
            )
            assert_bad_param(status, body, "from")
    for name in ("q", "tag", "author", "kind", "sort", "room_id"):
        for value in ("a\x00b", "x" * 1001):
            status, body = await api(
                synapse, teacher, "GET", "/documents", params={**base, name: value}
            )
            assert_bad_param(status, body, name)
    # Right values still page: one per page, twice, then no next_batch.
    status, page = await api(synapse, teacher, "GET", "/documents", params={**base, "limit": "1"})
    assert status == 200 and page["next_batch"]
    status, page = await api(
        synapse,
        teacher,
        "GET",
        "/documents",
        params={**base, "limit": "1", "from": page["next_batch"]},
    )
    assert status == 200 and len(page["documents"]) == 1 and page["next_batch"] is None


async def test_articles_and_polls_listing_parameters(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    teacher = school.teacher
    base = {"room_id": school.room_id}
    for value in BAD_NUMBERS:
        status, body = await api(
            synapse, teacher, "GET", "/articles", params={**base, "limit": value}
        )
        assert_bad_param(status, body, "limit")
        status, body = await api(
            synapse, teacher, "GET", f"/rooms/{q(school.room_id)}/polls", params={"limit": value}
        )
        assert_bad_param(status, body, "limit")
    for sort, bad_cursors in (
        ("date", BAD_NUMBER_CURSORS),
        ("views", BAD_NUMBER_CURSORS),
        ("topic", BAD_TEXT_CURSORS),
    ):
        for status_filter in ("published", "draft"):
            for token in bad_cursors:
                status, body = await api(
                    synapse,
                    teacher,
                    "GET",
                    "/articles",
                    params={**base, "sort": sort, "status": status_filter, "from": token},
                )
                assert_bad_param(status, body, "from")
    for name in ("topic", "author", "status", "dir"):
        status, body = await api(
            synapse, teacher, "GET", "/articles", params={**base, name: "a\x00"}
        )
        assert_bad_param(status, body, name)


def test_roster_listing_parameters(synapse: RunningHomeserver, school: ClassRoom) -> None:
    for path, name in (
        (f"/schools/{school.school_id}/classes?year=%00", "year"),
        (f"/schools/{school.school_id}/members?role=%00", "role"),
        (f"/schools/{school.school_id}/members?class_id=%00", "class_id"),
        (f"/schools/{school.school_id}/members?class_id=%FF", "class_id"),
    ):
        error = api_error(synapse, "GET", path, school.admin)
        assert_bad_param(error.status, error.body, name)


async def test_ids_in_paths_with_nul_are_refused(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    """PostgreSQL refuses NUL in text: an ID in the path with one is 400, not 500."""
    for path in (
        "/articles/a%00b",
        "/polls/a%00b",
        f"/schools/{school.school_id}%00",
        "/invites/a%00b",
        f"/rooms/{q(school.room_id)}%00/polls",
        f"/schools/{school.school_id}/classes/c%00",
    ):
        status, body = await api(synapse, school.admin, "GET", path)
        assert status == 400, (path, status, body)
        assert body["errcode"] == "M_INVALID_PARAM"
