"""Articles' HTML, cut down on the server to a safe subset (nh3 / ammonia).

The subset is the one the Matrix spec recommends for ``formatted_body`` plus tables and
headings; links may point to http(s), mailto and matrix.to; images only to ``mxc://``.
Scripts, styles, iframes, objects, forms, event handlers (``on…``) and ``javascript:``
URLs are gone, with the content of ``script``/``style`` dropped entirely.
"""

import csv
import html as html_lib
import io
import re
from collections.abc import Iterable
from typing import Any, Final

import nh3

TAGS: Final = frozenset(
    {
        "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul",
        "ol", "sup", "sub", "li", "b", "i", "u", "strong", "em", "s", "strike", "code",
        "hr", "br", "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre",
        "span", "img", "details", "summary", "figure", "figcaption",
    }
)  # fmt: skip
ATTRIBUTES: Final = {
    "font": {"data-mx-bg-color", "data-mx-color", "color"},
    "span": {"data-mx-bg-color", "data-mx-color", "data-mx-spoiler"},
    "a": {"href", "target", "name"},
    "img": {"width", "height", "alt", "title", "src"},
    "ol": {"start"},
    "code": {"class"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES: Final = frozenset({"http", "https", "mailto", "mxc"})
CLEAN_CONTENT_TAGS: Final = frozenset({"script", "style", "iframe", "object", "embed", "noscript"})


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.startswith("mxc://"):
        return None
    if tag == "a" and attribute == "href" and value.startswith("mxc://"):
        return None
    if tag == "code" and attribute == "class" and not value.startswith("language-"):
        return None
    return value


def clean_html(html: str) -> str:
    """``html`` reduced to the safe subset."""
    return nh3.clean(
        html,
        tags=set(TAGS),
        attributes={k: set(v) for k, v in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        clean_content_tags=set(CLEAN_CONTENT_TAGS),
        attribute_filter=_attribute_filter,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def text_of(html: str) -> str:
    """Plain text of some HTML (for ``body`` fallbacks and search)."""
    stripped = nh3.clean(html, tags=set(), clean_content_tags=set(CLEAN_CONTENT_TAGS))
    return " ".join(html_lib.unescape(stripped).split())


# What a spreadsheet reads as a formula at the start of a cell (OWASP "CSV injection").
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_MXC: Final = re.compile(r"^mxc://[A-Za-z0-9.:\-\[\]]+/[A-Za-z0-9_\-]+$")


# A Matrix user ID (the spec's localpart characters): no parentheses, quotes or spaces,
# so nothing a spreadsheet could call; it stays as it is.
_USER_ID: Final = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.:\-\[\]]+$")


def csv_cell(value: object) -> object:
    """A cell for an exported CSV: text that a spreadsheet would run as a formula gets a
    leading apostrophe (numbers and Matrix user IDs stay as they are)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _USER_ID.match(value):
        return "'" + value
    return value


class SafeCsvWriter:
    """``csv.writer`` whose every cell goes through :func:`csv_cell` — for exports of names,
    poll answers and other text that people (on any server) typed."""

    def __init__(self, out: io.StringIO, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([csv_cell(cell) for cell in row])


def safe_article(row: dict[str, Any]) -> dict[str, Any]:
    """An article (or revision) row as the API serves it: its HTML cut down to the safe
    subset again and a cover that is not an ``mxc://`` URL dropped, whatever wrote the row
    (an event from another server, an older version of the module, a hand-edited table)."""
    if isinstance(row.get("html"), str):
        row["html"] = clean_html(row["html"])
    cover = row.get("cover")
    if cover is not None and not (isinstance(cover, str) and _MXC.match(cover)):
        row["cover"] = None
    return row
