"""Articles' HTML, cut down on the server to a safe subset (nh3 / ammonia).

The subset is the one the Matrix spec recommends for ``formatted_body`` plus tables and
headings; links may point to http(s), mailto and matrix.to; images only to ``mxc://``.
Scripts, styles, iframes, objects, forms, event handlers (``on…``) and ``javascript:``
URLs are gone, with the content of ``script``/``style`` dropped entirely.
"""

import html as html_lib
from typing import Final

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
