"""Retention (#12 item 5): a school's rules within the operator's limits; applied, they
put m.room.retention into the school's rooms and delete attendance older than the rule
and nothing younger. The clock is in the data (sessions reported as of long ago), so
nothing sleeps."""

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from devtools.homeserver import HttpError
from synapse_module.config import RetentionLimits
from synapse_module.privacy.rules import DAY_MS, retention_cutoff, retention_refusal
from tests.harness import RunningHomeserver, running_homeserver
from tests.privacy_people import MODULE_CONFIG, attendance, rows
from tests.roster_helpers import School, api, build_school

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
    ],
)
def test_a_schools_rule_lies_within_the_operators_limits(
    kind: str, days: int, refused: tuple[int, int] | None
) -> None:
    assert retention_refusal(kind, days, LIMITS) == refused


def test_the_cutoff_is_the_rule_before_now() -> None:
    assert retention_cutoff(100 * DAY_MS, 30) == 70 * DAY_MS


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_homeserver(tmp_path_factory.mktemp("retention"), MODULE_CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def school(hs: RunningHomeserver) -> School:
    return build_school(hs, hs.register("operator", admin=True))


def sessions(hs: RunningHomeserver, school: School, room_id: str) -> list[dict[str, Any]]:
    found = rows(
        hs, "SELECT user_id, joined_at FROM parta_room_sessions WHERE room_id = ?", (room_id,)
    )
    return [{"user_id": u, "joined_at": j} for u, j in found]


def test_retention_removes_what_is_older_than_the_rule_and_nothing_younger(
    hs: RunningHomeserver, school: School
) -> None:
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
    assert again == {"school_id": sid, "rooms_changed": 0, "attendance_removed": 0}

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
