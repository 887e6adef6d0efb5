"""What a person typed, as a command: pure parsing, no I/O.

Commands are Russian with English aliases. The first words name the command; what
follows are its arguments. Times are local to the school (Europe/Moscow unless set).
"""

import datetime
import re
import zoneinfo

import attrs

from parta_common.catalogue import DEFAULT_LANGUAGE
from parta_common.messages import Message
from parta_common.roles import Role

# command name → the phrases that start it (lower case, longest first when matching)
ALIASES: dict[str, tuple[str, ...]] = {
    "help": ("помощь", "справка", "help", "?"),
    "my_schools": ("мои школы", "школы", "my schools", "schools"),
    "create_class": ("создать класс", "новый класс", "create class", "new class"),
    "invite": ("пригласить", "приглашение", "invite"),
    "members": ("участники", "список", "members", "list members"),
    "link_parent": ("связать родителя", "привязать родителя", "link parent"),
    "announce": ("объявление", "объявить", "announce", "announcement"),
    "homework": ("домашнее задание", "дз", "homework"),
    "lesson": ("начать урок", "урок", "start lesson", "lesson"),
    "attendance": ("посещаемость", "attendance"),
    "poll": ("опрос", "poll"),
    "quiz": ("викторина", "quiz"),
    "results": ("результаты", "results"),
    "broadcast": ("трансляция", "broadcast"),
    "scheduled": ("запланировано", "scheduled"),
    "cancel": ("отменить", "cancel"),
    # Before «code»: «код для входа …» must not be read as «код …».
    "new_code": ("новый код", "код для входа", "new code", "sign-in code"),
    "code": ("код", "code", "redeem"),
    "export": ("выгрузить данные", "выгрузка данных", "export data"),
    # «согласия» lists; «согласие дать|отозвать <цель> [имя]» records (docs/privacy.md).
    "consents": ("согласия", "мои согласия", "consents", "my consents"),
    "consent": ("согласие", "consent"),
    # «удалить мои данные» / «удалить данные Маша»: a request to erase (docs/privacy.md).
    "erase_mine": ("удалить мои данные", "erase my data", "delete my data"),
    "erase": ("удалить данные", "erase data", "delete data"),
    "my_requests": ("мои запросы", "my requests"),
    "confirm": ("да", "yes", "подтверждаю", "confirm"),
    "reject": ("нет", "no", "отмена"),
}

ROLE_WORDS: dict[str, Role] = {
    "администратор": Role.ADMINISTRATOR,
    "администратора": Role.ADMINISTRATOR,
    "administrator": Role.ADMINISTRATOR,
    "admin": Role.ADMINISTRATOR,
    "учитель": Role.TEACHER,
    "учителя": Role.TEACHER,
    "teacher": Role.TEACHER,
    "ученик": Role.STUDENT,
    "ученика": Role.STUDENT,
    "student": Role.STUDENT,
    "родитель": Role.PARENT,
    "родителя": Role.PARENT,
    "parent": Role.PARENT,
}

# The letter of a class («7А», «7A»): what people type and what school files hold.
CLASS_LETTER = "[А-ЯЁA-Zа-яёa-z]"
_CLASS = re.compile(rf"^(1[01]|[1-9])\s*[-‐]?\s*({CLASS_LETTER})$")
_USER = re.compile(r"^@[^:\s]+:\S+$")
# «выгрузить данные @логин»: the server may be left out (the bot's own is meant).
_LOGIN = re.compile(r"^@[^:\s]+(:\S+)?$")
_INVITE_CODE = re.compile(r"^[A-Za-z0-9]{4}-[A-Za-z0-9]{4}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{5,63}$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$|^(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_PARENTS = ("родители", "родителям", "parents")
_DAY_WORDS = ("сегодня", "today", "завтра", "tomorrow")
# «согласие дать фото»: the purposes of docs/privacy.md by the words people type.
CONSENT_PURPOSES: dict[str, str] = {
    "общение": "communication",
    "общения": "communication",
    "communication": "communication",
    "видеоуроки": "video_lessons",
    "видеоуроков": "video_lessons",
    "видео": "video_lessons",
    "video": "video_lessons",
    "video_lessons": "video_lessons",
    "трансляции": "broadcasts",
    "трансляций": "broadcasts",
    "broadcasts": "broadcasts",
    "фото": "photos",
    "фотографии": "photos",
    "photos": "photos",
}
_CONSENT_GIVE = ("дать", "даю", "дано", "give", "grant")
_CONSENT_WITHDRAW = ("отозвать", "отзываю", "забрать", "withdraw", "revoke")
# «согласие дать фото я»: the person's own consent (an adult; a student from the
# school's self-consent grade), not a child's.
MYSELF_WORDS = ("я", "себя", "себе", "мне", "me", "myself")
# How people address the bot in a group room («бот, урок 7А …»).
BOT_NAMES = ("бот", "bot")


# «дз» with nothing after it lists homework instead of scheduling a reminder.
HOMEWORK_LIST = "list"


class CommandError(ValueError):
    """The text looks like a command but its arguments are wrong: a catalogue text, in the
    command's language once :func:`parse` knows it (``str()``: Russian / English)."""

    def __init__(self, message_id: str, **params: object) -> None:
        self.message = Message(message_id)
        self.params = params
        self.language: str | None = None
        super().__init__(self.message.format(**params))

    def text(self) -> str:
        if self.language is None:
            return self.message.format(**self.params)
        return self.message.text(self.language, **self.params)


@attrs.frozen
class ClassName:
    grade: int
    letter: str

    def __str__(self) -> str:
        return f"{self.grade}{self.letter}"


@attrs.frozen
class Command:
    name: str
    args: tuple[str, ...] = ()
    # Poll answers; for a quiz, the indexes of the correct ones.
    answers: tuple[str, ...] = ()
    correct: tuple[int, ...] = ()
    text: str = ""
    role: Role | None = None
    class_name: ClassName | None = None
    users: tuple[str, ...] = ()
    when: datetime.datetime | None = None
    parents_chat: bool = False
    # The language the command was written in: the bot answers in it (docs/i18n.md).
    language: str = DEFAULT_LANGUAGE


def parse_class(word: str) -> ClassName | None:
    m = _CLASS.match(word.strip())
    if not m:
        return None
    letter = m.group(2).upper()
    # Latin look-alikes typed on an English keyboard mean the Cyrillic letter.
    letter = {"A": "А", "B": "Б", "V": "В", "G": "Г", "D": "Д", "E": "Е"}.get(letter, letter)
    return ClassName(int(m.group(1)), letter)


def parse_when(
    words: list[str], now: datetime.datetime, tz: zoneinfo.ZoneInfo
) -> tuple[datetime.datetime | None, list[str]]:
    """A leading «[сегодня|завтра|YYYY-MM-DD|DD.MM[.YYYY]] HH:MM», and the rest."""
    local_now = now.astimezone(tz)
    day: datetime.date | None = None
    rest = list(words)
    if rest and rest[0].lower() in ("сегодня", "today"):
        day = local_now.date()
        rest = rest[1:]
    elif rest and rest[0].lower() in ("завтра", "tomorrow"):
        day = local_now.date() + datetime.timedelta(days=1)
        rest = rest[1:]
    elif rest and (m := _DATE.match(rest[0])):
        try:
            if m.group(1):
                day = datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            else:
                year = int(m.group(6)) if m.group(6) else local_now.year
                day = datetime.date(year, int(m.group(5)), int(m.group(4)))
        except ValueError:
            raise CommandError("bot.no_such_date", date=rest[0]) from None
        rest = rest[1:]
    if rest and (t := _TIME.match(rest[0])):
        clock = datetime.time(int(t.group(1)), int(t.group(2)))
        rest = rest[1:]
        if day is None:
            day = local_now.date()
            if clock <= local_now.time():
                day += datetime.timedelta(days=1)
        return datetime.datetime.combine(day, clock, tzinfo=tz), rest
    if day is not None and words[0].lower() in _DAY_WORDS:
        # «объявление завтра линейка»: «завтра» is part of the text.
        return None, list(words)
    if day is not None:
        raise CommandError("bot.time_after_date")
    return None, rest


def phrase_language(phrase: str) -> str:
    """English for a command typed with an English alias; Russian otherwise (the default)."""
    return "en" if phrase.isascii() and any(c.isalpha() for c in phrase) else DEFAULT_LANGUAGE


def parse(
    text: str,
    now: datetime.datetime | None = None,
    tz: zoneinfo.ZoneInfo | None = None,
) -> Command | None:
    """The command in ``text``; ``None`` when it is not one (a chat message)."""
    now = now or datetime.datetime.now(datetime.UTC)
    tz = tz or zoneinfo.ZoneInfo("Europe/Moscow")
    stripped = " ".join(text.strip().split())
    lowered = stripped.lower().rstrip("!.")
    for name, phrases in ALIASES.items():
        for phrase in sorted(phrases, key=len, reverse=True):
            if lowered == phrase or lowered.startswith(phrase + " "):
                rest = stripped[len(phrase) :].strip()
                language = phrase_language(phrase)
                try:
                    return attrs.evolve(_arguments(name, rest, now, tz), language=language)
                except CommandError as e:
                    e.language = language
                    raise
    words = stripped.split(" ")
    if len(words) == 1:
        word = words[0]
        if "/join/" in word:
            # The invitation link pasted as it is.
            word = word.rstrip("/").rsplit("/", 1)[-1]
        if _INVITE_CODE.match(word) or (_CODE.match(word) and any(c.isdigit() for c in word)):
            # A bare code sent to the bot: redeem it.
            return Command("code", args=(word,))
    return None


def _arguments(name: str, rest: str, now: datetime.datetime, tz: zoneinfo.ZoneInfo) -> Command:
    words = rest.split(" ") if rest else []
    if name == "consents" and words:
        name = "consent"  # «согласия дать фото»: one letter off, the same meaning
    if name in ("help", "my_schools", "scheduled", "confirm", "reject", "consents", "my_requests"):
        return Command(name)
    if name == "erase_mine":
        if words:
            raise CommandError("bot.erase.format")
        return Command("erase", args=("self",))
    if name == "erase":
        # «удалить данные Маша»: the child by name; «удалить данные я»: oneself.
        if not words:
            raise CommandError("bot.erase.format")
        return Command(name, text=rest)
    if name == "create_class":
        cls = parse_class(words[0]) if words else None
        if cls is None and len(words) >= 2:
            cls = parse_class(words[0] + words[1])
            words = [words[0] + words[1], *words[2:]]
        if cls is None:
            raise CommandError("bot.create_class_format")
        return Command(name, args=tuple(words[1:]), class_name=cls)
    if name == "invite":
        role = ROLE_WORDS.get(words[0].lower()) if words else None
        if role is None:
            raise CommandError("bot.invite_whom")
        cls = _find_class(words[1:])
        return Command(name, role=role, class_name=cls)
    if name == "members":
        return Command(name, class_name=_find_class(words))
    if name == "new_code":
        users = tuple(w for w in words if _USER.match(w))
        if len(users) != 1:
            raise CommandError("bot.new_code_format")
        return Command(name, users=users)
    if name == "export":
        users = tuple(w for w in words if _LOGIN.match(w))
        if len(users) != 1 or len(words) != 1:
            raise CommandError("bot.export_format")
        return Command(name, users=users)
    if name == "link_parent":
        users = tuple(w for w in words if _USER.match(w))
        if len(users) != 2:
            raise CommandError("bot.link_parent_format")
        return Command(name, users=users)
    if name in ("poll", "quiz"):
        cls = parse_class(words[0]) if words else None
        if cls is not None:
            words = words[1:]
        parts = [p.strip() for p in " ".join(words).split("|")]
        question, answers = parts[0], [p for p in parts[1:] if p.lstrip("*").strip()]
        if not question or len(answers) < 2:
            raise CommandError("bot.poll_format")
        correct = tuple(i for i, a in enumerate(answers) if a.startswith("*"))
        if name == "quiz" and not correct:
            raise CommandError("bot.quiz_needs_answer")
        return Command(
            name,
            text=question,
            class_name=cls,
            answers=tuple(a.lstrip("*").strip() for a in answers),
            correct=correct,
        )
    if name == "results":
        return Command(name, class_name=_find_class(words))
    if name == "broadcast":
        cls = parse_class(words[0]) if words else None
        if cls is not None:
            words = words[1:]
        title = " ".join(words).strip()
        if not title:
            raise CommandError("bot.broadcast_format")
        return Command(name, text=title, class_name=cls)
    if name == "attendance":
        return Command(name, class_name=_find_class(words))
    if name == "lesson":
        cls = parse_class(words[0]) if words else None
        if cls is not None:
            words = words[1:]
        when, words = parse_when(words, now, tz)
        title = " ".join(words).strip()
        if not title:
            raise CommandError("bot.lesson_format")
        return Command(name, text=title, class_name=cls, when=when)
    if name == "homework" and not words:
        # «дз» alone: the homework of my classes and my children (GET /me/homework).
        return Command(name, args=(HOMEWORK_LIST,))
    if name in ("announce", "homework"):
        parents = False
        cls = None
        if words and words[0].lower() in _PARENTS:
            parents = True
            words = words[1:]
        if words and (cls := parse_class(words[0])) is not None:
            words = words[1:]
        if parents and cls is None:
            raise CommandError("bot.announce_parents_format")
        when, words = parse_when(words, now, tz)
        body = " ".join(words).strip()
        if name == "homework" and (cls is None or when is None):
            raise CommandError("bot.homework_format")
        # A homework reminder's text is the module's list (bridge/bot.py); words after
        # the time only pick a subject.
        if not body and name != "homework":
            raise CommandError("bot.no_text")
        return Command(name, text=body, class_name=cls, when=when, parents_chat=parents)
    if name == "consent":
        # «согласие дать фото [Маша]»: args (purpose, "grant"|"withdraw"), text the name.
        action = words[0].lower() if words else ""
        purpose = CONSENT_PURPOSES.get(words[1].lower()) if len(words) > 1 else None
        if action in _CONSENT_GIVE:
            granted = "grant"
        elif action in _CONSENT_WITHDRAW:
            granted = "withdraw"
        else:
            raise CommandError("bot.consent_format")
        if purpose is None:
            raise CommandError("bot.consent_purpose", purpose=words[1] if len(words) > 1 else "")
        return Command(name, args=(purpose, granted), text=" ".join(words[2:]).strip())
    if name in ("cancel", "code"):
        if len(words) != 1:
            raise CommandError("bot.one_code")
        return Command(name, args=(words[0],))
    raise AssertionError(name)


def name_key(name: str) -> str:
    """A name as compared («Маша», «маша», «Иванова  Маша»): case, spaces and ё (written
    as е) do not count."""
    return " ".join(name.casefold().replace("ё", "е").split())


def _find_class(words: list[str]) -> ClassName | None:
    for i, word in enumerate(words):
        if word.lower() in ("класс", "class", "в", "in"):
            continue
        cls = parse_class(word)
        if cls is None and i + 1 < len(words):
            cls = parse_class(word + words[i + 1])
        if cls is not None:
            return cls
    return None
