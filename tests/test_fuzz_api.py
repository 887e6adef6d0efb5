"""The module API fuzzed with schemathesis over the document it serves (#16 item 1).

A bounded profile of ``devtools/fuzz_api.py`` (which runs longer): every operation of
the served OpenAPI document, valid and invalid requests, as an operator, a school
administrator, a teacher, a student and anonymous, against the real Synapse with the
module and a seeded school. No answer is a 5xx, every answer is what the document says,
every refusal carries ``errcode`` and ``error``. Below it, the failures the fuzzing
found, each pinned by a plain test.
"""

from typing import Any

import pytest

from devtools import fuzz_api
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import api, api_error, build_school

# Requests per operation and role: 69 operations x 5 roles x 6 ≈ 2,000 requests (~2 min).
CI_EXAMPLES = 6


@pytest.mark.timeout(900)
def test_fuzzing_every_operation_as_every_role(synapse: RunningHomeserver) -> None:
    tallies = fuzz_api.fuzz_all(synapse, CI_EXAMPLES, derandomize=True)
    findings = [f.line() for tally in tallies.values() for f in tally.findings]
    assert not findings, "\n".join(findings)
    for role, tally in tallies.items():
        # Every role reached the handlers: some answers were not refusals of the token.
        assert tally.requests >= CI_EXAMPLES * 60, role
        assert sum(n for s, n in tally.statuses.items() if s != 401) > 0, role
    assert sum(t.statuses.get(200, 0) + t.statuses.get(201, 0) for t in tallies.values()) > 50


@pytest.mark.parametrize("token", ["[", "7", "$", "}", "NUL", "AAAA", "syt_"])
def test_a_malformed_token_is_401_not_500(synapse: RunningHomeserver, token: str) -> None:
    """Synapse tries unknown tokens as guest macaroons; pymacaroons raised on these
    (struct.error, IndexError) and Synapse answered 500. The module answers 401."""
    caller = User(
        user_id="@nobody:localhost",
        localpart="nobody",
        password="",
        access_token=token,
        device_id="",
    )
    error = api_error(synapse, "GET", "/me", caller)
    assert error.status == 401
    assert error.body["errcode"] == "M_UNKNOWN_TOKEN"


def test_an_external_id_taken_in_another_year_is_409_with_no_rooms(
    synapse: RunningHomeserver,
) -> None:
    """The fuzzer's 500: the external id check looked at the new class's year only, so a
    class of another year with the same id hit the table's constraint after its rooms
    had been made."""
    operator = synapse.register("operator", admin=True)
    school = build_school(synapse, operator, "Школа внешних кодов")
    sid = school.school_id
    first: dict[str, Any] = {"grade": 5, "letter": "в", "year": "2026/27", "external_id": "K-5"}
    api(synapse, "POST", f"/schools/{sid}/classes", school.admin, first)
    before = api(synapse, "GET", f"/schools/{sid}/classes?include_archived=true", school.admin)
    rooms_before = joined_rooms(synapse, school.admin)
    again = {**first, "year": "2027/28"}
    error = api_error(synapse, "POST", f"/schools/{sid}/classes", school.admin, again)
    assert error.status == 409
    assert error.body["errcode"] == "M_BAD_STATE"
    assert "K-5" in error.body["error"]
    after = api(synapse, "GET", f"/schools/{sid}/classes?include_archived=true", school.admin)
    assert after == before
    assert joined_rooms(synapse, school.admin) == rooms_before


def joined_rooms(hs: RunningHomeserver, user: User) -> set[str]:
    answer = hs.request("GET", "/_matrix/client/v3/joined_rooms", None, user.access_token)
    return set(answer["joined_rooms"])
