"""An erased pupil is out of the school's roster imports, against a real Synapse with the
module: a OneRoster roster imported through the console's routes (the pupil with an
e-mail), a second import planned that renames them; after their erasure neither import
— as ``GET .../imports/{id}`` answers it (the console's plan and progress), its codes
page (``.../sign_ins``) nor its stored row (files, plan, error) — holds their name,
username, e-mail, OneRoster ID or Matrix ID, the counts stay, and the planned import still
applies."""

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from parta_common.oneroster import read_files
from synapse_module.imports.rules import decode_files
from synapse_module.privacy.rules import ERASED
from tests.data.make_sample_school import make_school
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.privacy_people import rows
from tests.roster_helpers import api

# Deadlines for what the server does in the background (not timing assertions).
DEADLINE_S = 240
EMAIL = "pupil-erased@example.org"


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_homeserver(tmp_path_factory.mktemp("erase-imports")) as running:
        yield running


def _b64(files: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}


def _with_user_cell(files: dict[str, str], source_id: str, column: str, value: str) -> None:
    lines = files["users.csv"].splitlines()
    header = lines[0].split(",")
    at = next(i for i, line in enumerate(lines) if line.startswith(source_id + ","))
    cells = lines[at].split(",")
    cells[header.index(column)] = value
    lines[at] = ",".join(cells)
    files["users.csv"] = "\n".join(lines) + "\n"


def _wait(hs: RunningHomeserver, path: str, user: User, key: str, done: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        now: dict[str, Any] = api(hs, "GET", path, user)
        if now[key] == done:
            return now
        assert now.get("state") != "failed", now
        assert time.monotonic() < deadline, now
        time.sleep(0.2)


def _traces(text: str, needles: list[str]) -> list[str]:
    """The needles found in ``text`` as whole values (pi-stu-1 is not pi-stu-12's start)."""
    return [n for n in needles if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w.-])", text)]


def test_an_erased_pupil_is_nowhere_in_the_schools_imports(hs: RunningHomeserver) -> None:
    operator = hs.register("op", admin=True)
    admin = hs.register("director")
    school = api(
        hs, "POST", "/schools", operator, {"name": "Школа № 3", "administrators": [admin.user_id]}
    )
    sid = school["school_id"]
    files = make_school(students=10, seed=11, prefix="pi-", grades=range(1, 2))
    roster = read_files({k: v.encode() for k, v in files.items()})
    pupil = next(p for p in roster.people.values() if p.role.value == "student" and p.agent_ids)
    _with_user_cell(files, pupil.source_id, "email", EMAIL)

    first = api(hs, "POST", f"/schools/{sid}/imports", admin, {"files": _b64(files)})
    first_path = f"/schools/{sid}/imports/{first['import_id']}"
    api(hs, "POST", f"{first_path}/apply", admin, {})
    applied = _wait(hs, first_path, admin, "state", "done")
    cards = api(hs, "GET", f"{first_path}/sign_ins", admin)["sign_ins"]
    user_id = next(c["user_id"] for c in cards if c["display_name"] == pupil.display_name)
    # A second roster renames the pupil: planned, not applied yet.
    _with_user_cell(files, pupil.source_id, "givenName", "Переименованный")
    second = api(hs, "POST", f"/schools/{sid}/imports", admin, {"files": _b64(files)})
    second_path = f"/schools/{sid}/imports/{second['import_id']}"
    assert [r["user_id"] for r in second["plan"]["rename"]] == [user_id]
    renamed = second["plan"]["rename"][0]["to"]

    needles = [pupil.display_name, renamed, pupil.username, EMAIL, pupil.source_id, user_id]
    localpart = user_id[1:].split(":")[0]

    def seen() -> dict[str, list[str]]:
        """Every trace of the pupil: in what the API answers, and in the stored rows."""
        found = {}
        for name, path in (("first", first_path), ("second", second_path)):
            answer = json.dumps(api(hs, "GET", path, admin), ensure_ascii=False)
            found[f"GET {name}"] = _traces(answer, needles)
        codes = json.dumps(api(hs, "GET", f"{first_path}/sign_ins", admin), ensure_ascii=False)
        found["sign_ins"] = _traces(codes, needles)
        for import_id, files_json, plan, error in rows(
            hs,
            "SELECT import_id, files, plan, error FROM parta_imports WHERE school_id = ?",
            (sid,),
        ):
            decoded = decode_files(json.loads(files_json))
            assert not isinstance(decoded, tuple)
            csv_text = "".join(d.decode("utf-8-sig") for d in decoded.values())
            stored = json.dumps([json.loads(plan), error], ensure_ascii=False) + csv_text
            found[import_id] = _traces(stored, [*needles, localpart, pupil.given_name])
        return {k: v for k, v in found.items() if v}

    # Before: the imports do name them (the scan would see a leftover).
    before = seen()
    assert {"GET first", "GET second", "sign_ins", first["import_id"]} <= set(before), before

    erase = f"/schools/{sid}/members/{user_id}/erase"
    started = api(hs, "POST", erase, admin, {"messages": "redact"})
    done = _wait(hs, f"/schools/{sid}/erasures/{started['erasure_id']}", admin, "status", "done")
    assert done["scope"] == "account"

    assert seen() == {}
    now_first = api(hs, "GET", first_path, admin)
    now_second = api(hs, "GET", second_path, admin)
    # The plans stay usable: counts as they were, the pupil's entry in the marked form.
    assert now_first["plan"]["counts"] == applied["plan"]["counts"]
    assert len(now_first["plan"]["add"]) == len(applied["plan"]["add"])
    assert [a for a in now_first["plan"]["add"] if a["display_name"] == ERASED] == [
        {"source_id": ERASED, "display_name": ERASED, "roles": ["student"], "classes": ["1А"]}
    ]
    assert now_second["plan"]["counts"] == second["plan"]["counts"]
    assert now_second["plan"]["rename"] == [{"user_id": ERASED, "from": ERASED, "to": ERASED}]
    assert len(api(hs, "GET", f"{first_path}/sign_ins", admin)["sign_ins"]) == len(cards) - 1
    # The planned import still applies: nobody is made again for the erased pupil.
    api(hs, "POST", f"{second_path}/apply", admin, {})
    result = _wait(hs, second_path, admin, "state", "done")["result"]
    assert result["created_accounts"] == 0, result
    assert seen() == {}
