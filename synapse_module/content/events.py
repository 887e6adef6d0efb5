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


def poll_notice_content(poll_event_id: str, text: str) -> dict[str, Any]:
    """A plain ``m.notice`` that repeats a poll event as text, for clients without polls.

    Clients that predate MSC3381 (nheko 0.11, older FluffyChat, bridges) drop events
    of an unknown type without a trace, so a poll or its result would be invisible
    there; this notice is what such a pupil reads (docs/clients.md). It refers to the
    poll event (``m.reference``), so Parta and clients that care can tell it is a
    companion.
    """
    return {
        "msgtype": "m.notice",
        "body": text,
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll_event_id},
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
        "body": "\n".join(lines),
        "org.parta.poll": {
            "poll_id": poll["poll_id"],
            "quiz": poll["quiz"],
            "anonymous": poll["anonymous"],
        },
    }
