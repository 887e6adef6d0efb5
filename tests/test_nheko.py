"""What people see in a real Matrix client no one here wrote: nheko 0.11.3 (Debian
bookworm) under Xvfb, against a real Synapse with the module and the bot.

One journey, as a new school's people would make it: the school is imported from
OneRoster files, a teacher signs in to nheko with the printed code and starts a lesson
and makes a poll by writing to the bot (nheko has no poll button), and posts a document
and an article from another client; a pupil signs in to nheko with their printed code,
finds the school and the class, cannot post in the announcements, reads what the teacher
posted, follows the lesson link and votes in a poll by replying with the answer's number;
a parent of two children sees both classes' parents chats and follows the link of a
parents' meeting. nheko is driven through its own login form (xdotool), rooms are opened
with its Ctrl+K switcher. Assertions read what nheko did, not pixels: the read markers
nheko's own device set on the server, nheko's settings and log, what the server answered
nheko's device, the URLs nheko handed to ``xdg-open``. Screenshots of every step are kept
under the test's temporary directory (pytest keeps the last runs), the important ones in
docs/clients/.
"""

import asyncio
import csv
import io
import json
import os
import secrets
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.homeserver import HttpError
from parta_common.events import POLL_START
from tests.bridge_env import BridgeEnv, bridge_env
from tests.content_school import PDF
from tests.data.make_sample_school import make_school, write_dir
from tests.harness import User
from tests.nheko_driver import Nheko, missing_tools, wait_for, xvfb
from tests.roster_helpers import api
from tests.test_bridge_bot import open_dm
from tests.test_bridge_roster import code_of, sign_in

# `make test` installs the tools and sets PARTA_REQUIRE_TOOLS: there a missing tool fails
# the journey instead of skipping it; a bare pytest elsewhere skips with the reason.
pytestmark = pytest.mark.skipif(
    bool(missing_tools()) and not os.environ.get("PARTA_REQUIRE_TOOLS"),
    reason=f"nheko journey needs {', '.join(missing_tools())} (make test installs them)",
)

# Seed 1 of the sample school has a family with children in both classes (5А and 6А).
SEED = 1


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeEnv]:
    with bridge_env(tmp_path_factory.mktemp("nheko")) as running:
        yield running


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def who(files: dict[str, str]) -> dict[str, str]:
    """Source IDs of the people the journey needs, read from the roster files."""
    users = list(csv.DictReader(io.StringIO(files["users.csv"])))
    enrollments = list(csv.DictReader(io.StringIO(files["enrollments.csv"])))
    class_of = {
        e["userSourcedId"]: e["classSourcedId"] for e in enrollments if e["role"] == "student"
    }
    children: dict[str, list[str]] = {}
    for u in users:
        if u["role"] == "student":
            for g in filter(None, u["agentSourcedIds"].split(",")):
                children.setdefault(g, []).append(u["sourcedId"])
    parent = next(
        g for g, kids in sorted(children.items()) if len({class_of[k] for k in kids}) == 2
    )
    student = sorted(children[parent])[0]
    teacher = next(
        e["userSourcedId"]
        for e in enrollments
        if e["role"] == "teacher"
        and e["classSourcedId"] == class_of[student]
        and e["primary"] == "true"
    )
    return {"parent": parent, "student": student, "teacher": teacher}


def request(env: BridgeEnv, token: str, method: str, path: str, body: Any = None) -> Any:
    return env.hs.request(method, path, body, token)


def fully_read(env: BridgeEnv, user_id: str, token: str, room_id: str) -> str | None:
    """The event nheko's device marked as read in ``room_id`` (nheko sets it on view)."""
    try:
        data = request(
            env,
            token,
            "GET",
            f"/_matrix/client/v3/user/{q(user_id)}/rooms/{q(room_id)}/account_data/m.fully_read",
        )
    except HttpError:
        return None
    return str(data["event_id"])


def joined_rooms(env: BridgeEnv, token: str) -> set[str]:
    return set(request(env, token, "GET", "/_matrix/client/v3/joined_rooms")["joined_rooms"])


def room_name(env: BridgeEnv, token: str, room_id: str) -> str:
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.name"
    return str(request(env, token, "GET", path)["name"])


def last_message(env: BridgeEnv, token: str, room_id: str) -> dict[str, Any]:
    """The room's newest ``m.room.message`` (``{}`` while there is none)."""
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/messages?dir=b&limit=20"
    chunk = request(env, token, "GET", path)["chunk"]
    return next((e for e in chunk if e["type"] == "m.room.message"), {})


def upload_pdf(env: BridgeEnv, token: str, name: str) -> str:
    req = urllib.request.Request(
        f"{env.hs.base_url}/_matrix/media/v3/upload?filename={q(name)}",
        data=PDF,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return str(json.load(r)["content_uri"])


def send(env: BridgeEnv, token: str, room_id: str, content: dict[str, Any]) -> str:
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{secrets.token_hex(6)}"
    return str(request(env, token, "PUT", path, content)["event_id"])


def bot_dm(env: BridgeEnv, user: User) -> str:
    async def open_it() -> str:
        async with env.hs.client(user) as client:
            return await open_dm(env, client, user)

    return asyncio.run(open_it())


def sign_in_with_nheko(nheko: Nheko, env: BridgeEnv, source_id: str) -> tuple[str, str]:
    """nheko's login form with the printed code; (user_id, the token nheko's device got)."""
    user_id, code = code_of(env, source_id)
    nheko.start()
    nheko.screenshot("welcome")
    token = nheko.log_in(user_id, code, env.hs.base_url)
    nheko.skip_encryption_setup()
    return user_id, token


def open_and_read(
    nheko: Nheko, env: BridgeEnv, user_id: str, token: str, room_id: str, name: str = ""
) -> None:
    """Open ``room_id`` by its name in nheko and wait until nheko marked its newest
    message read: then the room was on screen down to the last message."""
    nheko.open_room(name or room_name(env, token, room_id))
    newest = last_event(env, token, room_id)
    try:
        wait_for(
            lambda: fully_read(env, user_id, token, room_id) == newest,
            f"nheko to show {room_id} down to {newest}",
        )
    except AssertionError:
        nheko.screenshot("room-not-shown", settle=0)
        raise


def timeline(env: BridgeEnv, token: str, room_id: str) -> list[dict[str, Any]]:
    """The room's newest events, newest first."""
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/messages?dir=b&limit=30"
    chunk: list[dict[str, Any]] = request(env, token, "GET", path)["chunk"]
    return chunk


def last_event(env: BridgeEnv, token: str, room_id: str) -> str:
    """The newest event nheko shows in its timeline (a message or a poll)."""
    return str(timeline(env, token, room_id)[0]["event_id"])


def test_a_teacher_a_pupil_and_a_parent_in_nheko(env: BridgeEnv, tmp_path: Path) -> None:
    operator = env.hs.register("operator", admin=True)
    files = make_school(12, seed=SEED, school_id="sch-1", grades=range(5, 7))
    out = env.bot.cli(*env.bot.signed_in(operator), str(write_dir(files, tmp_path / "roster")))
    assert out.returncode == 0, out.stdout + out.stderr
    people = who(files)
    school = api(env.hs, "GET", "/schools/by_external_id/sch-1", operator)
    space_id = school["rooms"]["school_space"]
    announcements = school["rooms"]["announcements"]
    shots = tmp_path / "shots"

    with xvfb() as display:
        # -- the teacher: printed code, then «урок 5А Дроби» to the bot from nheko --
        teacher_id, teacher_code = code_of(env, people["teacher"])
        phone = sign_in(env, teacher_id, teacher_code)  # the teacher's other device
        classes = api(env.hs, "GET", f"/schools/{school['school_id']}/classes", phone)
        mine = next(c for c in classes["classes"] if teacher_id in json.dumps(c))
        class_chat = mine["rooms"]["class_chat"]
        dm = bot_dm(env, phone)
        nheko = Nheko(display, tmp_path / "teacher", shots / "teacher")
        try:
            _, token = sign_in_with_nheko(nheko, env, people["teacher"])
            nheko.screenshot("rooms")
            bot_name = request(
                env, token, "GET", f"/_matrix/client/v3/profile/{q(env.bot_user_id)}/displayname"
            )["displayname"]
            open_and_read(nheko, env, teacher_id, token, dm, name=bot_name)
            label = f"{mine['grade']}{mine['letter']}"

            def ask_bot(text: str) -> str:
                """Type ``text`` into nheko's composer; the bot's next answer."""
                before = last_message(env, token, dm).get("event_id")
                nheko.send(text)

                def answer() -> str | None:
                    message = last_message(env, token, dm)
                    if message.get("sender") != env.bot_user_id or message["event_id"] == before:
                        return None
                    return str(message["content"]["body"])

                return str(wait_for(answer, f"the bot's answer to {text!r}"))

            assert "начат" in ask_bot(f"урок {label} Дроби")
            nheko.screenshot("lesson-started-by-the-bot")
            # nheko 0.11 has no poll button: the bot makes the poll.
            ask_bot(f"опрос {label} Когда пишем контрольную? | Во вторник | В четверг")
            nheko.screenshot("poll-made-by-the-bot")
        finally:
            nheko.stop()
        poll = next(
            e for e in timeline(env, phone.access_token, class_chat) if e["type"] == POLL_START
        )

        # nheko cannot attach a Parta block to a file, nor write an article: the document
        # and the article come from the teacher's other client.
        send(
            env,
            phone.access_token,
            class_chat,
            {
                "msgtype": "m.file",
                "body": "domashka.pdf",
                "url": upload_pdf(env, phone.access_token, "domashka.pdf"),
                "info": {"size": len(PDF), "mimetype": "application/pdf"},
                "org.parta.document": {"title": "Домашнее задание на неделю"},
            },
        )
        request(
            env,
            phone.access_token,
            "POST",
            f"/_synapse/client/parta/v1/rooms/{q(class_chat)}/articles",
            {
                "title": "Экскурсия в музей",
                "html": "<p>В пятницу идём в <b>Музей Мирового океана</b>. Сбор в 9:00.</p>",
                "publish": True,
            },
        )

        # -- the pupil: printed code, the school, the announcements, the class chat --
        nheko = Nheko(display, tmp_path / "student", shots / "student")
        try:
            student_id, token = sign_in_with_nheko(nheko, env, people["student"])
            assert {space_id, announcements, class_chat} <= joined_rooms(env, token)
            nheko.screenshot("school-rooms")
            open_and_read(nheko, env, student_id, token, announcements)
            nheko.screenshot("announcements-read-only")
            # nheko offers no composer there (it reads the power levels); were it to
            # send, this is what the server answers its device:
            with pytest.raises(HttpError) as refused:
                send(env, token, announcements, {"msgtype": "m.text", "body": "привет"})
            assert refused.value.status == 403, refused.value
            assert "только учителя и администрация" in refused.value.body["error"]
            open_and_read(nheko, env, student_id, token, class_chat)
            nheko.screenshot("class-chat")
            # nheko 0.11 drops the poll event itself (it predates MSC3381); the pupil
            # reads its companion notice, which refers to it.
            notice = next(
                e
                for e in timeline(env, token, class_chat)
                if e["content"].get("m.relates_to", {}).get("event_id") == poll["event_id"]
            )
            assert notice["content"]["msgtype"] == "m.notice"
            assert (
                "Когда пишем контрольную?\n1. Во вторник\n2. В четверг" in notice["content"]["body"]
            )
            # The lesson link is a link: a click hands it to the desktop's browser
            # (here a stand-in that records it) — the lesson page.
            lesson_text = next(
                e["content"]["body"]
                for e in timeline(env, token, class_chat)
                if e["type"] == "m.room.message" and "/lesson/" in e["content"].get("body", "")
            )
            lesson_url = lesson_text[lesson_text.index("http") :].split()[0]
            link = nheko.find_link()
            assert link is not None, "no link drawn in the class chat"
            nheko.click(link)
            wait_for(lambda: nheko.opened_urls, "nheko to open the lesson link")
            assert nheko.opened_urls == [lesson_url]
            assert "/lesson/" in lesson_url
            # The pupil votes by replying with the answer's number (nheko: Alt+Up picks
            # the newest message to reply to; a person double-clicks it).
            created = request(
                env,
                phone.access_token,
                "POST",
                f"/_synapse/client/parta/v1/rooms/{q(class_chat)}/polls",
                {
                    "question": "Идём в музей в пятницу?",
                    "answers": [{"text": "Да"}, {"text": "Нет"}],
                },
            )
            poll_url = f"/_synapse/client/parta/v1/polls/{created['poll_id']}"
            answers = [a["id"] for a in request(env, token, "GET", poll_url)["answers"]]
            newest = last_event(env, token, class_chat)
            wait_for(
                lambda: fully_read(env, student_id, token, class_chat) == newest,
                "nheko to show the new poll's notice",
            )
            nheko.reply_to_newest("1")
            wait_for(
                lambda: request(env, token, "GET", poll_url)["my_answers"] == [answers[0]],
                "the reply to count as the pupil's vote",
            )
            vote = last_message(env, token, class_chat)
            assert vote["sender"] == student_id
            assert vote["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == newest
            nheko.screenshot("voted-by-reply")
        finally:
            nheko.stop()

        # -- the parent of two children: both classes' parents chats, and the
        # parents' meeting the teacher started there as a lesson --
        meeting = api(
            env.hs,
            "POST",
            f"/rooms/{q(mine['rooms']['parents_chat'])}/lessons",
            phone,
            {"title": "Родительское собрание"},
        )
        nheko = Nheko(display, tmp_path / "parent", shots / "parent")
        try:
            parent_id, token = sign_in_with_nheko(nheko, env, people["parent"])
            names = {room_name(env, token, r): r for r in joined_rooms(env, token)}
            assert {"5А — родители", "6А — родители"} <= set(names), names
            assert not any("класс" in name for name in names), names
            nheko.screenshot("parent-rooms")
            open_and_read(nheko, env, parent_id, token, names[f"{label} — родители"])
            nheko.screenshot("parents-chat")
            link = nheko.find_link()
            assert link is not None, "no link drawn in the parents chat"
            nheko.click(link)
            wait_for(lambda: nheko.opened_urls, "nheko to open the meeting's link")
            [opened] = nheko.opened_urls
            assert "/lesson/" in opened
            assert f"lesson={meeting['lesson_id']}" in opened
        finally:
            nheko.stop()
