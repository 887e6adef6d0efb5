"""The README's "Your first school" runs as pasted, so it cannot go stale.

Its shell blocks marked ``<!-- readme-test: runs -->`` are run in order, in one bash, against
a real Synapse with the module, with ``PARTA_VAR`` holding ``operator.txt`` as ``make run``
writes it. Then the school they made is checked through the API.
"""

import os
import re
import subprocess
from pathlib import Path

from devtools.homeserver import REPO_ROOT
from devtools.run import write_operator_file
from tests.harness import RunningHomeserver
from tests.roster_helpers import api

MARK = "<!-- readme-test: runs -->"


def readme_blocks(text: str) -> tuple[list[str], list[str]]:
    """The marked ``sh`` blocks of the README in order, and every ``sh`` block of the
    "Your first school" section (all of which must be marked)."""
    marked = re.findall(re.escape(MARK) + r"\n```sh\n(.*?)```", text, re.S)
    section = text.split("### Your first school", 1)[1].split("\n**A whole school", 1)[0]
    return marked, re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_first_school_section_runs_as_pasted(
    synapse: RunningHomeserver, tmp_path: Path
) -> None:
    marked, in_section = readme_blocks((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert marked, "no runnable block in the README"
    assert sorted(in_section) == sorted(marked), "every block of «Your first school» runs"
    operator = synapse.register("operator", admin=True)
    var = tmp_path / "var"
    var.mkdir()
    write_operator_file(var / "operator.txt", operator.localpart, operator.password)
    script = "set -euo pipefail\n" + "\n".join(marked)
    env = {**os.environ, "PARTA": synapse.base_url, "PARTA_VAR": str(var)}
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert out.stderr == "", out.stderr
    school_id = re.search(r"school (sch_\w+)", out.stdout)
    assert school_id, out.stdout
    sid = school_id.group(1)
    # What the blocks made: the school, its administrator, class 7А, a student in it.
    school = api(synapse, "GET", f"/schools/{sid}", operator)
    assert school["name"] == "Гимназия № 5"
    members = {
        m["user_id"]: m for m in api(synapse, "GET", f"/schools/{sid}/members", operator)["members"]
    }
    director, masha = (f"@{name}:{synapse.server_name}" for name in ("director", "masha"))
    assert members[director]["roles"] == ["administrator"]
    assert members[masha]["roles"] == ["student"]
    [klass] = api(synapse, "GET", f"/schools/{sid}/classes", operator)["classes"]
    assert klass["title"] == "7А"
    assert members[masha]["classes"] == [klass["class_id"]]
    # The last lines printed are the links: a teacher's invitation and a parent's.
    links = [line for line in out.stdout.splitlines() if "/_synapse/client/parta/join/" in line]
    assert len(links) == 2, out.stdout
