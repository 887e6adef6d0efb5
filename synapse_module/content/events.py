"""What content sends into rooms: an article's message, a poll's start event."""

import html as html_lib
from typing import TYPE_CHECKING, Any

from parta_common import events

from .sanitize import clean_html, text_of

if TYPE_CHECKING:
    pass


def article_content(
    title: str, topic: str, cover: str | None, html: str, article_id: str
) -> dict[str, Any]:
    """The event content of an article: readable as a formatted message in any client."""
    safe = clean_html(html)
    heading = f"<h2>{html_lib.escape(title)}</h2>"
    cover_html = (
        f'<p><img src="{html_lib.escape(cover)}" alt="{html_lib.escape(title)}"></p>'
        if cover
        else ""
    )
    block: dict[str, Any] = {"title": title, "article_id": article_id}
    if topic:
        block["topic"] = topic
    if cover:
        block["cover"] = cover
    text = text_of(safe)
    return {
        "msgtype": "m.text",
        "body": f"{title}\n\n{text}" if text else title,
        "format": "org.matrix.custom.html",
        "formatted_body": heading + cover_html + safe,
        events.ARTICLE: block,
    }


def poll_start_content(poll: dict[str, Any]) -> dict[str, Any]:
    question = poll["question"]
    lines = [question] + [f"{i}. {a['text']}" for i, a in enumerate(poll["answers"], 1)]
    return {
        events.POLL_START: {
            "question": {
                events.TEXT_FALLBACK: question,
                "body": question,
                "msgtype": "m.text",
            },
            "kind": "org.matrix.msc3381.poll.disclosed"
            if poll["disclosed"]
            else "org.matrix.msc3381.poll.undisclosed",
            "max_selections": poll["max_selections"],
            "answers": [{"id": a["id"], events.TEXT_FALLBACK: a["text"]} for a in poll["answers"]],
        },
        events.TEXT_FALLBACK: "\n".join(lines),
        "org.parta.poll": {
            "poll_id": poll["poll_id"],
            "quiz": poll["quiz"],
            "anonymous": poll["anonymous"],
        },
    }
