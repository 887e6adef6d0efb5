"""The one catalogue of texts people read (parta_common/locale/*.po, docs/i18n.md)."""

import ast
import re
import string
from pathlib import Path

import pytest

from bridge.api import ApiError
from bridge.bot import Place, refusal, role_names, say
from bridge.commands import CommandError, parse
from devtools import catalogue as build
from parta_common import catalogue
from parta_common.messages import Message
from sfu.errors import ERRORS, LessonError

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("parta_common", "synapse_module", "sfu", "broadcast_relay", "bridge")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# Russian that is not a text a person reads: what people type, generated developer docs.
# Words the bot *reads* (command names, class letters) are input, not texts: they stay
# where they are parsed.
NOT_A_TEXT: dict[str, str] = {
    "bridge/commands.py": "command, role and day words the bot reads (input)",
    "parta_common/person_names.py": "the letters a typed name is transliterated from (input)",
    "parta_common/schemas/__main__.py": "writes docs/events.md (examples in Russian)",
    "synapse_module/quiet_hours/rules.py": "«срочно», an urgent message's first word (input)",
}


def product_files() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (ROOT / top).rglob("*.py"))


def test_the_exports_are_up_to_date() -> None:
    assert build.stale(build.read_catalogue()) == [], "run python -m devtools.catalogue"


# Texts that take a word in each language as its own parameter (``kind_ru`` beside ``kind``):
# the error carries both, so a client fills either language.
OWN_WORD_PER_LANGUAGE = {
    "content.too_large_at_all",
    "content.too_large_for_kind",
    "lessons.lesson_not_scheduled",
}


def test_both_languages_have_every_id_with_the_same_parameters() -> None:
    table = build.read_catalogue()
    assert set(table["ru"]) == set(table["en"])
    for message_id, russian in table["ru"].items():
        if message_id in OWN_WORD_PER_LANGUAGE:
            continue
        fields = {f for _, f, _, _ in string.Formatter().parse(russian) if f}
        english = {f for _, f, _, _ in string.Formatter().parse(table["en"][message_id]) if f}
        assert fields == english, message_id


def message_ids_in_code() -> dict[str, str]:
    """Every ``Message("id")`` in the product code → where."""
    found: dict[str, str] = {}
    for path in product_files():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name | ast.Attribute)
                and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
                == "Message"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found[str(node.args[0].value)] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_message_id_in_code_is_in_both_languages() -> None:
    used = message_ids_in_code()
    assert len(used) > 50
    missing = {mid: where for mid, where in used.items() if not catalogue.has(mid)}
    assert missing == {}


def test_every_key_the_lesson_page_uses_is_in_both_languages() -> None:
    static = ROOT / "sfu" / "static"
    keys: set[str] = set()
    for page in static.glob("*.js"):
        keys |= set(re.findall(r"\bt\(\s*\"([a-z_]+)\"", page.read_text("utf-8")))
    html = (static / "lesson.html").read_text("utf-8")
    keys |= set(re.findall(r"data-i18n(?:-title|-placeholder)?=\"([a-z_]+)\"", html))
    assert len(keys) > 30
    assert {k for k in keys if not catalogue.has("lesson_page." + k)} == set()


def russian_literals(path: Path) -> list[int]:
    """Lines of string literals with Cyrillic in ``path``, docstrings aside."""
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and CYRILLIC.search(node.value)
        and id(node) not in docstrings
    ]


def test_no_russian_literal_in_product_code_outside_the_catalogue() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in product_files()
        if str(path.relative_to(ROOT)) not in NOT_A_TEXT and (lines := russian_literals(path))
    }
    assert found == {}


def test_the_invitation_page_takes_every_text_from_the_catalogue() -> None:
    page = (ROOT / "synapse_module" / "static" / "join.html").read_text("utf-8")
    assert not CYRILLIC.search(page)
    keys = set(re.findall(r"\b(?:t|text)\([^)]*?\"([a-z_]+)\"\)", page))
    assert len(keys) > 15
    assert {k for k in keys if not catalogue.has("join_page." + k)} == set()
    # What the page shows by id: its texts, role names and the roster's refusals.
    exported = (ROOT / "synapse_module" / "static" / "join_texts.js").read_text("utf-8")
    for message_id in ("join_page.done", "bot.role.parent", "roster.invite_used_up"):
        assert f'"{message_id}"' in exported


def test_a_message_outside_the_catalogue_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match="not in the catalogue"):
        Message("no.such.message")


@pytest.mark.parametrize(
    ("message_id", "params", "ru", "en"),
    [
        ("roster.school_not_found", {"school_id": "sch_1"}, "Школа не найдена: sch_1", None),
        ("lesson_error.lesson_full", {"limit": 30}, None, "30 participants"),
        ("bot.no_such_class", {"name": "7А"}, "Нет класса 7А", "No class 7А"),
    ],
)
def test_texts_fill_in_their_parameters(
    message_id: str, params: dict[str, object], ru: str | None, en: str | None
) -> None:
    message = Message(message_id)
    assert (
        message.format(**params)
        == f"{message.text('ru', **params)} / {message.text('en', **params)}"
    )
    assert ru is None or ru in message.text("ru", **params)
    assert en is None or en in message.text("en", **params)
    assert message.fields(**params) == {"org.parta.message": {"id": message_id, "params": params}}
    # Any other language falls back to Russian.
    assert catalogue.text(message_id, "de", **params) == message.text("ru", **params)


def test_every_sfu_error_is_a_catalogue_text_and_its_payload_names_it() -> None:
    for code in ERRORS:
        payload = LessonError(code, detail="x", limit=7).payload("r1")
        reference = payload["org.parta.message"]
        assert reference == {
            "id": f"lesson_error.{code}",
            "params": {"detail": "x", "limit": 7},
        }
        texts = [catalogue.from_reference(reference, lang) for lang in ("ru", "en")]
        assert payload["message"] == f"{texts[0]} / {texts[1]}"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # A module refusal with its id: each language from the catalogue, nothing split.
        (
            ApiError(
                404,
                "M_NOT_FOUND",
                "Школа не найдена: sch_1 / School not found: sch_1",
                {"id": "roster.school_not_found", "params": {"school_id": "sch_1"}},
            ),
            "Не найдено: Школа не найдена: sch_1\nNot found: School not found: sch_1",
        ),
        # Without one (Synapse's own errors): the text as it came, in both lines.
        (
            ApiError(403, "M_FORBIDDEN", "You are not invited to this room."),
            "Нельзя: You are not invited to this room.\n"
            "Not allowed: You are not invited to this room.",
        ),
        # An id this bot does not know (a newer module): the text as it came.
        (
            ApiError(409, "M_BAD_STATE", "а / b", {"id": "future.thing", "params": {}}),
            "Не получилось: а / b\nCould not do it: а / b",
        ),
        (
            ApiError.of(400, "M_INVALID_PARAM", Message("bot.several_schools"), names="A, B"),
            "Не получилось: У вас несколько школ (A, B): напишите команду в комнате нужной "
            "школы\nCould not do it: You are in several schools (A, B): send the command in "
            "a room of that school",
        ),
    ],
)
def test_the_bot_shows_each_language_of_a_refusal(error: ApiError, expected: str) -> None:
    assert refusal(error) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("помощь", "ru"),
        ("help", "en"),
        ("?", "ru"),
        ("create class 7A", "en"),
        ("создать класс 7А", "ru"),
        ("ABCD-1234", "ru"),  # a bare code: no words to go by, the default
    ],
)
def test_the_bot_answers_in_the_language_of_the_command(text: str, language: str) -> None:
    command = parse(text)
    assert command is not None
    assert command.language == language


def test_a_wrong_command_is_explained_in_its_language() -> None:
    for text, expected in (
        ("invite", "Invite whom: teacher, student, parent or administrator?"),
        ("пригласить", "Кого пригласить: учителя, ученика, родителя или администратора?"),
    ):
        with pytest.raises(CommandError) as e:
            parse(text)
        assert e.value.text() == expected
        assert str(e.value) == Message("bot.invite_whom").format()


def test_places_read_right_in_both_languages() -> None:
    chat = Place("parents_chat", "7А")
    assert say("ru", "bot.posted", to=chat.to("ru")) == "Отправлено в чат родителей 7А."
    assert say("en", "bot.posted", to=chat.to("en")) == "Posted to the parents' chat of 7А."
    assert chat.at("ru") == "в чате родителей 7А"
    assert role_names("en", ["teacher", "parent", "robot"]) == "teacher, parent, robot"
