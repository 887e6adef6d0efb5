"""The bot's pure parts: config, command parsing, quiet hours, OneRoster reading."""

import csv
import datetime
import io
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.commands import ClassName, CommandError, parse
from bridge.config import BridgeConfig, ConfigProblem, QuietHoursConfig, load
from bridge.registration import Registration, ensure_registration
from bridge.roster_sync import SignIn, sign_in_csv
from bridge.schedule import deliver_at, is_quiet
from parta_common.config import build
from parta_common.oneroster import RosterErrors, read_files, zip_files
from parta_common.person_names import PersonName, login_stem
from parta_common.roles import Role
from tests.data.make_sample_school import make_school, to_zip

MSK = zoneinfo.ZoneInfo("Europe/Moscow")
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "bridge.example.yaml"


def test_example_config_is_the_defaults() -> None:
    assert load(EXAMPLE) == BridgeConfig()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"homeservr": {}}, "unknown key(s): homeservr"),
        ({"appservice": {"port": "80"}}, "appservice.port: expected an integer"),
        ({"appservice": {"bot_localpart": "Bot"}}, "not a valid Matrix localpart"),
        ({"quiet_hours": {"start": "25:00"}}, "expected HH:MM"),
        ({"quiet_hours": {"timezone": "Mars/Olympus"}}, "unknown IANA time zone"),
        ({"database": "mysql://x"}, "expected sqlite:"),
        ({"appservice": {"registration": "CHANGE_ME"}}, "placeholder"),
    ],
)
def test_bad_config_names_the_key(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigProblem) as e:
        build(BridgeConfig, raw)
    assert fragment in str(e.value)


def test_registration_namespaces() -> None:
    reg = Registration.generate("http://127.0.0.1:1", "parta-bot").as_dict("example.org")
    # The bot's own user only, exclusive: it cannot act as anybody else.
    assert reg["namespaces"] == {
        "users": [{"exclusive": True, "regex": r"^@parta\-bot:example\.org$"}],
        "aliases": [],
        "rooms": [],
    }
    assert reg["as_token"] != reg["hs_token"]
    assert len(reg["as_token"]) >= 40


def test_an_old_registration_loses_its_catch_all_namespace(tmp_path: Path) -> None:
    """A registration from before (every local user, non-exclusive) keeps its tokens and
    is narrowed to the bot alone when ``make run`` / ``bridge.registration`` sees it."""
    path = tmp_path / "registration.yaml"
    old = Registration.generate("http://127.0.0.1:1", "parta-bot")
    data = old.as_dict("localhost")
    data["namespaces"]["users"].append({"exclusive": False, "regex": "^@.*:localhost$"})
    path.write_text(yaml.safe_dump(data))
    assert ensure_registration(BridgeConfig(), path) == old
    again = yaml.safe_load(path.read_text())
    assert again["namespaces"]["users"] == [
        {"exclusive": True, "regex": r"^@parta\-bot:localhost$"}
    ]
    assert (again["as_token"], again["hs_token"]) == (old.as_token, old.hs_token)


NOW = datetime.datetime(2026, 11, 30, 10, 0, tzinfo=MSK)  # a Monday morning


@pytest.mark.parametrize(
    ("text", "name", "check"),
    [
        ("помощь", "help", {}),
        ("HELP", "help", {}),
        ("мои школы", "my_schools", {}),
        ("создать класс 7А", "create_class", {"class_name": ClassName(7, "А")}),
        ("create class 10 b", "create_class", {"class_name": ClassName(10, "Б")}),
        (
            "пригласить ученика в 7А",
            "invite",
            {"role": Role.STUDENT, "class_name": ClassName(7, "А")},
        ),
        ("invite teacher", "invite", {"role": Role.TEACHER, "class_name": None}),
        ("участники 5В", "members", {"class_name": ClassName(5, "В")}),
        (
            "связать родителя @mama:s @kid:s",
            "link_parent",
            {"users": ("@mama:s", "@kid:s")},
        ),
        ("выгрузить данные @kid:s", "export", {"users": ("@kid:s",)}),
        ("export data @kid", "export", {"users": ("@kid",)}),
        ("объявление Завтра линейка", "announce", {"text": "Завтра линейка", "when": None}),
        (
            "объявление родители 7А завтра 09:00 Собрание в 18:00",
            "announce",
            {
                "parents_chat": True,
                "class_name": ClassName(7, "А"),
                "when": datetime.datetime(2026, 12, 1, 9, 0, tzinfo=MSK),
                "text": "Собрание в 18:00",
            },
        ),
        (
            "announce 2026-12-05 07:30 Sports day",
            "announce",
            {"when": datetime.datetime(2026, 12, 5, 7, 30, tzinfo=MSK), "text": "Sports day"},
        ),
        (
            "объявление 09:30 Сегодня",
            "announce",
            {"when": datetime.datetime(2026, 12, 1, 9, 30, tzinfo=MSK)},
        ),
        (
            "дз 7А 02.12 18:00 Упражнение 5",
            "homework",
            {"when": datetime.datetime(2026, 12, 2, 18, 0, tzinfo=MSK), "text": "Упражнение 5"},
        ),
        ("урок 7А Дроби", "lesson", {"class_name": ClassName(7, "А"), "text": "Дроби"}),
        (
            "lesson 7A tomorrow 10:00 Fractions",
            "lesson",
            {"when": datetime.datetime(2026, 12, 1, 10, 0, tzinfo=MSK), "text": "Fractions"},
        ),
        ("посещаемость 7А", "attendance", {"class_name": ClassName(7, "А")}),
        ("новый код @mama:s", "new_code", {"users": ("@mama:s",)}),
        ("код для входа @kid:s", "new_code", {"users": ("@kid:s",)}),
        ("new code @kid:s", "new_code", {"users": ("@kid:s",)}),
        ("код AB12CD34", "code", {"args": ("AB12CD34",)}),
        ("X7K2-9QPL", "code", {"args": ("X7K2-9QPL",)}),
        ("ABCD-EFGH", "code", {"args": ("ABCD-EFGH",)}),
        ("http://h/_synapse/client/parta/join/ABCD-EFGH", "code", {"args": ("ABCD-EFGH",)}),
        ("да", "confirm", {}),
        ("no", "reject", {}),
        ("согласия", "consents", {}),
        ("my consents", "consents", {"language": "en"}),
        ("согласие дать фото", "consent", {"args": ("photos", "grant"), "text": ""}),
        (
            "Согласие отозвать Видеоуроки Маша Иванова",
            "consent",
            {"args": ("video_lessons", "withdraw"), "text": "Маша Иванова"},
        ),
        ("согласия дать общение Петя", "consent", {"args": ("communication", "grant")}),
        ("consent withdraw broadcasts", "consent", {"args": ("broadcasts", "withdraw")}),
    ],
)
def test_commands_parse(text: str, name: str, check: dict[str, object]) -> None:
    command = parse(text, now=NOW, tz=MSK)
    assert command is not None
    assert command.name == name
    for key, value in check.items():
        assert getattr(command, key) == value, key


@pytest.mark.parametrize("text", ["привет всем", "как дела?", "hello"])
def test_chat_is_not_a_command(text: str) -> None:
    assert parse(text, now=NOW, tz=MSK) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("создать класс", "Укажите класс"),
        ("новый код мама", "Укажите логин"),
        ("пригласить директора", "Кого пригласить"),
        ("связать родителя @a:s", "Нужно два адреса"),
        ("выгрузить данные мама", "выгрузить данные @логин"),
        ("выгрузить данные @a:s @b:s", "выгрузить данные @логин"),
        ("объявление родители Собрание", "Укажите класс"),
        ("объявление 2026-02-30 10:00 x", "Нет такой даты"),
        ("объявление 05.12 текст", "укажите время"),
        ("дз 7А сделать", "Формат"),
        ("согласие фото", "согласие дать"),
        ("согласие дать рисунки", "«рисунки»"),
        ("согласие отозвать", "общение, видеоуроки, трансляции, фото"),
    ],
)
def test_command_mistakes_are_explained(text: str, fragment: str) -> None:
    with pytest.raises(CommandError) as e:
        parse(text, now=NOW, tz=MSK)
    assert fragment in str(e.value)
    assert " / " in str(e.value)  # both languages


QUIET = QuietHoursConfig()


@pytest.mark.parametrize(
    ("local", "quiet", "goes"),
    [
        ((2026, 12, 1, 12, 0), False, (2026, 12, 1, 12, 0)),
        ((2026, 12, 1, 21, 0), True, (2026, 12, 2, 8, 0)),
        ((2026, 12, 1, 23, 59), True, (2026, 12, 2, 8, 0)),
        ((2026, 12, 2, 3, 0), True, (2026, 12, 2, 8, 0)),
        ((2026, 12, 2, 7, 59), True, (2026, 12, 2, 8, 0)),
        ((2026, 12, 2, 8, 0), False, (2026, 12, 2, 8, 0)),
        ((2026, 12, 1, 20, 59), False, (2026, 12, 1, 20, 59)),
    ],
)
def test_quiet_hours(local: tuple[int, ...], quiet: bool, goes: tuple[int, ...]) -> None:
    moment = _msk(local)
    assert is_quiet(moment.astimezone(datetime.UTC), QUIET) is quiet
    assert deliver_at(moment, QUIET) == _msk(goes)


def _msk(parts: tuple[int, ...]) -> datetime.datetime:
    year, month, day, hour, minute = parts
    return datetime.datetime(year, month, day, hour, minute, tzinfo=MSK)


def test_daytime_quiet_window_and_off() -> None:
    lunch = QuietHoursConfig(start="13:00", end="14:00", timezone="Asia/Yekaterinburg")
    ekb = zoneinfo.ZoneInfo("Asia/Yekaterinburg")
    assert is_quiet(datetime.datetime(2026, 12, 1, 13, 30, tzinfo=ekb), lunch)
    assert not is_quiet(datetime.datetime(2026, 12, 1, 14, 0, tzinfo=ekb), lunch)
    off = QuietHoursConfig(start="00:00", end="00:00")
    assert not is_quiet(datetime.datetime(2026, 12, 1, 3, 0, tzinfo=MSK), off)


def sample(students: int = 550) -> dict[str, bytes]:
    return {k: v.encode() for k, v in make_school(students).items()}


def test_sample_school_reads() -> None:
    roster = read_files(sample())
    members = roster.memberships("sch-1")
    students = [m for m in members.values() if Role.STUDENT in m.roles]
    parents = [m for m in members.values() if m.roles == {Role.PARENT}]
    assert len(students) == 550
    assert len(roster.classes) == 22
    assert roster.school_year == "2026/27"
    assert all(len(m.classes) == 1 for m in students)
    # Every student has a guardian; siblings share one.
    children = [c for p in parents for c in p.children]
    assert set(children) == {pid for pid, m in members.items() if Role.STUDENT in m.roles}
    assert any(len(p.children) > 1 for p in parents)
    homeroom = [m for m in members.values() if m.homeroom_of]
    assert len(homeroom) == 22
    # Russian names with patronymics.
    person = roster.people["stu-1"]
    assert person.middle_name.endswith(("вич", "вна", "ич", "на"))


def test_sample_user_names_are_the_modules_transliteration() -> None:
    """The sample's user names are what the module makes of the same name typed into the
    console (one transliteration: «Юлия Яковлева» is ``iuliia.iakovleva`` in both), the
    prefix in front and a number behind a name already taken."""
    users = list(csv.DictReader(io.StringIO(make_school(550, prefix="b1-")["users.csv"])))
    for user in users:
        stem = login_stem(PersonName(user["familyName"], user["givenName"]))
        assert user["username"].removeprefix("b1-").rstrip("0123456789") == stem, user
    names = {u["username"] for u in users}
    assert len(names) == len(users)
    assert any("ia." in n or "iu" in n for n in names)


def test_sample_is_deterministic() -> None:
    assert make_school(500) == make_school(500)
    assert make_school(500, seed=1) != make_school(500)


def test_zip_round_trip() -> None:
    files = zip_files(to_zip(make_school(100)))
    assert set(files) >= {"orgs.csv", "classes.csv", "users.csv", "enrollments.csv"}
    assert read_files(files).people


def test_malformed_csv_gets_line_numbers() -> None:
    files = sample(60)
    users = files["users.csv"].decode().splitlines()
    users[4] = users[4].replace(",teacher,", ",pupil,")
    users[7] = users[7] + ",extra"
    files["users.csv"] = ("\n".join(users) + "\n").encode()
    enrollments = files["enrollments.csv"].decode().splitlines()
    enrollments[9] = enrollments[9].replace("cls-", "cls-missing-")
    files["enrollments.csv"] = ("\n".join(enrollments) + "\n").encode()
    with pytest.raises(RosterErrors) as e:
        read_files(files)
    problems = e.value.problems
    assert any(p.startswith("users.csv:5: роль 'pupil'") for p in problems), problems
    assert any(p.startswith("users.csv:8: ") and "values" in p for p in problems), problems
    assert any(p.startswith("enrollments.csv:10: класс") for p in problems), problems


def test_missing_file_and_column() -> None:
    files = sample(30)
    del files["orgs.csv"]
    with pytest.raises(RosterErrors, match=r"orgs\.csv: нет файла"):
        read_files(files)
    files = sample(30)
    files["classes.csv"] = b"sourcedId,title\nc1,7A\n"
    with pytest.raises(RosterErrors, match=r"classes\.csv:1: нет столбцов"):
        read_files(files)
    with pytest.raises(RosterErrors, match="not a ZIP"):
        zip_files(b"not a zip")


def test_sign_in_csv_is_printable() -> None:
    data = sign_in_csv(
        [SignIn("Иванова Анна Петровна", "ученик", "7А", "@anna:localhost", "ABCD-EFGH-JKLM")],
        "http://127.0.0.1:8008",
    )
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    assert text.splitlines()[1].split(";")[:5] == [
        "Иванова Анна Петровна",
        "ученик",
        "7А",
        "@anna:localhost",
        "ABCD-EFGH-JKLM",
    ]


BOT = "@parta-bot:localhost"
HOUR_MS = 3600 * 1000


def _event(event_id: str, sender: str, age_ms: int, kind: str = "m.room.message") -> Any:
    from mautrix.types import Event

    return Event.deserialize(
        {
            "type": kind,
            "event_id": event_id,
            "room_id": "!dm:localhost",
            "sender": sender,
            "origin_server_ts": 10 * 24 * HOUR_MS - age_ms,
            "content": {"msgtype": "m.text", "body": event_id}
            if kind == "m.room.message"
            else {"membership": "join"},
            **({"state_key": sender} if kind == "m.room.member" else {}),
        }
    )


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # newest first, as /messages?dir=b gives them
        ([("$c", "@ann:localhost", 1), ("$b", BOT, 2), ("$a", "@ann:localhost", 3)], ["$c"]),
        ([("$b", "@ann:localhost", 1), ("$a", "@ann:localhost", 2)], ["$a", "$b"]),
        ([("$a", BOT, 1)], []),
        ([], []),
        # a day-old command in a room the bot never spoke in is left alone
        ([("$b", "@ann:localhost", 1), ("$a", "@ann:localhost", 25 * HOUR_MS)], ["$b"]),
    ],
)
def test_catch_up_takes_the_messages_after_the_bots_last_word(
    history: list[tuple[str, str, int]], expected: list[str]
) -> None:
    from bridge.answered import to_catch_up

    events = [_event(*h) for h in history]
    events.insert(0, _event("$m", "@ann:localhost", 0, "m.room.member"))  # not a message
    taken = to_catch_up(events, BOT, now_ms=10 * 24 * HOUR_MS)
    assert [str(e.event_id) for e in taken] == expected
