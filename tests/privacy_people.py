"""A seeded person for the export and erasure tests: 7А's first student, who wrote in
the class chat, uploaded a file, answered a quiz, came to a lesson and has a consent on
paper — beside a classmate who did the same, whose data must never show up in theirs."""

import json
import secrets
import sqlite3
import time
import urllib.parse
import urllib.request
from typing import Any

import attrs

from parta_common import tokens
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import API, School, api, build_school, wait_for_rooms

SECRET = secrets.token_urlsafe(32)
MODULE_CONFIG = {"media": {"enabled": True, "token_secret": SECRET}}


@attrs.define
class Seeded:
    school: School
    room_id: str
    subject: User
    classmate: User
    media_ids: list[str]
    file_bytes: bytes
    messages: list[str]
    poll_id: str


def raw(
    hs: RunningHomeserver,
    method: str,
    path: str,
    token: str | None,
    data: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], bytes]:
    """A request whose answer may not be JSON (a zip): status, headers, body."""
    req = urllib.request.Request(f"{hs.base_url}{path}", data=data, method=method)
    req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def upload(hs: RunningHomeserver, user: User, data: bytes, name: str) -> str:
    """Upload to Synapse's media repository; the mxc URI."""
    path = f"/_matrix/media/v3/upload?filename={urllib.parse.quote(name)}"
    status, _, body = raw(hs, "POST", path, user.access_token, data, "application/pdf")
    assert status == 200, body
    uri: str = json.loads(body)["content_uri"]
    return uri


def send(hs: RunningHomeserver, user: User, room_id: str, content: dict[str, Any]) -> str:
    room = urllib.parse.quote(room_id, safe="")
    txn = secrets.token_hex(8)
    path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"
    answer = hs.request("PUT", path, content, user.access_token)
    event_id: str = answer["event_id"]
    return event_id


def attendance(hs: RunningHomeserver, room_id: str, user: User, start: int) -> None:
    token = tokens.sign_service_token(SECRET, tokens.SERVICE_SFU)
    session = secrets.token_hex(4)
    events = [
        {"kind": kind, "room_id": room_id, "user_id": user.user_id, "session_id": session,
         "ts": start + offset, "display_name": user.localpart, "role": "student"}
        for kind, offset in (("join", 0), ("leave", 40 * 60 * 1000))
    ]  # fmt: skip
    body = json.dumps({"events": events}).encode()
    status, _, answer = raw(hs, "POST", f"{API}/internal/attendance", token, body)
    assert status == 200, answer


def seed(
    hs: RunningHomeserver, messages: int = 3, files: int = 1, made_by_parta: bool = False
) -> Seeded:
    """``made_by_parta``: the subject is a pupil the school's roster made an account for
    (a sign-in code; signed in once), whose account a school's erasure may take, not
    7А's first student (an account of their own, registered on the server)."""
    school = build_school(hs, hs.register("operator", admin=True))
    subject, classmate = school.students[0], school.students[1]
    if made_by_parta:
        subject = pupil_made_by_parta(hs, school)
    for user in (subject, classmate):
        wait_for_rooms(hs, user)
    room_id = school.class_a["rooms"]["class_chat"]
    path = f"/schools/{school.school_id}/members/{subject.user_id}/consents"
    api(
        hs,
        "PUT",
        path,
        school.admin,
        {"consents": {"video_lessons": True}, "document_number": "№ 12"},
    )

    file_bytes = b"%PDF-1.4 homework of the subject " + secrets.token_bytes(64)
    media_ids = []
    for n in range(files):
        uri = upload(hs, subject, file_bytes, f"homework-{n}.pdf")
        media_ids.append(uri.rsplit("/", 1)[1])
        send(hs, subject, room_id, {"msgtype": "m.file", "body": f"homework-{n}.pdf", "url": uri})
    texts = [f"Сообщение ученика № {n}" for n in range(messages)]
    for text in texts:
        send(hs, subject, room_id, {"msgtype": "m.text", "body": text})
    other_uri = upload(hs, classmate, b"%PDF-1.4 the classmate's", "other.pdf")
    send(hs, classmate, room_id, {"msgtype": "m.text", "body": "Чужое сообщение одноклассника"})
    send(hs, classmate, room_id, {"msgtype": "m.file", "body": "other.pdf", "url": other_uri})

    quiz = api(
        hs,
        "POST",
        f"/rooms/{urllib.parse.quote(room_id, safe='')}/polls",
        school.teacher,
        {"question": "Столица России?", "quiz": True,
         "answers": [{"text": "Москва", "correct": True}, {"text": "Казань"}]},
    )  # fmt: skip
    poll_id = quiz["poll_id"]
    answers = api(hs, "GET", f"/polls/{poll_id}", subject)["answers"]
    api(hs, "POST", f"/polls/{poll_id}/votes", subject, {"answers": [answers[0]["id"]]})
    api(hs, "POST", f"/polls/{poll_id}/votes", classmate, {"answers": [answers[1]["id"]]})
    api(hs, "POST", f"/polls/{poll_id}/end", school.teacher)

    start = int(time.time() * 1000) - 3_600_000
    attendance(hs, room_id, subject, start)
    attendance(hs, room_id, classmate, start)
    return Seeded(school, room_id, subject, classmate, media_ids, file_bytes, texts, poll_id)


def pupil_made_by_parta(hs: RunningHomeserver, school: School) -> User:
    """A pupil of 7А whose account the school's roster made (a sign-in code), signed in."""
    from synapse_module.roster.core import CODE_ALPHABET

    localpart = f"pupil-{secrets.token_hex(4)}"
    user_id = f"@{localpart}:{hs.server_name}"
    raw_code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    code = f"{raw_code[:4]}-{raw_code[4:8]}-{raw_code[8:]}"
    entry = {
        "user_id": user_id,
        "roles": ["student"],
        "classes": [school.class_a["class_id"]],
        "account": {"display_name": "Ученик Школы", "sign_in_code": code},
    }
    api(hs, "POST", f"/schools/{school.school_id}/members/batch", school.admin,
        {"members": [entry]})  # fmt: skip
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": code,
    }
    login = hs.request("POST", "/_matrix/client/v3/login", body)
    return User(user_id, localpart, code, login["access_token"], login["device_id"])


def rows(
    hs: RunningHomeserver, statement: str, args: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Read the homeserver's database directly (the scan is the test's own eyes)."""
    if hs.hs.postgres is not None:
        import psycopg2

        conn = psycopg2.connect(**hs.hs.postgres.connect_args())
        try:
            with conn, conn.cursor() as cur:
                cur.execute(statement.replace("?", "%s"), args)
                return list(cur.fetchall())
        finally:
            conn.close()
    lite = sqlite3.connect(hs.hs.directory / "homeserver.db")
    try:
        return list(lite.execute(statement, args).fetchall())
    finally:
        lite.close()
