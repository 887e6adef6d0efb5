"""A new person's name as an administrator types it (surname, given name, patronymic) and
the account name made from it: pure, shared by the module's "appoint by name" routes.

The import names accounts after OneRoster's ``username``; a person typed into the
console has only a name, so the login is the name in Latin letters: «Петрова Анна» →
``anna.petrova`` (given name, dot, surname; the transliteration of Russian passports,
ICAO Doc 9303, with «й» as ``y`` and «ъ» dropped).
"""

import re
import unicodedata
from typing import Final

import attrs

_CYRILLIC: Final = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґўәөүұқғңһ",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "",
            "y",
            "",
            "e",
            "iu",
            "ia",
            "i",
            "i",
            "ie",
            "g",
            "u",
            "a",
            "o",
            "u",
            "u",
            "k",
            "g",
            "n",
            "h",
        ],
        strict=True,
    )
)
_NOT_LOCALPART: Final = re.compile(r"[^a-z0-9]+")
# Long enough for any real name; Matrix IDs stay far below their 255 characters.
STEM_MAX: Final = 40
# A name with nothing Latin or Cyrillic in it still gets an account name.
FALLBACK_STEM: Final = "person"


@attrs.frozen
class PersonName:
    family: str
    given: str
    middle: str = ""

    @property
    def display_name(self) -> str:
        """As the import writes names: «Фамилия Имя Отчество»."""
        return " ".join(p for p in (self.family, self.given, self.middle) if p)


def person_name(family: str, given: str, middle: str = "") -> PersonName | None:
    """The name with spaces tidied; None unless the surname and the given name both have a
    letter (the caller refuses: a person is named by at least those two)."""
    parts = [" ".join(p.split()) for p in (family, given, middle)]
    if not all(any(c.isalpha() for c in p) for p in parts[:2]):
        return None
    return PersonName(*parts)


def latin(text: str) -> str:
    """Lower-case Latin letters and digits for ``text``: Cyrillic transliterated, accents
    dropped, anything else a hyphen (collapsed)."""
    out = []
    for c in text.lower():
        if c in _CYRILLIC:
            out.append(_CYRILLIC[c])
        else:
            out.extend(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
    return _NOT_LOCALPART.sub("-", "".join(out)).strip("-")


def login_stem(name: PersonName) -> str:
    """The account name a new person is offered first: ``given.family`` in Latin letters
    (the caller adds a suffix when it is taken)."""
    stem = ".".join(p for p in (latin(name.given), latin(name.family)) if p)
    return stem[:STEM_MAX].strip(".-") or FALLBACK_STEM
