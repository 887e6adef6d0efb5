"""Retention (#12 item 5): a school's rules within the operator's limits; applied, they
put m.room.retention into the school's rooms (an archived class's too), delete
attendance and broadcast recordings older than the rule and nothing younger, and trim
the audit log's front with an anchor that verify starts from.

Nothing sleeps. Attendance carries its clock in the data (sessions reported as of long
ago). Recordings and audit entries keep their real time; the module's "now" is a file
the test sets (``PARTA_TEST_CLOCK_FILE``), put exactly the rule's days after a real
moment between what must go and what must stay."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest
import yaml

from devtools.homeserver import HttpError
from parta_common import tokens
from parta_common.roles import Role
from synapse_module.audit import GENESIS, TRIM_ACTION, Anchor, Entry, entry_hash
from synapse_module.broadcasts.rules import posted_recording, recording_school
from synapse_module.clock import CLOCK_FILE_VARIABLE
from synapse_module.config import RetentionLimits
from synapse_module.privacy.rules import (
    DAY_MS,
    Break,
    audit_trim_point,
    first_break,
    retention_cutoff,
    retention_refusal,
)
from synapse_module.roster.rules import Person, RoomKind, SchoolRoom, Standing
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.privacy_people import MODULE_CONFIG, SECRET, attendance, raw, rows, send
from tests.roster_helpers import API, School, api, build_school, wait_for_rooms
from tests.test_privacy import both_verify

LIMITS = RetentionLimits()


@pytest.mark.parametrize(
    ("kind", "days", "refused"),
    [
        ("class_chat", 365, None),
        ("class_chat", 1825, None),
        ("class_chat", 1826, (30, 1825)),
        ("attendance", 29, (30, 1095)),
        ("attendance", 30, None),
        ("attendance", 1096, (30, 1095)),
        ("parents_chat", 1, (30, 1825)),
        ("recordings", 1095, None),
        ("recordings", 1096, (30, 1095)),
        ("audit", 1825, None),
        ("audit", 29, (30, 1825)),
    ],
)
def test_a_schools_rule_lies_within_the_operators_limits(
    kind: str, days: int, refused: tuple[int, int] | None
) -> None:
    assert retention_refusal(kind, days, LIMITS) == refused


def test_the_cutoff_is_the_rule_before_now() -> None:
    assert retention_cutoff(100 * DAY_MS, 30) == 70 * DAY_MS


# -- the audit log's front, as a table -----------------------------------------------


def _chain(spec: list[tuple[int, str | None]]) -> list[Entry]:
    """Entries (ts in days, school) chained from #1."""
    entries, prev = [], GENESIS
    for seq, (day, school) in enumerate(spec, start=1):
        fields = (seq, prev, f"aud_{seq}", day * DAY_MS, "@a:x", "member.put", school, None, "{}")
        entries.append(Entry(*fields, hash=entry_hash(*fields)))
        prev = entries[-1].hash
    return entries


# Now is day 1000; school s1 keeps 100 days (cutoff day 900), s2 keeps 500 (day 500);
# the rest keep the operator's limit, 800 days (day 200).
NOW_CUTOFFS = {"s1": 900 * DAY_MS, "s2": 500 * DAY_MS}
LIMIT_CUTOFF = 200 * DAY_MS
MIXED = _chain([(100, "s1"), (150, None), (300, "s1"), (400, "s2"), (600, "s2"), (950, "s1")])


@pytest.mark.parametrize(
    ("case", "entries", "expected"),
    [
        # Each of #1–#4 is older than its own rule (s2's day 400 < 500); s2's day-600
        # entry is not: the front goes through #4, #5 and all after it stay.
        ("mixed schools", MIXED, 4),
        # An entry of no school keeps the operator's limit: day 150 < 200 goes.
        ("no school", MIXED[:2], 2),
        # A young entry first: nothing goes, even the older ones behind it.
        ("young first", _chain([(950, "s1"), (100, "s1")]), None),
        # A school without a rule keeps the operator's limit (day 300 > 200 stays).
        ("school without rule", _chain([(100, "s3"), (300, "s3")]), 1),
        # The walk stops before a broken entry: the evidence stays.
        ("edited", [MIXED[0], attrs.evolve(MIXED[1], actor="@b:x"), *MIXED[2:]], 1),
        ("missing", [MIXED[0], *MIXED[2:]], 1),
        ("empty", [], None),
    ],
)
def test_the_audit_front_goes_as_far_as_every_entrys_rule_lets_it(
    case: str, entries: list[Entry], expected: int | None
) -> None:
    point = audit_trim_point(entries, (0, GENESIS), NOW_CUTOFFS, LIMIT_CUTOFF)
    assert (point.seq if point else None) == expected, case


def _trimmed(through: int) -> tuple[list[Entry], Anchor]:
    """MIXED with its front through ``through`` removed and the audit.trim entry added."""
    last = MIXED[through - 1]
    details = json.dumps({"through_hash": last.hash, "through_seq": last.seq, "removed": through})
    seq = len(MIXED) + 1
    fields = (seq, MIXED[-1].hash, "aud_trim", 2000, "@a:x", TRIM_ACTION, None, None, details)
    trim = Entry(*fields, hash=entry_hash(*fields))
    return [*MIXED[through:], trim], Anchor(last.seq, last.hash, 2000, through, "aud_trim")


KEPT, ANCHOR = _trimmed(4)
KEPT_HEAD = (KEPT[-1].seq, KEPT[-1].hash)


@pytest.mark.parametrize(
    ("case", "entries", "anchor", "expected"),
    [
        ("from the anchor", KEPT, ANCHOR, None),
        ("a kept entry edited", [attrs.evolve(KEPT[0], actor="@b:x"), *KEPT[1:]], ANCHOR,
         Break(5, "aud_5", "edited")),
        ("the first kept removed", KEPT[1:], ANCHOR, Break(5, None, "missing")),
        ("no anchor: the front is missing", KEPT, None, Break(1, None, "missing")),
        # Entries after the anchor removed by hand and the anchor moved over them: the
        # chain links, but the audit.trim entry names another anchor.
        ("anchor moved forward", KEPT[1:], attrs.evolve(ANCHOR, seq=5, hash=KEPT[0].hash),
         Break(5, "aud_trim", "anchor")),
        ("anchor's record gone", KEPT[:-1], ANCHOR, Break(7, None, "truncated")),
    ],
)  # fmt: skip
def test_verify_starts_from_the_anchor(
    case: str, entries: list[Entry], anchor: Anchor | None, expected: Break | None
) -> None:
    assert first_break(entries, KEPT_HEAD, anchor) == expected, case


# -- against the real Synapse ------------------------------------------------------


@attrs.define
class ModuleClock:
    """The module's clock: a file of Unix seconds the test rewrites."""

    path: Path

    def set_ms(self, ms: int) -> None:
        # Half a millisecond more, so that reading it back (float seconds × 1000,
        # truncated) gives ``ms`` exactly.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{(ms + 0.5) / 1000:.4f}", encoding="utf-8")
        tmp.replace(self.path)

    def real(self) -> None:
        self.set_ms(int(time.time() * 1000))


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> ModuleClock:
    made = ModuleClock(tmp_path_factory.mktemp("clock") / "now")
    made.real()
    return made


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory, clock: ModuleClock) -> Iterator[RunningHomeserver]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CLOCK_FILE_VARIABLE, str(clock.path))
        with running_homeserver(tmp_path_factory.mktemp("retention"), MODULE_CONFIG) as running:
            env.delenv(CLOCK_FILE_VARIABLE)
            yield running


@pytest.fixture(scope="module")
def operator(hs: RunningHomeserver) -> User:
    return hs.register("operator", admin=True)


@pytest.fixture(scope="module")
def school(hs: RunningHomeserver, operator: User) -> School:
    return build_school(hs, operator)


def sessions(hs: RunningHomeserver, school: School, room_id: str) -> list[dict[str, Any]]:
    found = rows(
        hs, "SELECT user_id, joined_at FROM parta_room_sessions WHERE room_id = ?", (room_id,)
    )
    return [{"user_id": u, "joined_at": j} for u, j in found]


def test_retention_removes_what_is_older_than_the_rule_and_nothing_younger(
    hs: RunningHomeserver, school: School, clock: ModuleClock
) -> None:
    clock.real()
    sid = school.school_id
    room = school.class_a["rooms"]["class_chat"]
    now = int(time.time() * 1000)
    old, young = school.students[0], school.students[1]
    attendance(hs, room, old, now - 400 * DAY_MS)  # ended 400 days ago (+40 min)
    attendance(hs, room, young, now - 300 * DAY_MS)
    attendance(hs, room, school.students[2], now - 2 * DAY_MS)

    set_rules = api(
        hs,
        "PUT",
        f"/schools/{sid}/retention",
        school.admin,
        {"rules": {"attendance": 365, "class_chat": 365, "parents_chat": 730}},
    )
    assert set_rules["rules"] == {"attendance": 365, "class_chat": 365, "parents_chat": 730}
    assert set_rules["limits"]["attendance"] == 1095

    applied = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    assert applied["attendance_removed"] == 1
    kept = {s["user_id"] for s in sessions(hs, school, room)}
    assert kept == {young.user_id, school.students[2].user_id}

    # The rooms carry the rule for Synapse's purge job, as m.room.retention.
    for kind, days in (("class_chat", 365), ("parents_chat", 730)):
        room_path = quote(school.class_a["rooms"][kind], safe="")
        path = f"/_matrix/client/v3/rooms/{room_path}/state/m.room.retention/"
        state = hs.request("GET", path, token=school.teacher.access_token)  # homeroom
        assert state == {"max_lifetime": days * DAY_MS}
    # Applied again: nothing more to do.
    again = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    assert again == {
        "school_id": sid,
        "rooms_changed": 0,
        "attendance_removed": 0,
        "recordings_removed": 0,
        "audit_removed": 0,
    }

    # A rule shortened to 250 days takes the 300-day-old session too.
    api(hs, "PUT", f"/schools/{sid}/retention", school.admin, {"rules": {"attendance": 250}})
    api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    assert {s["user_id"] for s in sessions(hs, school, room)} == {school.students[2].user_id}

    # Synapse's purge jobs are on in the generated config.
    config = yaml.safe_load((hs.hs.directory / "homeserver.yaml").read_text())
    assert config["retention"]["enabled"] is True


def test_retention_rules_are_the_administrators_and_within_limits(
    hs: RunningHomeserver, school: School
) -> None:
    sid = school.school_id
    with pytest.raises(HttpError) as e:
        api(hs, "PUT", f"/schools/{sid}/retention", school.admin, {"rules": {"attendance": 5000}})
    assert e.value.status == 400
    assert e.value.body["org.parta.message"]["id"] == "privacy.retention_out_of_range"
    for user in (school.teacher, school.parent):
        with pytest.raises(HttpError) as e:
            api(hs, "PUT", f"/schools/{sid}/retention", user, {"rules": {"attendance": 100}})
        assert e.value.status == 403
    entries = api(hs, "GET", f"/schools/{sid}/audit", school.admin)["entries"]
    assert any(e["action"] == "retention.put" for e in entries)


# -- recordings of broadcasts ------------------------------------------------------------

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)


def relay(hs: RunningHomeserver, broadcast_id: str, what: str, body: dict[str, Any]) -> Any:
    """The broadcast relay's call to the module (a service token per request)."""
    token = tokens.sign_service_token(SECRET, tokens.SERVICE_RELAY)
    path = f"{API}/internal/broadcasts/{broadcast_id}/{what}"
    status, _, answer = raw(hs, "POST", path, token, json.dumps(body).encode())
    assert status == 200, answer
    return json.loads(answer)


def post_recording(hs: RunningHomeserver, school: School, title: str) -> dict[str, Any]:
    """A recorded broadcast of 7А's chat, ended, its MP4 uploaded by the recorder account
    and posted by the module (as the relay does it): room, event and media IDs."""
    return post_recording_in(hs, school.class_a["rooms"]["class_chat"], school.teacher, title)


def post_recording_in(
    hs: RunningHomeserver, room_id: str, teacher: User, title: str
) -> dict[str, Any]:
    """:func:`post_recording` of a broadcast ``teacher`` runs in any room."""
    base = f"/rooms/{quote(room_id, safe='')}/broadcasts"
    body = {"title": title, "speakers": [teacher.user_id], "recording": True}
    broadcast_id = api(hs, "POST", base, teacher, body)["broadcast_id"]
    api(hs, "POST", f"{base}/{broadcast_id}/end", teacher, {})
    grant = relay(hs, broadcast_id, "recording_upload", {})
    login = {"type": "m.login.token", "token": grant["login_token"]}
    token = hs.request("POST", "/_matrix/client/v3/login", login)["access_token"]
    path = f"/_matrix/media/v3/upload?filename={quote(title)}.mp4"
    status, _, uploaded = raw(hs, "POST", path, token, MP4, "video/mp4")
    assert status == 200, uploaded
    uri = json.loads(uploaded)["content_uri"]
    hs.request("POST", "/_matrix/client/v3/logout", {}, token)
    posted = relay(hs, broadcast_id, "recording", {"content_uri": uri, "size": len(MP4)})
    return {**posted, "media_id": uri.rsplit("/", 1)[1]}


def event(hs: RunningHomeserver, user: User, room_id: str, event_id: str) -> dict[str, Any]:
    path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/event/{quote(event_id, safe='')}"
    found: dict[str, Any] = hs.request("GET", path, token=user.access_token)
    return found


def media_file(hs: RunningHomeserver, media_id: str) -> Path:
    root = Path(hs.hs.directory) / "media_store" / "local_content"
    return root / media_id[0:2] / media_id[2:4] / media_id[4:]


def test_a_recording_older_than_the_rule_goes_and_a_young_one_stays(
    hs: RunningHomeserver, school: School, clock: ModuleClock
) -> None:
    clock.real()
    sid = school.school_id
    # Beyond the operator's limits: refused, said in Russian and English, nothing stored.
    for kind, days in (("recordings", 1096), ("audit", 29)):
        body = {"rules": {"recordings": 60, kind: days}}
        with pytest.raises(HttpError) as e:
            api(hs, "PUT", f"/schools/{sid}/retention", school.admin, body)
        assert e.value.status == 400
        assert e.value.body["org.parta.message"] == {
            "id": "privacy.retention_out_of_range",
            "params": {
                "kind": kind,
                "days": days,
                "min": 30,
                "max": 1095 if kind == "recordings" else 1825,
            },
        }
        assert "Срок хранения" in e.value.body["error"] and "Retention" in e.value.body["error"]
    rules = api(hs, "GET", f"/schools/{sid}/retention", school.admin)
    assert "recordings" not in rules["rules"] and rules["limits"]["recordings"] == 1095
    api(hs, "PUT", f"/schools/{sid}/retention", school.admin, {"rules": {"recordings": 30}})
    old = post_recording(hs, school, "Линейка 1 сентября")
    young = post_recording(hs, school, "Последний звонок")
    assert old["room_id"] == young["room_id"] == school.rooms["documents"]
    reader = school.admin
    old_ts = event(hs, reader, old["room_id"], old["event_id"])["origin_server_ts"]
    young_ts = event(hs, reader, young["room_id"], young["event_id"])["origin_server_ts"]
    assert young_ts - old_ts >= 2
    for posted in (old, young):
        assert media_file(hs, posted["media_id"]).is_file()

    # "Now" is 30 days after a moment between the two: the first is older than the rule.
    clock.set_ms((old_ts + young_ts) // 2 + 30 * DAY_MS)
    applied = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    assert applied["recordings_removed"] == 1

    gone = event(hs, reader, old["room_id"], old["event_id"])
    assert gone["content"] == {} and "redacted_because" in gone["unsigned"]
    assert not media_file(hs, old["media_id"]).exists()
    for table, column, value in (
        ("local_media_repository", "media_id", old["media_id"]),
        ("content_media", "media_id", old["media_id"]),
        ("content_documents", "doc_id", old["event_id"]),
        ("parta_broadcast_recordings", "event_id", old["event_id"]),
    ):
        assert rows(hs, f"SELECT 1 FROM {table} WHERE {column} = ?", (value,)) == [], table
    kept = event(hs, reader, young["room_id"], young["event_id"])
    assert kept["content"]["url"].endswith("/" + young["media_id"])
    assert media_file(hs, young["media_id"]).read_bytes() == MP4

    # Audited, as the administrator who asked; applied again, nothing more goes.
    entries = api(hs, "GET", f"/schools/{sid}/audit", school.admin)["entries"]
    applies = [e for e in entries if e["action"] == "retention.apply"]
    assert applies[-1]["actor"] == school.admin.user_id
    assert applies[-1]["details"]["recordings_removed"] == 1
    again = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    assert again["recordings_removed"] == 0
    # Thirty days after the young one, it goes too.
    clock.set_ms(young_ts + 30 * DAY_MS + 1)
    applied = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    assert applied["recordings_removed"] == 1
    assert not media_file(hs, young["media_id"]).exists()
    clock.real()


BROADCAST_BLOCK = {"org.parta.broadcast": {"broadcast_id": "brc_1", "created_by": "@t:x"}}


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ({"msgtype": "m.video", "url": "mxc://x/abc", **BROADCAST_BLOCK}, ("brc_1", "abc")),
        ({"msgtype": "m.video", "url": "mxc://x/abc"}, None),  # a video, not a recording
        ({"msgtype": "m.file", "url": "mxc://x/abc", **BROADCAST_BLOCK}, None),
        ({"msgtype": "m.video", "url": "mxc://other/abc", **BROADCAST_BLOCK}, None),
        ({"msgtype": "m.video", "url": "mxc://x/", **BROADCAST_BLOCK}, None),
        ({"msgtype": "m.video", "url": "mxc://x/a/b", **BROADCAST_BLOCK}, None),
        ({"msgtype": "m.video", **BROADCAST_BLOCK}, None),
        ({"msgtype": "m.video", "url": "mxc://x/abc", "org.parta.broadcast": "brc_1"}, None),
        ({"msgtype": "m.video", "url": "mxc://x/abc", "org.parta.broadcast": {}}, None),
    ],
)
def test_what_the_backfill_takes_for_a_posted_recording(
    content: dict[str, Any], found: tuple[str, str] | None
) -> None:
    assert posted_recording(content, "x") == found


TEACHER = Standing("sch_a", frozenset({Role.TEACHER}))
COORDINATOR = Person("@c", {}, frozenset({"u"}))
UNIT_ROOM = SchoolRoom("!r", RoomKind.UNIT_ANNOUNCEMENTS, unit_id="u")
PARENT = Standing("sch_b", frozenset({Role.PARENT}))
ADMIN_B = Standing("sch_b", frozenset({Role.ADMINISTRATOR}))


@pytest.mark.parametrize(
    ("room", "creator", "school"),
    [
        # A school's room: the school's, whoever ran it.
        (SchoolRoom("!r", RoomKind.CLASS_CHAT, "sch_a"), COORDINATOR, "sch_a"),
        # A unit's room: no school's.
        (UNIT_ROOM, Person("@t", {"sch_a": TEACHER}), None),
        # A room of their own: the one school whose staff they are (a parent elsewhere too).
        (None, Person("@t", {"sch_a": TEACHER}), "sch_a"),
        (None, Person("@t", {"sch_a": TEACHER, "sch_b": PARENT}), "sch_a"),
        # Staff of two schools, a coordinator, nobody the roster knows: no school's.
        (None, Person("@t", {"sch_a": TEACHER, "sch_b": ADMIN_B}), None),
        (None, Person("@t", {"sch_a": TEACHER}, frozenset({"u"})), None),
        (None, Person("@x"), None),
    ],
)
def test_whose_rule_a_recording_follows(
    room: SchoolRoom | None, creator: Person, school: str | None
) -> None:
    assert recording_school(room, creator) == school


def job_runs(hs: RunningHomeserver, job: str, since: int) -> list[tuple[Any, ...]]:
    return rows(
        hs,
        "SELECT result FROM parta_job_runs WHERE job = ?"
        " AND started_ts >= ? AND finished_ts IS NOT NULL",
        (job, since),
    )


def restart_and_run(hs: RunningHomeserver, clock: ModuleClock, job: str) -> str:
    """Start Synapse again (the module's clock as ``clock`` says); ``job``'s result at
    start-up."""
    since = int(time.time() * 1000)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CLOCK_FILE_VARIABLE, str(clock.path))
        hs.restart()
    deadline = time.monotonic() + 120
    while not (runs := job_runs(hs, job, since)):
        assert time.monotonic() < deadline, f"the job {job} did not run at start-up"
        time.sleep(0.2)
    [(result,)] = runs
    return str(result)


def restart_and_backfill(hs: RunningHomeserver, clock: ModuleClock) -> str:
    """Start Synapse again as a database from before recordings were tracked would
    (step 4 just made: nothing read yet); the backfill's result at start-up."""
    hs.sql("UPDATE parta_broadcast_backfill SET scanned_to = 0, done_ts = NULL WHERE id = 1")
    result = restart_and_run(hs, clock, "recordings_backfill")
    assert rows(hs, "SELECT COUNT(*) FROM parta_broadcast_backfill WHERE done_ts IS NULL") == [(0,)]
    return result


def test_a_recording_posted_before_recordings_were_tracked_goes_by_the_rule(
    hs: RunningHomeserver, school: School, clock: ModuleClock
) -> None:
    """A recording posted before schema step 3 has no row in
    ``parta_broadcast_recordings``: the backfill at start-up finds it among Synapse's
    events (the service account's ``m.video`` with the broadcast block) and tracks it
    exactly as posting it would have; the school's rule then removes it. Run again, the
    backfill brings back nothing retention removed."""
    clock.real()
    sid = school.school_id
    api(hs, "PUT", f"/schools/{sid}/retention", school.admin, {"rules": {"recordings": 30}})
    posted = post_recording(hs, school, "Выпускной вечер")
    columns = "event_id, broadcast_id, room_id, school_id, media_id, posted_ts"
    tracked = rows(hs, f"SELECT {columns} FROM parta_broadcast_recordings ORDER BY event_id")
    [mine] = [r for r in tracked if r[0] == posted["event_id"]]
    assert mine[3] == sid and mine[4] == posted["media_id"]
    # Before the rule: no row of it.
    hs.sql("DELETE FROM parta_broadcast_recordings WHERE event_id = ?", (posted["event_id"],))

    assert restart_and_backfill(hs, clock) == "1 recordings tracked; done"
    # Tracked as posting it tracks it (school, media, posted time), the rest as it was.
    again = rows(hs, f"SELECT {columns} FROM parta_broadcast_recordings ORDER BY event_id")
    assert again == tracked

    # Thirty days after it was posted, the school's rule removes it.
    clock.set_ms(int(mine[5]) + 30 * DAY_MS + 1)
    applied = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    assert applied["recordings_removed"] == len(tracked)
    gone = event(hs, school.admin, posted["room_id"], posted["event_id"])
    assert gone["content"] == {} and "redacted_because" in gone["unsigned"]
    assert not media_file(hs, posted["media_id"]).exists()
    assert rows(hs, "SELECT event_id FROM parta_broadcast_recordings") == []

    # Read again from the start: a removed recording stays removed.
    clock.real()
    assert restart_and_backfill(hs, clock) == "0 recordings tracked; done"
    assert rows(hs, "SELECT event_id FROM parta_broadcast_recordings") == []


# -- recordings of broadcasts outside the school's rooms ----------------------------------


def own_room(hs: RunningHomeserver, user: User, name: str) -> str:
    """A room ``user`` creates, outside any school's structure."""
    body = {"name": name, "preset": "private_chat"}
    made = hs.request("POST", "/_matrix/client/v3/createRoom", body, user.access_token)
    return str(made["room_id"])


def tracked_school(hs: RunningHomeserver, event_id: str) -> list[tuple[Any, ...]]:
    query = "SELECT school_id FROM parta_broadcast_recordings WHERE event_id = ?"
    return rows(hs, query, (event_id,))


def test_a_teachers_recording_outside_the_schools_rooms_follows_the_schools_rule(
    hs: RunningHomeserver, school: School, clock: ModuleClock
) -> None:
    """A teacher of one school runs a recorded broadcast in a room of their own: the
    recording (posted there in their name) is the school's, and the school's rule
    removes it — redacted by the teacher, its file gone. Someone of no school broadcasts
    likewise: theirs is no school's, and the school's rule leaves it alone."""
    clock.real()
    sid = school.school_id
    api(hs, "PUT", f"/schools/{sid}/retention", school.admin, {"rules": {"recordings": 30}})
    teacher = school.teacher
    room = own_room(hs, teacher, "Собрание родителей 7А")
    mine = post_recording_in(hs, room, teacher, "Собрание родителей")
    assert mine["room_id"] == room and mine["sender"] == teacher.user_id
    assert tracked_school(hs, mine["event_id"]) == [(sid,)]
    lecturer = hs.register("lecturer")
    elsewhere = own_room(hs, lecturer, "Открытая лекция")
    theirs = post_recording_in(hs, elsewhere, lecturer, "Лекция о звёздах")
    assert tracked_school(hs, theirs["event_id"]) == [(None,)]

    posted_ts = event(hs, teacher, room, mine["event_id"])["origin_server_ts"]
    clock.set_ms(posted_ts + 30 * DAY_MS + 1)
    applied = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    clock.real()
    assert applied["recordings_removed"] == 1
    gone = event(hs, teacher, room, mine["event_id"])
    assert gone["content"] == {} and "redacted_because" in gone["unsigned"]
    assert gone["unsigned"]["redacted_because"]["sender"] == teacher.user_id
    assert not media_file(hs, mine["media_id"]).exists()
    assert tracked_school(hs, mine["event_id"]) == []
    # No school's rule touches the other.
    kept = event(hs, lecturer, elsewhere, theirs["event_id"])
    assert kept["content"]["url"].endswith("/" + theirs["media_id"])
    assert media_file(hs, theirs["media_id"]).read_bytes() == MP4
    assert tracked_school(hs, theirs["event_id"]) == [(None,)]


# -- the end of the year ------------------------------------------------------------


def room_retention(hs: RunningHomeserver, operator: User, room_id: str) -> Any:
    """The room's m.room.retention content, read with Synapse's admin API."""
    path = f"/_synapse/admin/v1/rooms/{quote(room_id, safe='')}/state"
    state = hs.request("GET", path, token=operator.access_token)["state"]
    found = [e["content"] for e in state if e["type"] == "m.room.retention"]
    return found[0] if found else None


def test_an_archived_class_keeps_its_rooms_rules_and_its_young_messages(
    hs: RunningHomeserver, school: School, operator: User, clock: ModuleClock
) -> None:
    clock.real()
    sid = school.school_id
    rooms_b = school.class_b["rooms"]
    wait_for_rooms(hs, school.other_teacher)
    last_word = {"msgtype": "m.text", "body": "Итоги года"}
    said = send(hs, school.other_teacher, rooms_b["class_chat"], last_word)
    class_a_chat = school.class_a["rooms"]["class_chat"]
    class_a_rule = room_retention(hs, operator, class_a_chat)
    # The rules change and nobody applies them; archiving the class puts them in its rooms.
    rules = {"class_chat": 400, "parents_chat": 500}
    api(hs, "PUT", f"/schools/{sid}/retention", school.admin, {"rules": rules})
    api(hs, "POST", f"/schools/{sid}/classes/{school.class_b['class_id']}/archive", school.admin)
    for kind, days in rules.items():
        assert room_retention(hs, operator, rooms_b[kind]) == {"max_lifetime": days * DAY_MS}
    # 7А (not archived) keeps what it had until the job or an apply.
    assert room_retention(hs, operator, class_a_chat) == class_a_rule
    # Nothing younger than the rule is gone: the year's last message is still there.
    message = event(hs, school.other_teacher, rooms_b["class_chat"], said)
    assert message["content"]["body"] == "Итоги года"
    entries = api(hs, "GET", f"/schools/{sid}/audit", school.admin)["entries"]
    class_id = school.class_b["class_id"]
    archived = [e for e in entries if e["action"] == "retention.apply" and e["target"] == class_id]
    assert archived and archived[-1]["details"]["rooms_changed"] == 2


# -- the audit log (last: it removes the front of this homeserver's log) ----------------


def chain(hs: RunningHomeserver) -> list[dict[str, Any]]:
    found = rows(
        hs,
        "SELECT seq, audit_id, ts, school_id, action, actor, hash FROM parta_audit"
        " WHERE seq IS NOT NULL ORDER BY seq",
    )
    keys = ("seq", "audit_id", "ts", "school_id", "action", "actor", "hash")
    return [dict(zip(keys, r, strict=True)) for r in found]


def test_the_audit_logs_front_goes_by_the_rule_and_verify_starts_from_the_anchor(
    hs: RunningHomeserver, school: School, operator: User, clock: ModuleClock
) -> None:
    clock.real()
    sid = school.school_id
    assert both_verify(hs, operator)["anchor"] is None
    # Everything so far is the past; the rule is the first entry of "now".
    api(hs, "PUT", f"/schools/{sid}/retention", school.admin, {"rules": {"audit": 30}})
    api(hs, "GET", f"/schools/{sid}/members/{school.students[1].user_id}/consents", school.admin)
    assert both_verify(hs, operator)["ok"]  # (chains what is pending)
    before = chain(hs)
    rule = [e for e in before if e["action"] == "retention.put"][-1]
    split = rule["ts"]
    # What must go: the front older than the rule — every entry before it is this
    # school's (30 days) or of no school (the operator's limit, which keeps it).
    front = []
    for entry in before:
        if entry["ts"] >= split or entry["school_id"] != sid:
            break
        front.append(entry)
    assert len(front) >= 10 and front[-1]["seq"] < rule["seq"]
    assert {"school.create", "class.create", "member.put"} <= {e["action"] for e in front}

    clock.set_ms(split + 30 * DAY_MS)  # the rule's 30 days after the rule was set
    applied = api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)
    clock.real()
    assert applied["audit_removed"] == len(front)

    after = chain(hs)
    gone = {e["audit_id"] for e in front}
    assert not gone & {e["audit_id"] for e in after}
    assert [e["audit_id"] for e in after[: len(before) - len(front)]] == [
        e["audit_id"] for e in before[len(front) :]
    ]
    trim = [e for e in after if e["action"] == "audit.trim"]
    assert len(trim) == 1 and trim[0]["actor"] == school.admin.user_id

    report = both_verify(hs, operator)
    assert report["ok"], report
    anchor = report["anchor"]
    assert anchor["seq"] == front[-1]["seq"] and anchor["hash"] == front[-1]["hash"]
    assert anchor["removed"] == len(front) and anchor["audit_id"] == trim[0]["audit_id"]
    assert report["entries"] == len(after)
    export = api(hs, "GET", f"/schools/{sid}/audit", school.admin)
    assert export["anchor"]["seq"] == anchor["seq"]
    assert min(e["seq"] for e in export["entries"]) > anchor["seq"]

    # A kept entry edited by hand: verify names it.
    first = after[0]
    hs.sql("UPDATE parta_audit SET actor = ? WHERE seq = ?", ("@someone_else:test", first["seq"]))
    report = both_verify(hs, operator)
    assert not report["ok"]
    assert report["first_broken"]["seq"] == first["seq"]
    assert report["first_broken"]["audit_id"] == first["audit_id"]
    assert report["first_broken"]["reason"] == "edited"
    hs.sql("UPDATE parta_audit SET actor = ? WHERE seq = ?", (first["actor"], first["seq"]))
    assert both_verify(hs, operator)["ok"]

    # The first kept entry removed, and the anchor moved over it to hide that: found.
    aside = "CREATE TABLE parta_audit_aside AS SELECT * FROM parta_audit WHERE seq = ?"
    hs.sql(aside, (first["seq"],))
    hs.sql("DELETE FROM parta_audit WHERE seq = ?", (first["seq"],))
    report = both_verify(hs, operator)
    assert report["first_broken"]["seq"] == first["seq"]
    assert report["first_broken"]["reason"] == "missing"
    hs.sql(
        "UPDATE parta_audit_anchors SET seq = ?, hash = ? WHERE seq = ?",
        (first["seq"], first["hash"], anchor["seq"]),
    )
    report = both_verify(hs, operator)
    assert report["first_broken"]["reason"] == "anchor"
    assert report["first_broken"]["audit_id"] == trim[0]["audit_id"]
    hs.sql(
        "UPDATE parta_audit_anchors SET seq = ?, hash = ? WHERE seq = ?",
        (anchor["seq"], anchor["hash"], first["seq"]),
    )
    hs.sql("INSERT INTO parta_audit SELECT * FROM parta_audit_aside")
    hs.sql("DROP TABLE parta_audit_aside")
    assert both_verify(hs, operator)["ok"]

    # Applied again at the real time: everything left is younger than the rule.
    assert api(hs, "POST", f"/schools/{sid}/retention/apply", school.admin)["audit_removed"] == 0
    assert both_verify(hs, operator)["ok"]


# -- recordings of no school: the operator's limit, in the job (last: it runs every rule
# -- of this homeserver years ahead) ---------------------------------------------------


def test_a_recording_of_no_school_goes_by_the_operators_limit_in_the_job(
    hs: RunningHomeserver, school: School, clock: ModuleClock
) -> None:
    """Broadcasts of people in no school, in rooms of their own: their recordings are no
    school's, and the job ``retention`` removes them at the operator's limit
    (``privacy.retention_limits.recordings``), a younger one stays; audited with no
    school. One whose creator has left the room cannot be redacted in their name: its
    message stays, its video goes all the same."""
    clock.real()
    limit = RetentionLimits().recordings
    lecturer = hs.register("lecturer")
    room = own_room(hs, lecturer, "Открытая лекция")
    old = post_recording_in(hs, room, lecturer, "Лекция о звёздах")
    gone_away = hs.register("lecturer")
    left = own_room(hs, gone_away, "Лекция о планетах")
    deserted = post_recording_in(hs, left, gone_away, "Лекция о планетах")
    young = post_recording_in(hs, room, lecturer, "Лекция о кометах")
    for posted in (old, deserted, young):
        assert tracked_school(hs, posted["event_id"]) == [(None,)]
    hs.request(
        "POST", f"/_matrix/client/v3/rooms/{quote(left, safe='')}/leave", {}, gone_away.access_token
    )
    deserted_ts = rows(
        hs,
        "SELECT posted_ts FROM parta_broadcast_recordings WHERE event_id = ?",
        (deserted["event_id"],),
    )[0][0]
    young_ts = event(hs, lecturer, room, young["event_id"])["origin_server_ts"]
    assert young_ts > deserted_ts

    # Due: these two, and any of no school an earlier test left.
    due = rows(
        hs,
        "SELECT event_id FROM parta_broadcast_recordings WHERE school_id IS NULL AND posted_ts < ?",
        (young_ts,),
    )
    assert {old["event_id"], deserted["event_id"]} <= {e for (e,) in due}

    # "Now": the operator's limit after the youngest was posted, which stays.
    clock.set_ms(young_ts + limit * DAY_MS)
    result = restart_and_run(hs, clock, "retention")
    clock.real()
    assert result.endswith(f"; {len(due)} recordings of no school removed"), result
    gone = event(hs, lecturer, room, old["event_id"])
    assert gone["content"] == {}
    assert gone["unsigned"]["redacted_because"]["sender"] == lecturer.user_id
    for removed in (old, deserted):
        assert not media_file(hs, removed["media_id"]).exists()
        assert tracked_school(hs, removed["event_id"]) == []
    # Its creator gone from the room, the message is not redacted; its video is gone.
    redacted = "SELECT 1 FROM redactions WHERE redacts = ?"
    assert rows(hs, redacted, (deserted["event_id"],)) == []
    assert media_file(hs, young["media_id"]).read_bytes() == MP4
    assert tracked_school(hs, young["event_id"]) == [(None,)]
    audited = rows(
        hs,
        "SELECT actor, details FROM parta_audit WHERE action = 'retention.apply'"
        " AND school_id IS NULL",
    )
    service = "@parta:" + lecturer.user_id.split(":", 1)[1]
    assert [(actor, json.loads(details)) for actor, details in audited] == [
        (service, {"recordings_removed": len(due), "limit_days": limit})
    ]
