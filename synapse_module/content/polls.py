"""Counting MSC3381 poll responses, and quiz scores: pure, table-tested.

MSC3381's rules: only a person's latest response sent before the poll ended counts;
answer IDs that are not among the poll's answers are ignored; duplicates count once;
only the first ``max_selections`` valid answers count; a response left with no valid
answer is *spoiled*: it withdraws that person's earlier vote.
"""

from collections.abc import Iterable, Sequence

import attrs


@attrs.frozen
class Response:
    user_id: str
    ts: int
    answers: tuple[str, ...]


@attrs.frozen
class Tally:
    counts: dict[str, int]
    # user -> the answers that count for them (spoiled votes are absent)
    choices: dict[str, tuple[str, ...]]

    @property
    def voters(self) -> int:
        return len(self.choices)


def valid_selection(
    answers: Iterable[str], answer_ids: Sequence[str], max_selections: int
) -> tuple[str, ...]:
    """The answers of one response that count, in the order given."""
    known = set(answer_ids)
    chosen: list[str] = []
    for answer in answers:
        if answer in known and answer not in chosen:
            chosen.append(answer)
        if len(chosen) == max_selections:
            break
    return tuple(chosen)


def tally(
    answer_ids: Sequence[str],
    max_selections: int,
    responses: Iterable[Response],
    end_ts: int | None = None,
) -> Tally:
    """Count ``responses`` (any order) by MSC3381's rules."""
    latest: dict[str, Response] = {}
    for response in responses:
        if end_ts is not None and response.ts > end_ts:
            continue
        seen = latest.get(response.user_id)
        if seen is None or response.ts >= seen.ts:
            latest[response.user_id] = response
    counts = dict.fromkeys(answer_ids, 0)
    choices: dict[str, tuple[str, ...]] = {}
    for user_id, response in latest.items():
        chosen = valid_selection(response.answers, answer_ids, max_selections)
        if not chosen:
            continue
        choices[user_id] = chosen
        for answer in chosen:
            counts[answer] += 1
    return Tally(counts, choices)


def score(chosen: Sequence[str], correct: Sequence[str]) -> int:
    """1 when a quiz answer is exactly the set of correct answers, else 0."""
    return 1 if chosen and set(chosen) == set(correct) else 0
