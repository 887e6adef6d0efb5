"""File types from bytes, and the JSON schemas of Parta's event types (pure)."""

import json
from pathlib import Path

import pytest

from parta_common import schemas
from synapse_module.content.sniff import declared_matches, sniff

SAMPLES = [
    (b"%PDF-1.7\n", "document", "application/pdf", None),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image", "image/png", None),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image", "image/jpeg", None),
    (b"GIF89a\x01\x00", "image", "image/gif", None),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image", "image/webp", None),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00", "video", "video/mp4", None),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00", "video", "video/quicktime", None),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86", "video", "video/webm", None),
    (b"ID3\x04\x00", "video", "audio/mpeg", None),
    (b"PK\x03\x04\x14\x00[Content_Types].xml word/document.xml", "document",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document", None),
    (b"PK\x03\x04\x14\x00something.txt", "document", "application/zip", None),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "document", "application/msword", None),
    ("Домашнее задание".encode(), "document", "text/plain", None),
    (b"\x00\x01\x02\x03random", "document", "application/octet-stream", None),
    (b"MZ\x90\x00", "document", "application/x-msdownload", "Windows executable (.exe/.dll)"),
    (b"\x7fELF\x02\x01", "document", "application/x-executable", "Linux executable (ELF)"),
    (b"#!/bin/bash\n", "document", "text/x-script", "script (#!)"),
    (b"PK\x03\x04\x14\x00classes.dex", "document", "application/vnd.android.package-archive",
     "Android app"),
    (b'<?xml version="1.0"?><svg onload="x()">', "image", "image/svg+xml",
     "SVG image (may carry scripts)"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "kind", "mimetype", "forbidden"), SAMPLES)
def test_sniff(head: bytes, kind: str, mimetype: str, forbidden: str | None) -> None:
    found = sniff(head)
    assert (found.kind, found.mimetype, found.forbidden) == (kind, mimetype, forbidden)


@pytest.mark.parametrize(
    ("declared", "msgtype", "head", "ok"),
    [
        ("application/pdf", "m.file", b"%PDF-1.4", True),
        ("application/pdf", "m.file", b"\x89PNG\r\n\x1a\n", False),
        ("image/png", "m.image", b"\x89PNG\r\n\x1a\n", True),
        ("image/png", "m.image", b"%PDF-1.4", False),
        ("video/mp4", "m.video", b"\x00\x00\x00\x18ftypmp42", True),
        ("image/jpeg", "m.file", b"\x00\x00\x00\x18ftypmp42", False),
        ("application/octet-stream", "m.file", b"\x00\x01binary", True),
        ("application/pdf", "m.file", b"\x00\x01binary", False),
        ("text/plain", "m.file", "Привет".encode(), True),
    ],
)
def test_declared_type_must_match_the_bytes(
    declared: str, msgtype: str, head: bytes, ok: bool
) -> None:
    assert declared_matches(declared, msgtype, sniff(head)) is ok


def test_every_schema_loads_and_is_published() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "event-types.md").read_text()
    for name in schemas.NAMES:
        schema = schemas.schema(name)
        assert schema["$id"] == f"{schemas.BASE_URI}{name}.json"
        # The docs carry each schema verbatim.
        assert json.dumps(schema, indent=2, ensure_ascii=False) in docs, name


def test_problem_names_the_field() -> None:
    message = {
        "msgtype": "m.file",
        "body": "a.pdf",
        "url": "mxc://localhost/abc",
        "info": {"size": 3, "mimetype": "application/pdf"},
        "org.parta.document": {"title": "Т", "tags": ["a", "a"]},
    }
    problem = schemas.problem("org.parta.document.message", message)
    assert problem is not None
    assert problem.startswith("org.parta.document/tags")
    message["org.parta.document"] = {"title": "Т", "tags": ["a"]}
    assert schemas.problem("org.parta.document.message", message) is None
