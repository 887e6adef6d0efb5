"""The archive of everything Parta and Synapse hold about one person in a school.

A zip file: ``data.json`` (every section, machine-readable), ``index.html`` (the same,
readable, in Russian: the catalogue's ``privacy.export_*`` texts) and ``media/`` (the
files the person uploaded, the bytes from Synapse's media store). Building it is pure
but for reading those files; :class:`~synapse_module.privacy.api.Privacy` gathers the
data and runs :func:`archive_bytes` in a thread.
"""

import html
import io
import json
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from parta_common.catalogue import texts

from ..content.polls import score

# Sections in the order the index shows them (each a list of rows in data.json).
SECTIONS: Final = (
    "roles",
    "classes",
    "guardians",
    "consents",
    "messages",
    "files",
    "attendance",
    "poll_answers",
    "homework_handins",
    "read_confirmations",
    "article_views",
    "held_messages",
    "first_seen",
    "erasure_requests",
    "audit",
)


def media_path(media_store: str, media_id: str) -> str:
    """Where Synapse keeps a local upload (``local_content/ab/cd/rest``)."""
    return os.path.join(media_store, "local_content", media_id[0:2], media_id[2:4], media_id[4:])


def with_quiz_scores(answers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Poll answers with the quiz score once the quiz ended (its answers revealed)."""
    out = []
    for row in answers:
        row = dict(row)
        row["choices"] = _json_value(row.get("choices"))
        row["answers"] = _json_value(row.get("answers"))
        row["quiz"] = bool(row.get("quiz"))
        correct = _json_value(row.pop("correct", None))
        row["score"] = None
        if row["quiz"] and row.get("end_ts") is not None and isinstance(correct, list):
            row["correct"] = correct
            row["score"] = score(row["answers"] or [], correct)
        out.append(row)
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def document(
    user_id: str,
    school_id: str,
    actor: str,
    made_ts: int,
    profile: Mapping[str, Any],
    sections: Mapping[str, Sequence[Mapping[str, Any]] | Mapping[str, Any]],
) -> dict[str, Any]:
    """``data.json``: who, which school, made when and for whom, then every section."""
    return {
        "user_id": user_id,
        "school_id": school_id,
        "made_by": actor,
        "made_ts": made_ts,
        "profile": dict(profile),
        **{name: sections.get(name, []) for name in SECTIONS},
    }


def _when(ts: Any) -> str:
    if not isinstance(ts, int):
        return ""
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


_TIMES: Final = (
    "ts",
    "joined_at",
    "left_at",
    "origin_server_ts",
    "held_at",
    "release_at",
    "sent_at",
)


def _cell(key: str, value: Any) -> str:
    if key.endswith("_ts") or key in _TIMES:
        return html.escape(_when(value))
    if key == "content" and isinstance(value, Mapping) and isinstance(value.get("body"), str):
        return html.escape(value["body"])
    if isinstance(value, str):
        return html.escape(value)
    return html.escape(json.dumps(value, ensure_ascii=False))


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(k, row.get(k))}</td>" for k in keys) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def index_html(data: Mapping[str, Any], language: str = "ru") -> str:
    """The readable page of the archive (Russian by default)."""
    table = texts()
    words = table.get(language, table["ru"])

    def t(message_id: str, **params: object) -> str:
        return html.escape(words[f"privacy.export_{message_id}"].format(**params))

    parts = [
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">',
        f"<title>{t('title', user_id=data['user_id'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;text-align:left}"
        "</style></head><body>",
        f"<h1>{t('title', user_id=data['user_id'])}</h1>",
        f"<p>{t('intro', when=_when(data['made_ts']), actor=data['made_by'])}</p>",
        f"<h2>{t('profile')}</h2>",
        _table([data["profile"]]),
    ]
    for name in SECTIONS:
        section = data[name]
        rows = (
            [{"purpose": k, **v} for k, v in section.items()]
            if isinstance(section, Mapping)
            else list(section)
        )
        parts.append(f"<h2>{t(name)}</h2><p>{t('count', count=len(rows))}</p>")
        if rows:
            parts.append(_table(rows))
    parts.append("</body></html>")
    return "".join(parts)


def archive_bytes(
    data: Mapping[str, Any], media_store: str | None, language: str = "ru"
) -> tuple[bytes, int]:
    """The zip and how many files' bytes it holds (``media/<media_id>``); a file missing
    from the store (or no store configured) is listed with ``in_archive: false``."""
    paths: dict[str, str] = {}
    for upload in data["files"]:
        path = media_path(media_store, upload["media_id"]) if media_store else None
        upload["in_archive"] = bool(path and os.path.isfile(path))
        if path and upload["in_archive"]:
            paths[upload["media_id"]] = path
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(data, ensure_ascii=False, indent=1))
        archive.writestr("index.html", index_html(data, language))
        for media_id, path in paths.items():
            # Mostly compressed already (photos, PDFs): stored as they are.
            archive.write(path, f"media/{media_id}", zipfile.ZIP_STORED)
    return buffer.getvalue(), len(paths)
