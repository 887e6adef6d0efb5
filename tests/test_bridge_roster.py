"""Roster sync against a real Synapse with the module: ZIP to the bot, CLI, re-imports,
and the whole 550-student sample school.

An import makes the accounts and the school's structure; people join their rooms when
they first sign in with their printed code (see docs/bridge.md).
"""

import asyncio
import concurrent.futures
import csv
import io
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import UploadResponse

from bridge.config import load
from bridge.db import create_database
from devtools.homeserver import REPO_ROOT, HttpError
from parta_common.oneroster import read_files
from parta_common.roles import Role
from tests.bridge_env import BridgeEnv, bridge_env
from tests.data.make_sample_school import make_school, to_zip, write_dir
from tests.harness import User
from tests.roster_helpers import OPEN_ROOMS, api, wait_for_open_rooms, wait_for_rooms
from tests.test_bridge_bot import messages, open_dm, poll

IMPORT_DEADLINE = 400.0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeEnv]:
    with bridge_env(tmp_path_factory.mktemp("roster")) as running:
        yield running


@pytest.fixture(scope="module")
def operator(env: BridgeEnv) -> User:
    return env.hs.register("operator", admin=True)


def small_school(prefix: str = "", seed: int = 7) -> dict[str, str]:
    """Two classes (5А, 6А), 12 students with their guardians, teachers, administrators."""
    return make_school(12, seed=seed, school_id=f"{prefix}sch-1", prefix=prefix, grades=range(5, 7))


def state(env: BridgeEnv, user: User, room_id: str, event_type: str, key: str = "") -> Any:
    path = (
        f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/state/{event_type}/"
        f"{urllib.parse.quote(key)}"
    )
    return env.hs.request("GET", path, token=user.access_token)


def joined(env: BridgeEnv, operator: User, room_id: str) -> set[str]:
    """Who is joined to a room, asked through the admin API (the operator need not be in it)."""
    path = f"/_synapse/admin/v1/rooms/{urllib.parse.quote(room_id)}/members"
    members = env.hs.request("GET", path, token=operator.access_token)["members"]
    return set(members)


def people(env: BridgeEnv) -> dict[str, tuple[str, str]]:
    """source_id → (user_id, state) from the bot's database."""

    async def read() -> dict[str, tuple[str, str]]:
        db = create_database(load(env.bot.config_path).database)
        await db.start()
        try:
            rows = await db.fetch("SELECT source_id, user_id, state FROM roster_person")
            return {r["source_id"]: (r["user_id"], r["state"]) for r in rows}
        finally:
            await db.stop()

    # Also called from async tests: run on a thread with its own event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def test_malformed_csv_gets_line_numbers_and_changes_nothing(
    env: BridgeEnv, operator: User, tmp_path: Path
) -> None:
    files = small_school("bad-")
    lines = files["users.csv"].splitlines()
    teacher = next(i for i, line in enumerate(lines) if ",teacher," in line)
    lines[teacher] = lines[teacher].replace(",teacher,", ",pupil,")
    files["users.csv"] = "\n".join(lines) + "\n"
    files["enrollments.csv"] += "bad-enr-x,,,bad-cls-nope,bad-sch-1,bad-stu-1,student,false,,\n"
    out = env.bot.cli(*env.bot.signed_in(operator), str(write_dir(files, tmp_path / "bad")))
    assert out.returncode == 1
    assert f"users.csv:{teacher + 1}: роль 'pupil'" in out.stdout
    last = len(files["enrollments.csv"].splitlines())
    assert f"enrollments.csv:{last}: класс 'bad-cls-nope'" in out.stdout
    with pytest.raises(HttpError) as e:
        api(env.hs, "GET", "/schools/by_external_id/bad-sch-1", operator)
    assert e.value.status == 404
    assert people(env) == {}


async def test_zip_sent_to_the_bot_builds_the_school(env: BridgeEnv, operator: User) -> None:
    files = small_school()
    async with env.hs.client(operator) as client:
        room_id = await open_dm(env, client, operator)
        data = to_zip(files)
        upload, _ = await client.upload(
            io.BytesIO(data),
            content_type="application/zip",
            filename="school.zip",
            filesize=len(data),
        )
        assert isinstance(upload, UploadResponse), upload
        await client.room_send(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.file",
                "body": "school.zip",
                "url": upload.content_uri,
                "info": {"mimetype": "application/zip", "size": len(data)},
            },
        )

        def bot_said(fragment: str) -> dict[str, Any] | None:
            for e in messages(env, operator, room_id):
                if e["sender"] == env.bot_user_id and fragment in e["content"].get("body", ""):
                    return e
            return None

        plan = await poll(lambda: bot_said("План импорта"), "the plan")
        assert "учётных записей создать: " in plan["content"]["body"]
        assert "Применить?" in plan["content"]["body"]
        await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "да"})
        await poll(lambda: bot_said("Готово за"), "the import", IMPORT_DEADLINE)
        codes_event = await poll(lambda: bot_said("коды-для-входа.csv"), "the sign-in codes")
        download = await client.download(codes_event["content"]["url"])
        body: bytes = download.body
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    header, rows = rows[0], rows[1:]
    assert header[:5] == ["ФИО", "Роль", "Класс", "Логин", "Код для входа"]
    known = people(env)
    assert len(rows) == len(known)
    assert all(state == "created" for _, state in known.values())
    # Making the accounts did not look like failed logins in Synapse's log.
    log = env.hs.hs.log_path.read_text(encoding="utf-8", errors="replace")
    assert not [u for u, _ in known.values() if f"Attempted to login as {u} " in log]

    school = api(env.hs, "GET", "/schools/by_external_id/sch-1", operator)
    classes = api(env.hs, "GET", f"/schools/{school['school_id']}/classes", operator)["classes"]
    assert sorted(c["title"] for c in classes) == ["5А", "6А"]
    members = api(env.hs, "GET", f"/schools/{school['school_id']}/members", operator)["members"]
    by_user = {m["user_id"]: m for m in members}
    assert set(by_user) == {u for u, _ in known.values()}
    roles = [tuple(m["roles"]) for m in members]
    assert roles.count(("student",)) == 12
    assert roles.count(("administrator",)) == 3

    # Nobody has signed in yet: everyone is put into the school-wide rooms behind the
    # import, while nobody is syncing; the class's rooms fill as people first sign in.
    assert all(m.get("signed_in") is False for m in members)
    wait_for_open_rooms(
        env.hs, operator, [school["rooms"][k] for k in OPEN_ROOMS], set(by_user), 120
    )
    for cls in classes:
        for kind in ("class_space", "class_chat", "parents_chat"):
            assert not joined(env, operator, cls["rooms"][kind]) & set(by_user)

    # A student signs in with the printed code and finds the school in their spaces.
    student_row = next(r for r in rows if r[1] == "ученик")
    student = sign_in(env, student_row[3], student_row[4])
    me = api(env.hs, "GET", "/me", student)
    [mine] = me["schools"]
    assert mine["roles"] == ["student"]
    [class_id] = mine["classes"]
    cls = next(c for c in classes if c["class_id"] == class_id)
    assert student.user_id in joined(env, operator, cls["rooms"]["class_chat"])
    assert student.user_id in joined(env, operator, school["rooms"]["school_space"])

    # Power levels follow the roles: the homeroom teacher and the administrators.
    power = state(env, student, cls["rooms"]["class_chat"], "m.room.power_levels")
    admins = [m["user_id"] for m in members if "administrator" in m["roles"]]
    assert all(power["users"].get(a) == 100 for a in admins)
    homeroom = cls["homeroom"]
    assert homeroom is not None
    assert power["users"].get(homeroom) == 50
    assert power["users"].get(student.user_id, power.get("users_default", 0)) == 0
    # The student's guardians are in the parents chat and linked to the child.
    parents = [m["user_id"] for m in members if student.user_id in m.get("children", [])]
    assert parents
    assert not set(parents) & joined(env, operator, cls["rooms"]["parents_chat"])
    codes = {r[3]: r[4] for r in rows}
    for parent in parents:
        sign_in(env, parent, codes[parent])
    assert set(parents) <= joined(env, operator, cls["rooms"]["parents_chat"])
    assert student.user_id not in joined(env, operator, cls["rooms"]["parents_chat"])


def room_state(env: BridgeEnv, operator: User, room_id: str) -> dict[tuple[str, str], Any]:
    """A room's state through the admin API (the operator need not be in the room)."""
    path = f"/_synapse/admin/v1/rooms/{urllib.parse.quote(room_id)}/state"
    events = env.hs.request("GET", path, token=operator.access_token)["state"]
    return {(e["type"], e["state_key"]): e["content"] for e in events}


def sign_in(env: BridgeEnv, user_id: str, code: str) -> User:
    """Sign in to an imported account with its printed code, as Element would."""
    login = env.hs.request(
        "POST",
        "/_matrix/client/v3/login",
        {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": code,
        },
    )
    user = User(user_id, "", code, login["access_token"], login["device_id"])
    wait_for_rooms(env.hs, user)
    return user


def code_of(env: BridgeEnv, source_id: str) -> tuple[str, str]:
    """(user_id, sign-in code) the bot holds for a roster person."""

    async def read() -> tuple[str, str]:
        db = create_database(load(env.bot.config_path).database)
        await db.start()
        try:
            row = await db.fetchrow(
                "SELECT user_id, sign_in_code FROM roster_person WHERE source_id=$1", source_id
            )
            assert row is not None, source_id
            return str(row["user_id"]), str(row["sign_in_code"])
        finally:
            await db.stop()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def test_the_code_stops_working_once_a_password_is_set(env: BridgeEnv) -> None:
    user_id, code = code_of(env, "stu-3")
    person = sign_in(env, user_id, code)
    for attempt in ("WRNG-CODE-XXXX", "пароль-по-русски"):
        with pytest.raises(HttpError) as wrong:
            sign_in(env, user_id, attempt)
        assert wrong.value.status == 403, attempt
    # Element's «change password»: the code is the current password.
    env.hs.request(
        "POST",
        "/_matrix/client/v3/account/password",
        {
            "new_password": "a-password-of-my-own",
            "logout_devices": False,
            "auth": {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user_id},
                "password": code,
            },
        },
        token=person.access_token,
    )
    with pytest.raises(HttpError) as old:
        sign_in(env, user_id, code)
    assert old.value.status == 403
    assert sign_in(env, user_id, "a-password-of-my-own").user_id == user_id


async def test_an_administrator_gives_a_new_code_for_a_lost_one(
    env: BridgeEnv, operator: User
) -> None:
    """«новый код @логин» in a DM with the bot: the old code stops working."""
    roster = read_files({k: v.encode() for k, v in small_school().items()})
    parent = min(p.source_id for p in roster.people.values() if p.role is Role.PARENT)
    parent_id, old_code = code_of(env, parent)
    admin = sign_in(env, *code_of(env, "adm-1"))
    async with env.hs.client(admin) as client:
        room_id = await open_dm(env, client, admin)

        async def ask(text: str, fragment: str) -> str:
            before = len(messages(env, admin, room_id))
            await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text})

            def answered() -> str | None:
                for e in messages(env, admin, room_id)[before:]:
                    body = str(e["content"].get("body", ""))
                    if e["sender"] == env.bot_user_id and fragment in body:
                        return body
                return None

            answer: str = await poll(answered, f"the bot's answer to {text!r}")
            return answer

        answer = await ask(f"новый код {parent_id}", "Новый код для входа")
        new_code = answer.split(": ", 1)[1].split("\n", 1)[0].strip()
        with pytest.raises(HttpError):
            sign_in(env, parent_id, old_code)
        assert sign_in(env, parent_id, new_code).user_id == parent_id
        # Someone who set a password of their own gets no code: the bot says why.
        student_id, _ = code_of(env, "stu-3")
        refusal = await ask(f"новый код {student_id}", "уже задал свой пароль")
        assert refusal.startswith("Не получилось: ")
    # Only the school's administrators may: a student may not.
    school = api(env.hs, "GET", "/schools/by_external_id/sch-1", operator)
    student = sign_in(env, student_id, "a-password-of-my-own")
    with pytest.raises(HttpError) as e:
        api(
            env.hs,
            "POST",
            f"/schools/{school['school_id']}/members/{parent_id}/sign_in_code",
            student,
        )
    assert e.value.status == 403


def test_importing_again_changes_nothing(env: BridgeEnv, operator: User, tmp_path: Path) -> None:
    src = write_dir(small_school(), tmp_path / "same")
    dry = env.bot.cli(*env.bot.signed_in(operator), "--dry-run", str(src))
    assert dry.returncode == 0, dry.stderr
    assert "Изменений нет" in dry.stdout
    before = people(env)
    # As the README does: the operator's name and password from a file.
    again = env.bot.cli(*env.bot.signed_in(operator, login=True), str(src))
    assert again.returncode == 0, again.stderr
    assert "Изменений нет" in again.stdout
    assert people(env) == before


def test_a_changed_file_moves_a_student_and_removes_a_leaver(
    env: BridgeEnv, operator: User, tmp_path: Path
) -> None:
    files = small_school()
    # stu-1 moves from 5А to 6А; stu-2 leaves the school (the export marks the
    # student and the enrolment «tobedeleted», as OneRoster delta files do).
    files["enrollments.csv"] = (
        "\n".join(
            line.replace(",cls-5a,", ",cls-6a,") if ",stu-1," in line else line
            for line in files["enrollments.csv"].splitlines()
        )
        + "\n"
    )
    files["users.csv"] = (
        "\n".join(
            line.replace("stu-2,,", "stu-2,tobedeleted,", 1) if line.startswith("stu-2,") else line
            for line in files["users.csv"].splitlines()
        )
        + "\n"
    )
    # A teacher's surname changed (married): a rename, nothing else.
    users = [line.split(",") for line in files["users.csv"].splitlines()]
    teacher = next(row for row in users if row[5] == "teacher")
    teacher[9] = "Новосёлова"
    files["users.csv"] = "\n".join(",".join(row) for row in users) + "\n"
    roster = read_files({k: v.encode() for k, v in files.items()})
    # stu-1 has signed in (so has rooms to move between); stu-3 has not yet.
    sign_in(env, *code_of(env, "stu-1"))
    gone_parents = [
        p.source_id
        for p in roster.people.values()
        if "stu-2" in p.agent_ids and not any(a in roster.people for a in p.agent_ids)
    ]
    src = write_dir(files, tmp_path / "changed")
    dry = env.bot.cli(*env.bot.signed_in(operator), "--dry-run", str(src))
    assert "перевести между классами: 1" in dry.stdout, dry.stdout
    assert "5А → 6А" in dry.stdout
    assert f"выбывших убрать: {1 + len(gone_parents)}" in dry.stdout, dry.stdout
    new_name = roster.people[teacher[0]].display_name
    assert "переименовать: 1" in dry.stdout, dry.stdout
    assert f"→ {new_name}" in dry.stdout
    out = env.bot.cli(*env.bot.signed_in(operator), str(src))
    assert out.returncode == 0, out.stdout + out.stderr
    known = people(env)
    school = api(env.hs, "GET", "/schools/by_external_id/sch-1", operator)
    sid = school["school_id"]
    classes = {
        c["external_id"]: c
        for c in api(env.hs, "GET", f"/schools/{sid}/classes", operator)["classes"]
    }
    members = {
        m["user_id"]: m for m in api(env.hs, "GET", f"/schools/{sid}/members", operator)["members"]
    }
    moved_user = known["stu-1"][0]
    assert members[moved_user]["classes"] == [classes["cls-6a"]["class_id"]]
    assert known["stu-2"][0] not in members
    assert all(known[p][0] not in members for p in gone_parents)
    assert moved_user in joined(env, operator, classes["cls-6a"]["rooms"]["class_chat"])
    assert moved_user not in joined(env, operator, classes["cls-5a"]["rooms"]["class_chat"])
    teacher_id = known[teacher[0]][0]
    profile = env.hs.request(
        "GET", f"/_matrix/client/v3/profile/{urllib.parse.quote(teacher_id)}/displayname"
    )
    assert profile["displayname"] == new_name
    dry = env.bot.cli(*env.bot.signed_in(operator), "--dry-run", str(src))
    assert "Изменений нет" in dry.stdout


def test_a_restart_in_the_middle_finishes_without_duplicates(
    env: BridgeEnv, operator: User, tmp_path: Path
) -> None:
    files = small_school("r-", seed=11)
    src = write_dir(files, tmp_path / "restart")
    argv = [sys.executable, "-m", "bridge.roster_sync", "-c", str(env.bot.config_path)]
    proc = subprocess.Popen(
        [*argv, *env.bot.signed_in(operator), str(src)],
        cwd=env.bot.config_path.parent,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + IMPORT_DEADLINE
    try:
        while time.monotonic() < deadline:
            started = [s for s in people(env) if s.startswith("r-")]
            if len(started) >= 8 or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the import finished before it could be interrupted"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    half = {s: v for s, v in people(env).items() if s.startswith("r-")}
    assert half
    out = env.bot.cli(*env.bot.signed_in(operator), str(src))
    assert out.returncode == 0, out.stdout + out.stderr
    known = {s: v for s, v in people(env).items() if s.startswith("r-")}
    # Everyone who had an account or a claim keeps the same one.
    assert all(known[s][0] == v[0] for s, v in half.items())
    assert all(state == "created" for _, state in known.values())
    school = api(env.hs, "GET", "/schools/by_external_id/r-sch-1", operator)
    members = api(env.hs, "GET", f"/schools/{school['school_id']}/members", operator)["members"]
    assert sorted(m["user_id"] for m in members) == sorted(u for u, _ in known.values())
    # No second account for anyone: every user the server has with the prefix is known.
    listed = env.hs.request(
        "GET", "/_synapse/admin/v2/users?limit=1000&guests=false", token=operator.access_token
    )["users"]
    server_users = {u["name"] for u in listed if u["name"].startswith("@r-")}
    assert server_users == {u for u, _ in known.values()}
    again = env.bot.cli(*env.bot.signed_in(operator), "--dry-run", str(src))
    assert "Изменений нет" in again.stdout


@pytest.fixture
def rooms_at_sign_in(env: BridgeEnv) -> Iterator[None]:
    """Synapse with ``open_rooms_at_import: false`` for one test (restarted, and back as
    it was afterwards): nobody is joined to a room behind the import. For a test of
    something else at a size where those joins (about 5,300: 1,323 people, four rooms each)
    would share Synapse's one thread with it and with its sign-ins; the joins behind an
    import are tested in test_zip_sent_to_the_bot_builds_the_school, test_first_sign_in
    and test_school_morning."""
    with env.hs.module_config_changed(open_rooms_at_import=False):
        yield


@pytest.mark.usefixtures("rooms_at_sign_in")
def test_a_realistic_school_of_550_students(env: BridgeEnv, operator: User, tmp_path: Path) -> None:
    """The whole sample school (550 students, their guardians, 22 classes, the staff):
    the spaces, rooms, roles and power levels it should have; importing again is a no-op.
    (The school-wide rooms are joined at the sign-ins here: ``rooms_at_sign_in``.)"""
    files = make_school(550, seed=3, school_id="big-sch", prefix="big-")
    roster = read_files({k: v.encode() for k, v in files.items()})
    src = write_dir(files, tmp_path / "big")
    codes_file = tmp_path / "codes.csv"
    out = env.bot.cli(*env.bot.signed_in(operator), "--codes", str(codes_file), str(src))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "учётных записей создать: " in out.stdout

    wanted = roster.memberships("big-sch")
    ids = {sid: uid for sid, (uid, _) in people(env).items() if sid.startswith("big-")}
    assert set(ids) == set(wanted)
    school = api(env.hs, "GET", "/schools/by_external_id/big-sch", operator)
    sid = school["school_id"]
    classes = {
        c["external_id"]: c
        for c in api(env.hs, "GET", f"/schools/{sid}/classes", operator)["classes"]
    }
    assert set(classes) == {c for c in roster.classes if c.startswith("big-")}
    assert len(classes) == 22
    members = {
        m["user_id"]: m for m in api(env.hs, "GET", f"/schools/{sid}/members", operator)["members"]
    }
    assert set(members) == set(ids.values())
    # Everyone has the roles, classes and children the files give them.
    for source_id, m in wanted.items():
        got = members[ids[source_id]]
        assert set(got["roles"]) == {r.value for r in m.roles}, source_id
        assert set(got["classes"]) == {classes[c]["class_id"] for c in m.classes}, source_id
        assert set(got["children"]) == {ids[c] for c in m.children}, source_id
        assert set(got["homeroom_of"]) == {classes[c]["class_id"] for c in m.homeroom_of}
    roles = [tuple(m["roles"]) for m in members.values()]
    assert roles.count(("student",)) == 550

    # The school space lists every class's space; each class has its three rooms.
    space_state = room_state(env, operator, school["rooms"]["school_space"])
    children = {key for kind, key in space_state if kind == "m.space.child"}
    for cls in classes.values():
        assert {"class_space", "class_chat", "parents_chat"} <= set(cls["rooms"])
        assert cls["rooms"]["class_space"] in children

    # Power levels of every class chat: administrators 100, the class's teachers 50,
    # nobody else raised — set already, for people who have not signed in yet.
    admins = {u for u, m in members.items() if "administrator" in m["roles"]}
    for cls in classes.values():
        power = room_state(env, operator, cls["rooms"]["class_chat"])[("m.room.power_levels", "")]
        raised = {u for u, level in power["users"].items() if level > 0 and u in members}
        teachers = {
            u
            for u, m in members.items()
            if "teacher" in m["roles"]
            and (cls["class_id"] in m["teaches"] or cls["class_id"] in m["homeroom_of"])
        }
        assert {u: power["users"][u] for u in raised} == {
            **dict.fromkeys(teachers - admins, 50),
            **dict.fromkeys(admins, 100),
        }, cls["title"]

    # A student and a guardian sign in with their printed codes: their rooms are there.
    rows = list(csv.reader(io.StringIO(codes_file.read_text("utf-8-sig")), delimiter=";"))[1:]
    assert len(rows) == len(wanted)
    student_id = next(s for s, m in wanted.items() if m.roles == {Role.STUDENT})
    guardian_id = next(s for s, m in wanted.items() if student_id in m.children)
    [cls_id] = wanted[student_id].classes
    cls = classes[cls_id]
    for source_id, room in ((student_id, "class_chat"), (guardian_id, "parents_chat")):
        user_id, code = code_of(env, source_id)
        row = next(r for r in rows if r[3] == user_id)
        assert row[3:5] == [user_id, code]
        assert cls["title"] in row[2].split(", ")  # a parent's line names the child's class
        sign_in(env, user_id, code)
        assert user_id in joined(env, operator, cls["rooms"][room])
        assert user_id in joined(env, operator, school["rooms"]["school_space"])

    again = env.bot.cli(*env.bot.signed_in(operator), "--dry-run", str(src))
    assert again.returncode == 0, again.stderr
    assert "Изменений нет" in again.stdout
