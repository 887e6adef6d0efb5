"""Fuzz the module API with schemathesis over the OpenAPI document it serves.

Every operation of ``/_synapse/client/parta/v1/openapi.json`` gets requests generated
from its request schemas (valid ones and, with ``--negative``, invalid ones), sent to a
real Synapse with the module as each kind of caller: an operator (server admin), a
school administrator, a teacher, a student and anonymous. Half the requests carry the
seeded school's real identifiers in their path, so they reach the handlers instead of
stopping at 404. Every answer must:

* not be a 5xx;
* be what the document says for that operation and status (``tests/openapi_check``);
* carry ``errcode`` and ``error`` when it is a refusal (4xx).

``python -m devtools.fuzz_api --examples 50`` starts its own Synapse (SQLite unless
``PARTA_TEST_DB=postgres``), seeds a school and prints a line per role and a summary;
``tests/test_fuzz_api.py`` runs the same code with a small budget in ``make test``.
"""

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from synapse_module.http import BASE_PATH
from tests.openapi_check import Seen, mismatches, served_document

ROLES = ("anonymous", "student", "teacher", "administrator", "operator")


@attrs.define
class Finding:
    role: str
    operation: str
    problem: str
    request: str

    def line(self) -> str:
        return f"[{self.role}] {self.operation}: {self.problem}\n    {self.request}"


@attrs.define
class Tally:
    requests: int = 0
    statuses: dict[int, int] = attrs.Factory(dict)
    findings: list[Finding] = attrs.Factory(list)

    def count(self, status: int) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


def problems_of(
    doc: dict[str, Any], method: str, path: str, status: int, media_type: str, content: bytes
) -> list[str]:
    """What is wrong with one answer (empty: nothing)."""
    found: list[str] = []
    text = content[:200].decode(errors="replace")
    body: Any = None
    if media_type == "application/json":
        try:
            body = json.loads(content) if content else None
        except ValueError:
            found.append(f"{status}: body is not JSON")
    if status >= 500:
        found.append(f"{status}: server error {text!r}")
    elif status >= 400 and not (
        isinstance(body, dict)
        and isinstance(body.get("errcode"), str)
        and isinstance(body.get("error"), str)
        and body["error"]
    ):
        found.append(f"{status}: refusal without errcode and error: {text!r}")
    seen = Seen(method.upper(), path.removeprefix(BASE_PATH), status, body, media_type)
    found.extend(mismatches(doc, [seen]))
    return found


def _describe(case: Any) -> str:
    parts = [f"{case.method} {case.formatted_path}"]
    auth = (case.headers or {}).get("Authorization")
    if auth is not None:
        parts.append(f"Authorization={auth!r}")
    if case.query:
        parts.append(f"query={case.query!r}")
    if case.body is not None and not isinstance(case.body, schemathesis.core.NotSet):
        parts.append(f"body={json.dumps(case.body, ensure_ascii=False, default=str)[:300]}")
    return " ".join(parts)


def fuzz_operation(
    operation: Any,
    doc: dict[str, Any],
    base_url: str,
    token: str | None,
    known: Mapping[str, str],
    role: str,
    examples: int,
    modes: Iterable[GenerationMode],
    tally: Tally,
    derandomize: bool = False,
) -> None:
    """Send ``examples`` generated requests for one operation; findings go to ``tally``."""
    names = [p.name for p in operation.path_parameters]
    pinned = {n: known[n] for n in names if n in known}
    strategies = []
    for mode in modes:
        strategies.append(operation.as_strategy(generation_mode=mode))
        if pinned:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=pinned))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    seen_problems: set[str] = set()
    session = requests.Session()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def run(case: Any) -> None:
        if token:  # the role's own token, not one generated for the security scheme
            case.headers = {**(case.headers or {}), **headers}
        try:
            resp = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
            return  # the client refused to send it (e.g. a header with a newline)
        tally.count(resp.status_code)
        path = (resp.request.path_url or "").split("?")[0]
        media_type = (resp.headers.get("content-type") or [""])[0].split(";")[0].strip()
        found = problems_of(doc, case.method, path, resp.status_code, media_type, resp.content)
        for problem in found:
            key = f"{case.method} {operation.path} {problem[:80]}"
            if key in seen_problems:
                continue
            seen_problems.add(key)
            tally.findings.append(
                Finding(role, f"{case.method} {operation.path}", problem, _describe(case))
            )

    run()


def fuzz_role(
    base_url: str,
    token: str | None,
    known: Mapping[str, str],
    role: str,
    examples: int,
    negative: bool = True,
    only: str | None = None,
    derandomize: bool = False,
) -> Tally:
    """Every operation of the served document, as one caller."""
    doc = served_document()
    schema = schemathesis.openapi.from_dict(doc)
    modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negative else [])
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # the document is valid
        if only and not re.search(only, f"{operation.method.upper()} {operation.path}"):
            continue
        fuzz_operation(
            operation, doc, base_url, token, known, role, examples, modes, tally, derandomize
        )
    return tally


def seed(hs: Any) -> tuple[dict[str, str | None], dict[str, str]]:
    """A school with its people: tokens per role and the identifiers to put in paths."""
    from tests.roster_helpers import api, build_school

    operator = hs.register("operator", admin=True)
    school = build_school(hs, operator, "Школа фаззинга")
    invite = api(
        hs,
        "POST",
        f"/schools/{school.school_id}/invites",
        school.admin,
        {"role": "student", "class_id": school.class_a["class_id"]},
    )
    room = school.class_a["rooms"]["class_chat"]
    known = {
        "school_id": school.school_id,
        "class_id": school.class_a["class_id"],
        "user_id": school.students[1].user_id,
        "roomId": room,
        "room_id": room,
        "code": invite.get("code", ""),
    }
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "student": school.students[0].access_token,
        "teacher": school.teacher.access_token,
        "administrator": school.admin.access_token,
        "operator": operator.access_token,
    }
    return tokens, known


def fuzz_all(
    hs: Any,
    examples: int,
    negative: bool = True,
    only: str | None = None,
    derandomize: bool = False,
) -> dict[str, Tally]:
    """``derandomize``: the same requests every run (the CI profile, so a new finding
    fails the change that caused it, not a later one); the long runner explores."""
    tokens, known = seed(hs)
    base = hs.base_url + BASE_PATH
    return {
        role: fuzz_role(base, tokens[role], known, role, examples, negative, only, derandomize)
        for role in ROLES
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=50, help="requests per operation and role")
    parser.add_argument("--positive-only", action="store_true")
    parser.add_argument("--only", help="regex over 'METHOD /path' of the operations to fuzz")
    args = parser.parse_args(argv)
    from tests.harness import running_homeserver

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory, running_homeserver(Path(directory)) as hs:
        tallies = fuzz_all(hs, args.examples, not args.positive_only, args.only)
    failed = 0
    for role, tally in tallies.items():
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(tally.statuses.items()))
        print(f"{role:14} {tally.requests:6} requests  {statuses}  findings: {len(tally.findings)}")
        for f in tally.findings:
            print("  " + f.line())
        failed += len(tally.findings)
    total = sum(t.requests for t in tallies.values())
    print(f"total {total} requests in {time.monotonic() - started:.0f} s, findings: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
