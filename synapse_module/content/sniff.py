"""What a file is, from its first bytes (never from its name or declared type)."""

from typing import Final

import attrs

DOCUMENT: Final = "document"
VIDEO: Final = "video"
IMAGE: Final = "image"
KINDS: Final = (DOCUMENT, VIDEO, IMAGE)

OCTET_STREAM: Final = "application/octet-stream"

# How many bytes of a file the checks look at.
HEAD_BYTES: Final = 8192


@attrs.frozen
class Sniffed:
    """A file's kind and MIME type as its bytes say, or why it is refused."""

    kind: str
    mimetype: str
    # Set when the file must be refused: what it is, in words for people.
    forbidden: str | None = None


def _ftyp(head: bytes) -> bytes | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return head[8:12]
    return None


def sniff(head: bytes) -> Sniffed:
    """Classify a file by its first :data:`HEAD_BYTES` bytes."""
    # Executables and scripts, refused everywhere in a school.
    if head.startswith(b"MZ"):
        return Sniffed(DOCUMENT, "application/x-msdownload", "Windows executable (.exe/.dll)")
    if head.startswith(b"\x7fELF"):
        return Sniffed(DOCUMENT, "application/x-executable", "Linux executable (ELF)")
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
        b"\xca\xfe\xba\xbe",
    ):
        return Sniffed(DOCUMENT, "application/x-mach-binary", "macOS executable or Java class")
    if head.startswith(b"#!"):
        return Sniffed(DOCUMENT, "text/x-script", "script (#!)")
    if head.startswith(b"L\x00\x00\x00\x01\x14\x02\x00"):
        return Sniffed(DOCUMENT, "application/x-ms-shortcut", "Windows shortcut (.lnk)")
    # Images.
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(IMAGE, "image/png")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(IMAGE, "image/jpeg")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed(IMAGE, "image/gif")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed(IMAGE, "image/webp")
    brand = _ftyp(head)
    if brand in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
        return Sniffed(IMAGE, "image/avif" if brand == b"avif" else "image/heic")
    # Video and audio.
    if brand == b"qt  ":
        return Sniffed(VIDEO, "video/quicktime")
    if brand is not None:
        return Sniffed(VIDEO, "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed(VIDEO, "video/webm")
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return Sniffed(VIDEO, "video/x-msvideo")
    if head.startswith(b"OggS"):
        return Sniffed(VIDEO, "audio/ogg")
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return Sniffed(VIDEO, "audio/mpeg")
    # Documents.
    if head.startswith(b"%PDF-"):
        return Sniffed(DOCUMENT, "application/pdf")
    if head.startswith(b"PK\x03\x04"):
        if b"classes.dex" in head or b"AndroidManifest.xml" in head:
            return Sniffed(DOCUMENT, "application/vnd.android.package-archive", "Android app")
        if b"META-INF/MANIFEST.MF" in head:
            return Sniffed(DOCUMENT, "application/java-archive", "Java program (.jar)")
        if b"word/" in head:
            return Sniffed(
                DOCUMENT,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )
        if b"xl/" in head:
            return Sniffed(
                DOCUMENT, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            )
        if b"ppt/" in head:
            return Sniffed(
                DOCUMENT,
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            )
        if b"mimetypeapplication/vnd.oasis.opendocument" in head:
            return Sniffed(DOCUMENT, "application/vnd.oasis.opendocument")
        return Sniffed(DOCUMENT, "application/zip")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return Sniffed(DOCUMENT, "application/msword")  # also .xls, .ppt (OLE)
    if head.startswith(b"{\\rtf"):
        return Sniffed(DOCUMENT, "application/rtf")
    if head.startswith((b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c")):
        return Sniffed(DOCUMENT, "application/x-archive")
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<svg", b"<?xml")) and b"<svg" in stripped:
        return Sniffed(IMAGE, "image/svg+xml", "SVG image (may carry scripts)")
    if b"\x00" not in head:
        return Sniffed(DOCUMENT, "text/plain")
    # Unknown binary: could be anything, including an end-to-end encrypted attachment,
    # whose bytes are random by design. Allowed as an opaque document.
    return Sniffed(DOCUMENT, OCTET_STREAM)


def kind_of_mimetype(mimetype: str) -> str:
    """The kind a declared MIME type claims."""
    if mimetype.startswith("image/"):
        return IMAGE
    if mimetype.startswith(("video/", "audio/")):
        return VIDEO
    return DOCUMENT


MSGTYPE_KIND: Final = {"m.image": IMAGE, "m.video": VIDEO, "m.audio": VIDEO, "m.file": DOCUMENT}


def declared_matches(declared_mimetype: str, msgtype: str, sniffed: Sniffed) -> bool:
    """Whether what a message says about a file agrees with the file's bytes."""
    declared_kind = kind_of_mimetype(declared_mimetype)
    if msgtype in ("m.image", "m.video") and MSGTYPE_KIND[msgtype] != sniffed.kind:
        return False
    if sniffed.mimetype == OCTET_STREAM:
        # Bytes we cannot name: only fine if nothing specific was claimed.
        return declared_kind == DOCUMENT and declared_mimetype != "application/pdf"
    if declared_kind != sniffed.kind:
        return False
    return not (declared_mimetype == "application/pdf" and sniffed.mimetype != "application/pdf")
