"""Things that run at the same time: two requests about one person, two imports of one
school, a removal while the person's rooms are still being joined behind an import.

Each test starts both sides before either can finish (threads against the real
homeserver), so that the interleaving that once lost a write is the likely one.
"""

import base64
import concurrent.futures
import secrets
import time
from typing import Any

import pytest

from devtools.homeserver import HttpError
from tests.data.make_sample_school import make_school
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import School, api, build_school, joined_members

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def operator(synapse: RunningHomeserver) -> User:
    return synapse.register("operator", admin=True)


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver, operator: User) -> School:
    return build_school(synapse, operator)


Call = tuple[str, str, User, Any]  # method, path under the API, who, body


def at_once(hs: RunningHomeserver, *calls: Call) -> list[Any]:
    """Every request started together, each on its own thread: their answers, or the
    ``HttpError`` bodies of the refused ones."""

    def one(call: Call) -> Any:
        try:
            return api(hs, call[0], call[1], call[2], call[3])
        except HttpError as e:
            return {"status": e.status, **e.body}

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def test_two_parent_links_of_one_parent_confirmed_at_once_keep_both_children(
    synapse: RunningHomeserver, school: School
) -> None:
    """A parent of two children asks through both codes; the homeroom teacher and the
    administrator confirm at the same moment. Each confirmation adds a child to what the
    parent already is: read, then written whole — two at once lost one child (SQLite)
    or answered 500 on the roles' unique key (PostgreSQL)."""
    sid = school.school_id
    first, second = school.students[1], school.students[2]
    for _ in range(3):
        parent = synapse.register("twoparent")
        for child in (first, second):
            code = api(synapse, "POST", "/me/parent_invite", child, {"school_id": sid})
            api(synapse, "POST", f"/invites/{code['code']}/redeem", parent)
        links = api(synapse, "GET", f"/schools/{sid}/parent_links", school.admin)
        mine = [x for x in links["parent_links"] if x["parent_user_id"] == parent.user_id]
        assert len(mine) == 2
        path = f"/schools/{sid}/parent_links/{{}}/confirm"
        answers = at_once(
            synapse,
            ("POST", path.format(mine[0]["link_id"]), school.teacher, {}),
            ("POST", path.format(mine[1]["link_id"]), school.admin, {}),
        )
        assert [a["status"] for a in answers] == ["confirmed", "confirmed"], answers
        listed = api(synapse, "GET", f"/schools/{sid}/members?role=parent", school.admin)
        [me] = [m for m in listed["members"] if m["user_id"] == parent.user_id]
        assert sorted(me["children"]) == sorted([first.user_id, second.user_id])


def test_two_imports_of_one_school_applied_at_once_run_one_after_the_other(
    synapse: RunningHomeserver, operator: User
) -> None:
    """The same files planned twice (a second upload while the first was being read)
    and both applied at the same moment: each plan creates every class and person, so
    two at once made every class twice (or failed on the people's claims). One runs;
    the other is refused with a clear 409 and, applied after, does only what is left."""
    admin = synapse.register("importer")
    school = api(
        synapse,
        "POST",
        "/schools",
        operator,
        {"name": "Школа № 77", "administrators": [admin.user_id]},
    )
    sid = school["school_id"]
    files = make_school(students=6, seed=11, prefix="race-", grades=range(1, 2))
    body = {"files": {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}}
    first, second = (api(synapse, "POST", f"/schools/{sid}/imports", admin, body) for _ in "12")
    answers = at_once(
        synapse,
        ("POST", f"/schools/{sid}/imports/{first['import_id']}/apply", admin, {}),
        ("POST", f"/schools/{sid}/imports/{second['import_id']}/apply", admin, {}),
    )
    refused = [a for a in answers if a.get("status") == 409]
    assert len(refused) == 1, answers
    assert refused[0]["org.parta.message"]["id"] == "imports.another_running", refused
    [started] = [a for a in answers if a.get("status") != 409]
    later = second if started["import_id"] == first["import_id"] else first
    assert wait_import(synapse, sid, started["import_id"], admin)["state"] == "done"
    api(synapse, "POST", f"/schools/{sid}/imports/{later['import_id']}/apply", admin, {})
    done = wait_import(synapse, sid, later["import_id"], admin)
    assert done["state"] == "done", done
    assert done["result"]["created_classes"] == 0 and done["result"]["created_accounts"] == 0
    titles = [c["title"] for c in api(synapse, "GET", f"/schools/{sid}/classes", admin)["classes"]]
    assert len(titles) == len(set(titles)), titles


def wait_import(hs: RunningHomeserver, sid: str, import_id: str, admin: User) -> Any:
    deadline = time.monotonic() + 300
    while (now := api(hs, "GET", f"/schools/{sid}/imports/{import_id}", admin))[
        "state"
    ] == "running":
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    return now


def test_a_removal_and_a_re_adding_at_once_leave_matrix_as_the_roster_says(
    synapse: RunningHomeserver, operator: User, school: School
) -> None:
    """A pupil removed and put back at the same moment (an erasure's roster step and an
    import re-adding them, or two administrators). The re-adding, written after the
    removal, found the rooms still joined (the removal's leaves not landed yet) or joined
    them before the leaves: the roster said «in 7А», Matrix had them out of some of its
    rooms. Whatever the roster says at the end, Matrix must say the same."""
    sid = school.school_id
    a = school.class_a["rooms"]
    r = school.rooms
    theirs = {r["school_space"], r["announcements"], r["documents"], r["articles"]}
    theirs |= {a["class_space"], a["class_chat"]}
    body = {"roles": ["student"], "classes": [school.class_a["class_id"]]}
    for _ in range(4):
        pupil = synapse.register("comeback")
        path = f"/schools/{sid}/members/{pupil.user_id}"
        api(synapse, "PUT", path, school.admin, body)
        answers = at_once(
            synapse, ("DELETE", path, school.admin, None), ("PUT", path, school.admin, body)
        )
        assert not any("errcode" in x for x in answers), answers
        listed = api(synapse, "GET", f"/schools/{sid}/members", school.admin)["members"]
        member = any(m["user_id"] == pupil.user_id for m in listed)
        joined = {x for x in theirs if pupil.user_id in joined_members(synapse, operator, x)}
        assert joined == (theirs if member else set()), (member, theirs - joined, joined)


def test_two_consent_records_for_one_pupil_at_once_are_both_kept(
    synapse: RunningHomeserver, school: School
) -> None:
    """Two paper forms for one pupil recorded at the same moment (two administrators),
    where nothing was recorded before: each deleted what it saw (nothing) and inserted,
    and the second insert met the first's row — 500 on PostgreSQL. Both are answered;
    the later one stands and both are in the audit log."""
    sid = school.school_id
    for _ in range(3):
        pupil = synapse.register("consenting")
        body = {"roles": ["student"], "classes": [school.class_a["class_id"]]}
        api(synapse, "PUT", f"/schools/{sid}/members/{pupil.user_id}", school.admin, body)
        path = f"/schools/{sid}/members/{pupil.user_id}/consents"
        answers = at_once(
            synapse,
            *(
                ("PUT", path, school.admin, {"consents": c, "document_number": n})
                for c, n in (({"photos": True}, "№ 1"), ({"photos": False}, "№ 2"))
            ),
        )
        assert not any("errcode" in x for x in answers), answers
        stored = api(synapse, "GET", path, school.admin)["consents"]["photos"]
        assert stored["document_number"] in ("№ 1", "№ 2"), stored


def test_two_retention_rules_set_at_once_are_both_answered(
    synapse: RunningHomeserver, operator: User
) -> None:
    """The same pattern for a school's retention rules (delete, then insert): two set at
    once where none was met on the rule's key (PostgreSQL)."""
    for n in range(3):
        admin = synapse.register("keeper")
        body = {"name": f"Школа хранения {n}", "administrators": [admin.user_id]}
        sid = api(synapse, "POST", "/schools", operator, body)["school_id"]
        path = f"/schools/{sid}/retention"
        answers = at_once(
            synapse,
            ("PUT", path, admin, {"rules": {"attendance": 200}}),
            ("PUT", path, admin, {"rules": {"attendance": 300}}),
        )
        assert not any("errcode" in x for x in answers), answers
        assert api(synapse, "GET", path, admin)["rules"]["attendance"] in (200, 300)


def test_two_schools_imported_at_once_with_the_same_names_both_finish(
    synapse: RunningHomeserver, operator: User
) -> None:
    """A district imports its schools at the same moment, and common names meet: each
    import found «ivan.petrov» free and claimed it, the second claim met the first on
    the account name's unique key, and that import failed («internal error»). The
    second now takes the next free name, as it does for a name taken before."""
    files = make_school(
        students=12, seed=5, prefix=f"twin{secrets.token_hex(2)}-", grades=range(1, 2)
    )
    body = {"files": {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}}
    calls: list[Call] = []
    schools = []
    for n in range(2):
        admin = synapse.register("district")
        made = {"name": f"Школа-близнец {n}", "administrators": [admin.user_id]}
        sid = api(synapse, "POST", "/schools", operator, made)["school_id"]
        planned = api(synapse, "POST", f"/schools/{sid}/imports", admin, body)
        calls.append(("POST", f"/schools/{sid}/imports/{planned['import_id']}/apply", admin, {}))
        schools.append((sid, planned["import_id"], admin))
    answers = at_once(synapse, *calls)
    assert not any("errcode" in x for x in answers), answers
    results = [wait_import(synapse, sid, imp, admin) for sid, imp, admin in schools]
    assert [r["state"] for r in results] == ["done", "done"], [r.get("error") for r in results]
    made_accounts = [r["result"]["created_accounts"] for r in results]
    assert made_accounts[0] == made_accounts[1] > 0, made_accounts
