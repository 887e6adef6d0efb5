"""MSC3381 counting rules and quiz scores, table-tested (pure functions)."""

import pytest

from synapse_module.content.polls import Response, score, tally, valid_selection

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
