"""MSC3381 counting rules and quiz scores, table-tested (pure functions)."""

from typing import Any

import pytest

from parta_common import events, schemas
from synapse_module.content.polls import (
    Response,
    Start,
    anonymised_response,
    parse_start,
    reply_selection,
    score,
    selections,
    tally,
    valid_selection,
)

IDS = ("a", "b", "c")


@pytest.mark.parametrize(
    ("answers", "max_selections", "expected"),
    [
        (["a"], 1, ("a",)),
        (["a", "b"], 1, ("a",)),  # only the first max_selections count
        (["x", "b"], 1, ("b",)),  # unknown answers are ignored
        (["b", "b", "c"], 2, ("b", "c")),  # duplicates count once
        (["x"], 1, ()),  # spoiled
        ([], 1, ()),
    ],
)
def test_valid_selection(
    answers: list[str], max_selections: int, expected: tuple[str, ...]
) -> None:
    assert valid_selection(answers, IDS, max_selections) == expected


def test_latest_response_before_the_end_counts() -> None:
    responses = [
        Response("@p:x", 10, ("a",)),
        Response("@p:x", 30, ("b",)),  # changed mind
        Response("@q:x", 20, ("a",)),
        Response("@q:x", 50, ("c",)),  # after the end: ignored
        Response("@r:x", 15, ("c",)),
        Response("@r:x", 25, ("zzz",)),  # spoiled: withdraws the earlier vote
    ]
    result = tally(IDS, 1, responses, end_ts=40)
    assert result.counts == {"a": 1, "b": 1, "c": 0}
    assert result.choices == {"@p:x": ("b",), "@q:x": ("a",)}
    assert result.voters == 2
    open_poll = tally(IDS, 1, responses)
    assert open_poll.counts == {"a": 0, "b": 1, "c": 1}


def test_order_of_arrival_does_not_matter() -> None:
    responses = [Response("@p:x", 30, ("b",)), Response("@p:x", 10, ("a",))]
    assert tally(IDS, 1, responses).choices == {"@p:x": ("b",)}


@pytest.mark.parametrize(
    ("chosen", "correct", "expected"),
    [
        (("a",), ("a",), 1),
        (("b",), ("a",), 0),
        (("a", "b"), ("b", "a"), 1),
        (("a",), ("a", "b"), 0),
        ((), ("a",), 0),
    ],
)
def test_score(chosen: tuple[str, ...], correct: tuple[str, ...], expected: int) -> None:
    assert score(chosen, correct) == expected


_UNSTABLE_START = {
    events.POLL_START: {
        "question": {events.TEXT_FALLBACK: "Q"},
        "kind": "org.matrix.msc3381.poll.undisclosed",
        "max_selections": 2,
        "answers": [{"id": "a", events.TEXT_FALLBACK: "A"}, {"id": "b", events.TEXT_FALLBACK: "B"}],
    },
    events.TEXT_FALLBACK: "Q",
}
_STABLE_START = {
    "m.poll": {
        "question": {"m.text": [{"mimetype": "text/html", "body": "<b>Q</b>"}, {"body": "Q"}]},
        "kind": "m.undisclosed",
        "max_selections": 2,
        "answers": [
            {"m.id": "a", "m.text": [{"body": "A"}]},
            {"m.id": "b", "m.text": [{"body": "B"}]},
        ],
    },
    "m.text": [{"body": "Q"}],
}
_RELATES = {"rel_type": "m.reference", "event_id": "$start"}


@pytest.mark.parametrize(
    ("event_type", "content"),
    [(events.POLL_START, _UNSTABLE_START), (events.STABLE_POLL_START, _STABLE_START)],
)
def test_both_shapes_of_a_start_read_alike(event_type: str, content: dict[str, Any]) -> None:
    assert schemas.problem(event_type, content) is None
    assert parse_start(event_type, content) == Start("Q", (("a", "A"), ("b", "B")), 2, False)


@pytest.mark.parametrize(
    ("event_type", "content", "ballot_content"),
    [
        (
            events.POLL_RESPONSE,
            {events.POLL_RESPONSE: {"answers": ["b"]}, "m.relates_to": _RELATES},
            {events.POLL_RESPONSE: {"answers": []}},
        ),
        (
            events.STABLE_POLL_RESPONSE,
            {"m.selections": ["b"], "m.relates_to": _RELATES},
            {"m.selections": []},
        ),
    ],
)
def test_both_shapes_of_a_response_read_and_anonymise_alike(
    event_type: str, content: dict[str, Any], ballot_content: dict[str, Any]
) -> None:
    assert schemas.problem(event_type, content) is None
    assert selections(event_type, content) == ["b"]
    anonymised = anonymised_response(event_type, content, "org.parta.ballot", "blt_1")
    assert anonymised == {**ballot_content, "m.relates_to": _RELATES, "org.parta.ballot": "blt_1"}
    assert schemas.problem(event_type, anonymised) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("2", ("b",)),
        (" 2. ", ("b",)),
        ("2, 3", ("b", "c")),
        ("1;3", ("a", "c")),
        ("3 1", ("c", "a")),
        ("> <@t:x> Опрос: когда?\n> 1. Пн\n\n2", ("b",)),  # the quoted reply fallback
        ("4", None),  # no fourth answer: chat, not a vote
        ("0", None),
        ("2 варианта", None),
        ("я за 2", None),
        ("", None),
        ("> 2", None),
    ],
)
def test_reply_selection(body: str, expected: tuple[str, ...] | None) -> None:
    assert reply_selection(body, IDS) == expected
