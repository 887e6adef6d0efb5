"""One catalogue for every text a person reads, in Russian and English (docs/i18n.md).

The source is ``parta_common/locale/{ru,en}.po``: each ``msgid`` is a message id such as
``roster.not_operator``, each ``msgstr`` the text, with ``{name}`` parameters.
``python -m devtools.catalogue`` (Babel, a dev dependency) exports both into
``locale/catalogue.json``, read here with the standard library only (this package runs in
Synapse's virtualenv), and into the pages' tables (``sfu/static/texts.js``,
``broadcast_relay/static/texts.js``); ``tests/test_catalogue.py`` checks all are up to date.

Errors a person may read carry the id and parameters beside the bilingual ``error`` text
(:data:`FIELD`), so the bot and the pages show the person's language instead of splitting.
"""

import functools
import json
from importlib import resources
from typing import Final

LANGUAGES: Final = ("ru", "en")
DEFAULT_LANGUAGE: Final = "ru"
# The key of an error body (and of the SFU's error messages) holding {"id", "params"}.
FIELD: Final = "org.parta.message"

Params = dict[str, str | int | float | bool | None]


@functools.cache
def texts() -> dict[str, dict[str, str]]:
    """``{language: {message id: text}}`` from the exported catalogue."""
    path = resources.files(__package__).joinpath("locale/catalogue.json")
    loaded: dict[str, dict[str, str]] = json.loads(path.read_text("utf-8"))
    return loaded


def has(message_id: str) -> bool:
    return all(message_id in texts()[lang] for lang in LANGUAGES)


def text(message_id: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text of ``message_id`` in ``language`` (Russian for any other), filled in."""
    table = texts()
    template = table.get(language, table[DEFAULT_LANGUAGE])[message_id]
    return template.format(**params)


def bilingual(message_id: str, **params: object) -> str:
    """ "русский / English": the ``error`` text for clients that read no message id."""
    return " / ".join(text(message_id, lang, **params) for lang in LANGUAGES)


def json_params(params: dict[str, object]) -> Params:
    """Parameters as JSON values (anything else as its text)."""
    return {
        key: value if value is None or isinstance(value, str | int | float | bool) else str(value)
        for key, value in params.items()
    }


def reference(message_id: str, **params: object) -> dict[str, object]:
    """``{"id": ..., "params": {...}}``: what a client needs to show the text itself."""
    return {"id": message_id, "params": json_params(params)}


def from_reference(value: object, language: str) -> str | None:
    """The text a :func:`reference` names, in ``language``; None when it names none we know."""
    if not isinstance(value, dict):
        return None
    message_id, params = value.get("id"), value.get("params", {})
    if not isinstance(message_id, str) or not has(message_id) or not isinstance(params, dict):
        return None
    try:
        return text(message_id, language, **params)
    except (KeyError, IndexError, ValueError):
        return None
