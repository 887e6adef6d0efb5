"""The import's pure parts as tables: which school of the files, the files a request
sends, and the one planner (``parta_common.roster_plan``) the bot and the console share."""

import base64
import io
import zipfile

import pytest

from parta_common.messages import Message
from parta_common.oneroster import Membership, Roster, read_files
from parta_common.roles import Role
from parta_common.roster_plan import (
    batch_entry,
    card_classes,
    children_of,
    class_titles,
    plan_school,
    wave,
)
from synapse_module.imports import rules
from synapse_module.imports.texts import (
    BAD_BASE64,
    NO_SCHOOL_IN_FILES,
    SCHOOL_NOT_IN_FILES,
    SEVERAL_SCHOOLS,
)
from tests.data.make_sample_school import make_school


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def school_roster(prefix: str = "t-") -> Roster:
    files = make_school(students=10, seed=5, prefix=prefix, grades=range(3, 4))
    return read_files({k: v.encode() for k, v in files.items()})


def two_schools() -> Roster:
    a = make_school(students=5, seed=1, school_id="a-sch", prefix="a-", grades=range(1, 2))
    b = make_school(students=5, seed=2, school_id="b-sch", prefix="b-", grades=range(1, 2))
    merged = {}
    for name in a:
        lines_b = b[name].splitlines(keepends=True)[1:]
        merged[name] = (a[name] + "".join(lines_b)).encode()
    return read_files(merged)


ONE = school_roster()
ONE_ID = next(iter(ONE.schools))
TWO = two_schools()


@pytest.mark.parametrize(
    ("roster", "external_id", "expected"),
    [
        (ONE, None, ONE_ID),
        (ONE, ONE_ID, ONE_ID),
        (ONE, "other", (SCHOOL_NOT_IN_FILES, {"external_id": "other"})),
        (TWO, None, (SEVERAL_SCHOOLS, {"count": "2"})),
        (TWO, "b-sch", "b-sch"),
        (Roster({}, {}, {}, (), None), None, (NO_SCHOOL_IN_FILES, {})),
    ],
)
def test_which_school_of_the_files(
    roster: Roster, external_id: str | None, expected: str | tuple[Message, dict[str, str]]
) -> None:
    assert rules.pick_org(roster, external_id) == expected


def test_the_files_of_a_request() -> None:
    csv = b"sourcedId\n"
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("export/users.csv", csv)
        z.writestr("export/readme.txt", b"-")
    table = [
        ({"orgs.csv": b64(csv)}, {"orgs.csv": csv}),
        ({"orgs.csv": b64(csv), "notes.txt": b64(b"x")}, {"orgs.csv": csv}),
        ({"roster.zip": b64(packed.getvalue())}, {"users.csv": csv}),
        ({"orgs.csv": "не base64"}, (BAD_BASE64, {"name": "orgs.csv"})),
    ]
    for sent, expected in table:
        assert rules.decode_files(sent) == expected, sent


def test_a_first_import_plans_everyone_and_a_second_nothing() -> None:
    first = plan_school(ONE, ONE_ID, "sch_1", {}, {}, {}, {})
    wanted = ONE.memberships(ONE_ID)
    assert len(first.create_accounts) == len(wanted) == len(first.new_members)
    assert len(first.create_classes) == 1
    shown = rules.plan_json(first, ONE)
    assert shown["counts"]["add"] == len(wanted) and not shown["empty"]
    assert shown["create_classes"] == ["3А"]
    # Staff before pupils before parents: the order the roster can take them in.
    assert [wave(c.after) for c in first.set_members] == sorted(
        wave(c.after) for c in first.set_members
    )
    assert rules.total_steps(first) == 1 + len(wanted)

    known = {sid: f"@{sid}:s" for sid in wanted}
    names = {sid: ONE.people[sid].display_name for sid in wanted}
    class_ids = {first.create_classes[0]: "cls_1"}
    second = plan_school(ONE, ONE_ID, "sch_1", class_ids, known, names, wanted)
    assert second.empty and rules.plan_json(second, ONE)["empty"]


def test_a_move_a_leaver_and_a_rename() -> None:
    wanted = ONE.memberships(ONE_ID)
    students = sorted(s for s, m in wanted.items() if Role.STUDENT in m.roles)
    mover, renamed = students[0], students[1]
    known = {sid: f"@{sid}:s" for sid in wanted} | {"gone": "@gone:s"}
    names = {sid: ONE.people[sid].display_name for sid in wanted}
    names[renamed] = "Старая Фамилия"
    current = dict(wanted)
    current[mover] = Membership(
        frozenset({Role.STUDENT}), frozenset({"old"}), frozenset(), frozenset()
    )
    current["gone"] = Membership(
        frozenset({Role.STUDENT}), frozenset({"old"}), frozenset(), frozenset()
    )
    cls = next(iter(ONE.classes))
    plan = plan_school(ONE, ONE_ID, "sch_1", {cls: "cls_1"}, known, names, current)
    assert [c.source_id for c in plan.moves] == [mover]
    assert plan.remove_members == (("@gone:s", "gone"),)
    assert [(sid, before) for sid, _u, before, _n in plan.renames] == [(renamed, "Старая Фамилия")]
    shown = rules.plan_json(plan, ONE)
    assert shown["counts"] == {
        "create_classes": 0,
        "create_accounts": 0,
        "add": 0,
        "move": 1,
        "change": 0,
        "remove": 1,
        "rename": 1,
    }
    entry = batch_entry(plan.moves[0], known, {cls: "cls_1"}, None)
    assert entry == {
        "user_id": known[mover],
        "roles": ["student"],
        "classes": ["cls_1"],
        "children": [],
        "homeroom_of": [],
    }


def test_a_parents_card_names_the_childrens_classes() -> None:
    titles = class_titles(ONE)
    children = children_of(ONE)
    parent, kids = next(iter(children.items()))
    assert card_classes(parent, titles, children) == ", ".join(
        sorted({t for k in kids for t in titles[k]})
    )
