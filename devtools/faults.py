"""Crash Parta's processes in the middle of work and check that nothing is lost or doubled.

Each round starts a piece of work, ``kill -9``s one process at a random point of it,
restarts it and checks the outcome:

* **import**: a roster import (``python -m bridge.roster_sync``, a school of two classes
  with students, guardians and staff) while Synapse or the bot is killed. The import is
  run again after the restart (as the operator would); then the roster equals the files
  (the CLI's dry run finds nothing to change), every person has exactly one account, and
  the school's members are exactly the imported people.
* **announcement**: scheduled announcements falling due within a few seconds while
  Synapse or the bot is killed. After the restart every one is sent, each exactly once.
* **lesson**: the teacher and students join a lesson on the SFU (its subprocess,
  reporting attendance to the module through its journal) and the SFU is killed after a
  random number of joins. After the restart the lesson can be joined again, and the
  attendance has every join — also of those who did not come back.

``python -m devtools.faults --rounds 10`` starts its own Synapse and bot (SQLite unless
``PARTA_TEST_DB=postgres``) and prints a line per round and a summary;
``tests/test_faults.py`` runs a bounded profile in ``make test``. ``--seed`` repeats a run.
"""

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import datetime
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import av
import yaml
from nio import RoomSendResponse

from bridge.api import carrying_out
from bridge.schedule import Scheduler
from devtools.homeserver import REPO_ROOT
from devtools.private_postgres import PrivateCluster, private_postgres
from parta_common.roles import Role
from parta_common.tokens import grant_for, sign_media_token
from sfu.client import LessonClient
from tests.bridge_env import BridgeEnv, bridge_env
from tests.broadcast_support import H264Track, ToneTrack, decode_lumas, publish
from tests.data.make_sample_school import make_school, write_dir
from tests.harness import User, free_port
from tests.roster_helpers import School, api, build_school
from tests.sfu_support import RunningSfu, running_sfu

VICTIMS: Final = ("synapse", "bot")
SCENARIOS: Final = ("import", "announcement", "lesson", "broadcast", "postgres", "disk")
# Liveness bounds (how long to wait for something that must happen), not timings.
IMPORT_DEADLINE: Final = 600.0
SENT_DEADLINE: Final = 180.0


@attrs.define
class Round:
    scenario: str
    victim: str
    # Where the kill fell: people imported before it, or seconds into the due window.
    point: str
    problems: list[str] = attrs.Factory(list)
    killed: bool = True

    def line(self) -> str:
        verdict = "ok" if not self.problems else "; ".join(self.problems)
        killed = "" if self.killed else " (finished before the kill)"
        fault = {"postgres": "restart", "disk full": "fill"}.get(self.victim, "kill -9")
        return f"{self.scenario:13} {fault} {self.victim:9} at {self.point:18}{killed} {verdict}"


def kill(env: BridgeEnv, victim: str, cluster: PrivateCluster | None = None) -> None:
    """``kill -9`` the victim, then start it again (as systemd or Docker would); PostgreSQL
    (a private cluster) is restarted, every connection to it closed."""
    if victim == "postgres":
        assert cluster is not None, "the postgres scenario needs a private cluster"
        cluster.restart()
    elif victim == "synapse":
        env.hs.proc.kill()
        env.hs.proc.wait()
        env.hs.restart()
        # The bot notices on its own (its calls fail and are retried); nothing restarts it.
    else:
        env.bot.stop(kill=True)
        env.bot.start()


def _in_thread(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine on its own loop (callable from sync and async code alike)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def bot_rows(env: BridgeEnv, query: str, *args: Any) -> list[Any]:
    async def read() -> list[Any]:
        async with env.bot_side() as (_, db, _module):
            return list(await db.fetch(query, *args))

    return list(_in_thread(read))


def people(env: BridgeEnv, prefix: str) -> dict[str, str]:
    """source_id → user_id of the people the bot has imported with ``prefix``."""
    rows = bot_rows(env, "SELECT source_id, user_id FROM roster_person")
    return {r["source_id"]: r["user_id"] for r in rows if r["source_id"].startswith(prefix)}


def _cli(env: BridgeEnv, operator: User, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.roster_sync",
            "-c",
            str(env.bot.config_path),
            *env.bot.signed_in(operator),
            *args,
        ],
        cwd=env.bot.config_path.parent,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=IMPORT_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return -9, out + "\n(did not finish: killed)"
    return proc.returncode, out


def import_round(
    env: BridgeEnv,
    operator: User,
    directory: Path,
    rnd: random.Random,
    victim: str,
    cluster: PrivateCluster | None = None,
) -> Round:
    prefix = f"f{secrets.token_hex(3)}-"
    src = write_dir(
        make_school(
            12,
            seed=rnd.randrange(10**6),
            school_id=f"{prefix}sch-1",
            prefix=prefix,
            grades=range(5, 7),
        ),
        directory / prefix,
    )
    kill_after = rnd.randint(1, 24)
    result = Round("import", victim, f"{kill_after} people")
    proc = _cli(env, operator, str(src))
    deadline = time.monotonic() + IMPORT_DEADLINE
    while proc.poll() is None and len(people(env, prefix)) < kill_after:
        if time.monotonic() > deadline:
            result.problems.append("the import made no progress")
            proc.kill()
            break
        time.sleep(0.05)
    result.killed = proc.poll() is None
    result.point = f"{len(people(env, prefix))} people"
    kill(env, victim, cluster)
    code, out = _finish(proc)
    # A crash of the server is a clear failure of the run (or survived): never a hang.
    if code not in (0, 1):
        result.problems.append(f"the interrupted import ended with {code}: {out[-400:]}")
    again = _cli(env, operator, str(src))
    code, out = _finish(again)
    if code != 0:
        result.problems.append(f"the import run again failed ({code}): {out[-400:]}")
        return result
    result.problems.extend(roster_problems(env, operator, src, prefix))
    return result


def roster_problems(env: BridgeEnv, operator: User, src: Path, prefix: str) -> list[str]:
    """What differs between the files and the roster (nothing, when all is well)."""
    problems = []
    dry = _cli(env, operator, "--dry-run", str(src))
    code, out = _finish(dry)
    if code != 0 or "Изменений нет" not in out:
        problems.append(f"the roster differs from the files: {out[-400:]}")
    known = people(env, prefix)
    if len(set(known.values())) != len(known):
        problems.append("two people share an account")
    listed = env.hs.request(
        "GET", "/_synapse/admin/v2/users?limit=10000&guests=false", token=operator.access_token
    )["users"]
    accounts = {u["name"] for u in listed if u["name"].startswith(f"@{prefix}")}
    if accounts != set(known.values()):
        extra = sorted(accounts - set(known.values()))[:5]
        problems.append(f"accounts not in the roster (duplicates?): {extra}")
    school = api(env.hs, "GET", f"/schools/by_external_id/{prefix}sch-1", operator)
    members = api(env.hs, "GET", f"/schools/{school['school_id']}/members", operator)["members"]
    if sorted(m["user_id"] for m in members) != sorted(known.values()):
        problems.append("the school's members are not the imported people")
    return problems


async def _messages(env: BridgeEnv, user: User, room_id: str) -> list[dict[str, Any]]:
    path = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/messages?dir=b&limit=200"
    return list(env.hs.request("GET", path, token=user.access_token)["chunk"])


async def _command(env: BridgeEnv, admin: User) -> str:
    """The administrator's command in a DM with the bot (what the posts are made on)."""
    async with env.hs.client(admin) as client:
        created = await client.room_create(invite=[env.bot_user_id], is_direct=True)
        room_id = getattr(created, "room_id", None)
        assert room_id, created
        members = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/joined_members"
        deadline = time.monotonic() + SENT_DEADLINE
        while (
            env.bot_user_id
            not in env.hs.request("GET", members, token=admin.access_token)["joined"]
        ):
            assert time.monotonic() < deadline, "the bot did not join the DM"
            await asyncio.sleep(0.2)
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "запланировано"}
        )
        assert isinstance(sent, RoomSendResponse), sent
        return str(sent.event_id)


async def _schedule(
    env: BridgeEnv, school: School, command: str, bodies: list[str], dues: list[float]
) -> list[str]:
    async with env.bot_side() as (config, db, module):
        scheduler = Scheduler(db, config, module)
        now = datetime.datetime.now(datetime.UTC)
        ids = []
        with carrying_out(command):
            for body, due in zip(bodies, dues, strict=True):
                scheduled = await scheduler.schedule(
                    school.rooms["announcements"],
                    body,
                    now + datetime.timedelta(seconds=due),
                    school.admin.user_id,
                )
                ids.append(scheduled.id)
        return ids


def announcement_round(
    env: BridgeEnv, school: School, rnd: random.Random, victim: str, count: int = 4
) -> Round:
    tag = secrets.token_hex(3)
    bodies = [f"Объявление {tag}-{i}: завтра уроки с 9:00" for i in range(count)]
    dues = sorted(rnd.uniform(0.5, 4.0) for _ in bodies)
    kill_at = rnd.uniform(0.0, 4.5)
    result = Round("announcement", victim, f"{kill_at:.1f} s of 4.0 s")
    command = _in_thread(lambda: _command(env, school.admin))
    ids = _in_thread(lambda: _schedule(env, school, command, bodies, dues))
    time.sleep(kill_at)
    kill(env, victim)
    deadline = time.monotonic() + SENT_DEADLINE
    while True:
        rows = bot_rows(env, "SELECT id, state FROM scheduled_message")
        states = {r["id"]: r["state"] for r in rows if r["id"] in ids}
        if all(states.get(i) in ("sent", "failed") for i in ids):
            break
        if time.monotonic() > deadline:
            result.problems.append(f"not all sent: {sorted(states.values())}")
            break
        time.sleep(0.3)
    if any(states.get(i) != "sent" for i in ids):
        result.problems.append(f"states {sorted(states.values())}")
    room = school.rooms["announcements"]
    chunk = _in_thread(lambda: _messages(env, school.admin, room))
    seen = [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]
    for body in bodies:
        if seen.count(body) != 1:
            result.problems.append(f"{body!r} is in the room {seen.count(body)} times")
    return result


async def _join(url: str, room: str, token: str) -> LessonClient:
    client = LessonClient(url, room, token)
    await client.connect(within=60)
    if client.joined is None:
        raise AssertionError("not admitted to the lesson")
    return client


def lesson_round(env: BridgeEnv, school: School, directory: Path, rnd: random.Random) -> Round:
    secret = env.hs.hs.module_config["media"]["token_secret"]
    room = school.class_a["rooms"]["class_chat"]
    quoted = urllib.parse.quote(room)
    lesson = api(env.hs, "POST", f"/rooms/{quoted}/lessons", school.teacher, {"title": "Физика"})
    teacher, students = school.teacher, school.students
    roles = {teacher.user_id: Role.TEACHER, **{s.user_id: Role.STUDENT for s in students}}

    def token(user: User) -> str:
        role = roles[user.user_id]
        return sign_media_token(
            secret, room, user.user_id, user.localpart, role.value, grant_for(role)
        )

    everyone = [teacher, *students]
    before = rnd.randint(1, len(everyone))
    linger = rnd.uniform(0.0, 0.5)
    result = Round("lesson", "sfu", f"{before} joins +{linger:.2f} s")
    sfu_dir = directory / f"sfu-{secrets.token_hex(3)}"
    sfu_dir.mkdir()
    config = {"homeserver_url": env.hs.base_url, "data_dir": str(sfu_dir / "data")}

    async def first_half(sfu: RunningSfu) -> None:
        clients = [await _join(sfu.url, room, token(user)) for user in everyone[:before]]
        await asyncio.sleep(linger)
        sfu.process.kill()
        sfu.process.wait()
        for client in clients:
            await client.close()

    async def second_half(url: str) -> None:
        # The teacher comes back; those who never came join now; the others stay away.
        for user in [teacher, *everyone[before:]]:
            client = await _join(url, room, token(user))
            await client.close()

    with running_sfu(sfu_dir, token_secret=secret, **config) as sfu:
        _in_thread(lambda: first_half(sfu))
    with running_sfu(sfu_dir, token_secret=secret, **config) as sfu:
        try:
            _in_thread(lambda: second_half(sfu.url))
        except (AssertionError, ConnectionError, TimeoutError) as e:
            result.problems.append(f"the lesson could not be joined again: {e!r}")
        path = f"/rooms/{quoted}/lessons/{lesson['lesson_id']}/attendance"
        expected = {u.user_id for u in everyone}
        deadline = time.monotonic() + SENT_DEADLINE
        while True:
            report = api(env.hs, "GET", path, teacher)
            present = {p["user_id"] for p in report["present"]}
            if expected <= present:
                break
            if time.monotonic() > deadline:
                result.problems.append(f"joins missing: {sorted(expected - present)}")
                break
            time.sleep(0.3)
    api(env.hs, "POST", f"/rooms/{quoted}/lessons/{lesson['lesson_id']}/end", teacher, {})
    return result


# The speaker's picture before and after the relay's restart (brightness tells them apart).
BEFORE_LUMA: Final = 60
AFTER_LUMA: Final = 180


@contextlib.contextmanager
def _relay(directory: Path, config: dict[str, Any]) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m broadcast_relay`` on ``config["listen_port"]``, until it listens."""
    path = directory / "relay.yaml"
    path.write_text(yaml.safe_dump(config))
    with (directory / "relay.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "broadcast_relay", "-c", str(path)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", config["listen_port"]), 1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the relay did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.ts"))


async def _speak_until(
    url: str, bid: str, token: str, luma: int, done: Callable[[], bool], then: Callable[[], None]
) -> None:
    """Publish a picture of ``luma`` until ``done()``, then call ``then`` while still live."""
    speaker = await publish(url, bid, token, H264Track(luma=luma), ToneTrack(loud=True))
    try:
        deadline = time.monotonic() + SENT_DEADLINE
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("the relay wrote no segments")
            await asyncio.sleep(0.1)
        then()
    finally:
        await speaker.pc.close()


def broadcast_round(env: BridgeEnv, school: School, directory: Path, rnd: random.Random) -> Round:
    secret = env.hs.hs.module_config["media"]["token_secret"]
    teacher = school.teacher
    path = f"/rooms/{urllib.parse.quote(school.class_a['rooms']['class_chat'])}/broadcasts"
    title = f"Линейка {secrets.token_hex(3)}"
    body = {"title": title, "speakers": [teacher.user_id], "recording": True}
    bid = api(env.hs, "POST", path, teacher, body)["broadcast_id"]
    token = api(env.hs, "POST", f"{path}/{bid}/speaker_token", teacher, {})["token"]
    before = rnd.randint(1, 3)
    result = Round("broadcast", "relay", f"{before} segments")
    relay_dir = directory / f"relay-{secrets.token_hex(3)}"
    relay_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "token_secret": secret,
        "homeserver_url": env.hs.base_url,
        "data_dir": str(relay_dir / "data"),
        "listen_port": port,
    }
    kept = relay_dir / "data" / bid

    with _relay(relay_dir, config) as proc:

        def kill_relay() -> None:
            proc.kill()
            proc.wait()

        _in_thread(
            lambda: _speak_until(
                url, bid, token, BEFORE_LUMA, lambda: len(_segments(kept)) >= before, kill_relay
            )
        )
    first_run = set(_segments(kept))
    result.point = f"{len(first_run)} segments"
    with _relay(relay_dir, config):
        try:
            _in_thread(
                lambda: _speak_until(
                    url,
                    bid,
                    token,
                    AFTER_LUMA,
                    lambda: len(set(_segments(kept)) - first_run) >= 2,
                    lambda: api(env.hs, "POST", f"{path}/{bid}/end", teacher, {}),
                )
            )
        except (AssertionError, ConnectionError, TimeoutError) as e:
            result.problems.append(f"the broadcast could not be resumed: {e!r}")
            return result
        posted = _recording(env, school, bid)
    if posted is None:
        result.problems.append("no recording was posted")
        return result
    server, media_id = posted.removeprefix("mxc://").split("/", 1)
    mp4 = relay_dir / "downloaded.mp4"
    download = urllib.request.Request(
        f"{env.hs.base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
        headers={"Authorization": f"Bearer {school.admin.access_token}"},
    )
    with urllib.request.urlopen(download, timeout=60) as answer:
        mp4.write_bytes(answer.read())
    try:
        lumas = decode_lumas([mp4])
    except av.FFmpegError as e:
        result.problems.append(f"the recording does not play: {e!r}")
        return result
    # Pictures from before the kill and after the restart, in that order.
    near = [b for b in (BEFORE_LUMA, AFTER_LUMA) if any(abs(x - b) < 20 for x in lumas)]
    if near != [BEFORE_LUMA, AFTER_LUMA]:
        result.problems.append(f"the recording lacks a part: pictures near {near}")
    elif max(i for i, x in enumerate(lumas) if abs(x - BEFORE_LUMA) < 20) > min(
        i for i, x in enumerate(lumas) if abs(x - AFTER_LUMA) < 20
    ):
        result.problems.append("the recording's parts are out of order")
    return result


def _recording(env: BridgeEnv, school: School, bid: str) -> str | None:
    """The content URI of broadcast ``bid``'s recording in the documents room, once posted."""
    room = school.rooms["documents"]
    deadline = time.monotonic() + SENT_DEADLINE
    while time.monotonic() < deadline:
        chunk = _in_thread(lambda: _messages(env, school.admin, room))
        for event in chunk:
            content = event.get("content", {})
            if content.get("msgtype") == "m.video" and bid in json.dumps(content):
                return str(content["url"])
        time.sleep(0.5)
    return None


@contextlib.contextmanager
def full_disk(directory: Path, size: str = "16m") -> Iterator[Path]:
    """A small tmpfs mounted at ``directory`` (as root); unmounted afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True
    )
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; the file to delete to free it again."""
    filler = disk / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(bytes(65536))
            out.flush()
    return filler


def disk_round(directory: Path) -> Round:
    """An import applied through the API while the disk of Synapse's database (SQLite on a
    16 MB tmpfs) is full: it stops with a clear error; once space is freed, applied again,
    the roster equals the files."""
    from devtools.homeserver import HttpError
    from tests.harness import running_homeserver

    result = Round("disk", "disk full", "import")
    synapse = directory / f"synapse-{secrets.token_hex(3)}"
    synapse.mkdir()
    with full_disk(directory / f"disk-{synapse.name}") as disk:
        (disk / "media_store").mkdir()
        (synapse / "homeserver.db").symlink_to(disk / "homeserver.db")
        (synapse / "media_store").symlink_to(disk / "media_store")
        with running_homeserver(synapse, module_config={}, backend="sqlite") as hs:
            operator = hs.register("op", admin=True)
            admin = hs.register("director")
            body = {"name": "Школа на полном диске", "administrators": [admin.user_id]}
            sid = api(hs, "POST", "/schools", operator, body)["school_id"]
            files = make_school(12, seed=5, prefix="df-", grades=range(5, 7))
            sent = {"files": {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}}
            planned = api(hs, "POST", f"/schools/{sid}/imports", admin, sent)
            path = f"/schools/{sid}/imports/{planned['import_id']}"
            filler = _fill(disk)
            try:
                api(hs, "POST", f"{path}/apply", admin, {})
            except HttpError as e:  # refused at once: it must say why
                if e.status >= 500 and e.body.get("errcode") != "M_RESOURCE_LIMIT_EXCEEDED":
                    result.problems.append(f"apply on a full disk: {e.status} {e.body}")
            state = _settled(hs, path, admin)
            error = state.get("error") or {}
            if state["state"] != "failed" or error.get("errcode") != "M_RESOURCE_LIMIT_EXCEEDED":
                result.problems.append(f"on a full disk: {state['state']} {error}")
            elif " / " not in error.get("error", ""):
                result.problems.append(f"the error is not in Russian and English: {error}")
            filler.unlink()
            api(hs, "POST", f"{path}/apply", admin, {})
            state = _settled(hs, path, admin)
            if state["state"] != "done":
                result.problems.append(f"the retry ended {state['state']}: {state.get('error')}")
            again = api(hs, "POST", f"/schools/{sid}/imports", admin, sent)
            if not again["plan"]["empty"]:
                result.problems.append(
                    f"the roster differs from the files: {again['plan']['counts']}"
                )
    return result


def _settled(hs: Any, path: str, user: User) -> dict[str, Any]:
    deadline = time.monotonic() + IMPORT_DEADLINE
    while (state := api(hs, "GET", path, user))["state"] == "running":
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    return dict(state)


@attrs.define
class Report:
    rounds: list[Round] = attrs.Factory(list)

    @property
    def problems(self) -> list[str]:
        return [f"{r.scenario}/{r.victim}: {p}" for r in self.rounds for p in r.problems]


def run(
    env: BridgeEnv,
    directory: Path,
    repetitions: int,
    seed: int,
    scenarios: tuple[str, ...] = SCENARIOS,
    echo: Callable[[str], None] | None = None,
    cluster: PrivateCluster | None = None,
) -> Report:
    """Every scenario × victim, ``repetitions`` times, kill points drawn from ``seed``.

    ``postgres`` needs ``env`` on the private ``cluster`` it restarts."""
    rnd = random.Random(seed)
    operator = env.hs.register("operator", admin=True)
    school = build_school(env.hs, operator)
    report = Report()
    for _ in range(repetitions):
        for scenario in scenarios:
            one = {
                "lesson": ("sfu",),
                "broadcast": ("relay",),
                "postgres": ("postgres",),
                "disk": ("disk full",),
            }
            for victim in one.get(scenario, VICTIMS):
                if scenario == "import":
                    done = import_round(env, operator, directory, rnd, victim)
                elif scenario == "announcement":
                    done = announcement_round(env, school, rnd, victim)
                elif scenario == "broadcast":
                    done = broadcast_round(env, school, directory, rnd)
                elif scenario == "disk":
                    done = disk_round(directory)
                elif scenario == "postgres":
                    done = import_round(env, operator, directory, rnd, victim, cluster)
                else:
                    done = lesson_round(env, school, directory, rnd)
                report.rounds.append(done)
                if echo is not None:
                    echo(done.line())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="repetitions of each scenario")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", choices=SCENARIOS)
    parser.add_argument("--keep", type=Path, help="work (and keep the logs) in this folder")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    scenarios = (args.only,) if args.only else SCENARIOS
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            directory = args.keep
            directory.mkdir(parents=True, exist_ok=True)
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # PostgreSQL is restarted only when it is a private cluster; then everything runs on it.
        cluster = stack.enter_context(private_postgres()) if "postgres" in scenarios else None
        env = stack.enter_context(
            bridge_env(directory, pg_admin=cluster.admin if cluster else None)
        )
        report = run(env, directory, args.rounds, seed, scenarios, echo=print, cluster=cluster)
    killed = sum(r.killed for r in report.rounds)
    print(
        f"seed {seed}: {len(report.rounds)} rounds ({killed} killed mid-work) in "
        f"{time.monotonic() - started:.0f} s, problems: {len(report.problems)}"
    )
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
