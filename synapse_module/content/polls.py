"""Counting MSC3381 poll responses, and quiz scores: pure, table-tested.

MSC3381's rules: only a person's latest response sent before the poll ended counts;
answer IDs that are not among the poll's answers are ignored; duplicates count once;
only the first ``max_selections`` valid answers count; a response left with no valid
answer is *spoiled*: it withdraws that person's earlier vote. The unstable and the
stable event types are read into the same values (:func:`parse_start`, :func:`selections`).
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from parta_common import events


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


_NUMBERS = re.compile(r"\s*\d{1,3}(?:\s*[,;\s]\s*\d{1,3})*\s*\.?\s*")


def reply_numbers(body: str) -> list[int] | None:
    """The numbers a text reply gives («2», «2, 3»), or ``None`` if it is not only numbers.

    The quoted reply fallback (lines starting with ``>``) is dropped first.
    """
    text = "\n".join(line for line in body.splitlines() if not line.startswith(">")).strip()
    if not text or _NUMBERS.fullmatch(text) is None:
        return None
    return [int(n) for n in re.findall(r"\d+", text)]


def reply_selection(body: str, answer_ids: Sequence[str]) -> tuple[str, ...] | None:
    """The answers a text reply to a poll chooses by number, or ``None`` (ordinary chat).

    For clients without polls (docs/content.md, "Voting by reply"): numbers 1..n of the
    poll's answers; one out of range makes the reply chat, not a vote. ``max_selections``
    and duplicates are left to :func:`valid_selection`, as for a native response.
    """
    numbers = reply_numbers(body)
    if numbers is None or any(n < 1 or n > len(answer_ids) for n in numbers):
        return None
    return tuple(answer_ids[n - 1] for n in numbers)


def score(chosen: Sequence[str], correct: Sequence[str]) -> int:
    """1 when a quiz answer is exactly the set of correct answers, else 0."""
    return 1 if chosen and set(chosen) == set(correct) else 0


# -- the two shapes of a poll -------------------------------------------------------
# Element sends MSC3381's unstable types (org.matrix.msc3381.poll.*); the Matrix spec
# (v1.7) has the stable ones (m.poll.*). Both are read into the same values here, so the
# module validates, counts and protects them alike. Content is schema-valid when these
# are called.


@attrs.frozen
class Start:
    question: str
    answers: tuple[tuple[str, str], ...]  # (answer id, text)
    max_selections: int
    disclosed: bool


def _text(representation: Sequence[Mapping[str, Any]]) -> str:
    """The plain text of a stable ``m.text`` representation."""
    for item in representation:
        if item.get("mimetype", "text/plain") == "text/plain":
            return str(item["body"])
    return str(representation[0]["body"])


def parse_start(event_type: str, content: Mapping[str, Any]) -> Start:
    if event_type == events.STABLE_POLL_START:
        poll = content["m.poll"]
        return Start(
            question=_text(poll["question"]["m.text"]),
            answers=tuple((str(a["m.id"]), _text(a["m.text"])) for a in poll["answers"]),
            max_selections=int(poll.get("max_selections", 1)),
            # The spec: an unknown or missing kind is treated as undisclosed.
            disclosed=poll.get("kind") == "m.disclosed",
        )
    poll = content[events.POLL_START]
    return Start(
        question=str(poll["question"][events.TEXT_FALLBACK]),
        answers=tuple((str(a["id"]), str(a[events.TEXT_FALLBACK])) for a in poll["answers"]),
        max_selections=int(poll.get("max_selections", 1)),
        disclosed=poll.get("kind") != "org.matrix.msc3381.poll.undisclosed",
    )


def selections(event_type: str, content: Mapping[str, Any]) -> list[str]:
    """The answers a response chooses (before counting rules)."""
    if event_type == events.STABLE_POLL_RESPONSE:
        return [str(a) for a in content["m.selections"]]
    return [str(a) for a in content[events.POLL_RESPONSE]["answers"]]


def anonymised_response(
    event_type: str, content: Mapping[str, Any], ballot_key: str, ballot_id: str
) -> dict[str, Any]:
    """A response to an anonymous poll as the room sees it: no choice, only the ballot."""
    emptied: dict[str, Any] = (
        {"m.selections": []}
        if event_type == events.STABLE_POLL_RESPONSE
        else {events.POLL_RESPONSE: {"answers": []}}
    )
    return {**emptied, "m.relates_to": content["m.relates_to"], ballot_key: ballot_id}
