"""Fuzz the Parta event types from their JSON Schemas, sent by a real Matrix client.

Every event content the module checks (``parta_common/schemas``: documents, articles and
homework inside ``m.room.message``; polls' start, response and end in the unstable and the
stable ``m.poll.*`` namespace, with and without a Parta poll or quiz block) is generated
from its schema, valid and mutated, and sent with matrix-nio by the class teacher into
the class chat of a real Synapse with the module. The oracle is the schema plus the few
rules the module adds (a Parta poll is created through the API, answer IDs are unique,
homework names the room's class and a calendar date) and Matrix's own (no floats, no
integers past 2^53). What it accepts must be stored as sent; what it refuses must be a
400 with nothing stored; never a 5xx, and after the batch the room still takes a plain
message.

The generator is our own (``strategy``): the schemas use a small part of JSON Schema
(type, properties, required, additionalProperties, const, enum, lengths, pattern, bounds,
items), and generating from it directly is fast, bounded (strings of at most 40
characters, arrays of at most 4 items, integers within Matrix's range) and never needs a
filter. hypothesis-jsonschema 0.23.1, its last release, fails on this hypothesis
(``'many' object has no attribute 'more'``); schemathesis's generator produced floats and
huge integers in most "valid" contents, which a filter then threw away.

``python -m devtools.fuzz_events --examples 200`` starts its own Synapse (SQLite unless
``PARTA_TEST_DB=postgres``) and prints a line per event type; ``tests/test_fuzz_events.py``
runs the same code with a small, derandomized budget in ``make test``.
"""

import argparse
import asyncio
import copy
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from nio import AsyncClient, RoomSendError, RoomSendResponse

from parta_common import events, schemas
from synapse_module.content import polls
from synapse_module.homework.rules import parse_due

MATRIX_INT: Final = 2**53 - 1
MAX_TEXT: Final = 40
MAX_ITEMS: Final = 4

# (event type, the schema its content answers to)
EVENT_KINDS: Final[list[tuple[str, str]]] = [
    ("m.room.message", "org.parta.document.message"),
    ("m.room.message", "org.parta.article.message"),
    ("m.room.message", "org.parta.homework.message"),
    *((name, name) for name in sorted(events.POLL_STARTS | events.POLL_RESPONSES)),
    *((name, name) for name in sorted(events.POLL_ENDS)),
]

# Values put in place of a generated one by a mutation.
JUNK: Final[list[Any]] = [
    None,
    0,
    -1,
    1.5,
    MATRIX_INT + 1,
    "",
    " ",
    "\u0000",
    "x" * 300,
    [],
    {},
    True,
    [None],
    {"": None},
    "mxc://",
    "2026-02-30",
]

# -- generation from a schema -----------------------------------------------------------

Schema = Mapping[str, Any]

SCALARS: Final = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MATRIX_INT, MATRIX_INT),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=MAX_TEXT),
)
TEXT_CHARS: Final = st.characters(codec="utf-8", exclude_characters="\x00")


def _resolve(node: Schema) -> Schema:
    ref = node.get("$ref")
    if isinstance(ref, str):
        return schemas.schema(ref.removeprefix(schemas.BASE_URI).removesuffix(".json"))
    return node


def _regex(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True, alphabet=TEXT_CHARS)


def _string(node: Schema) -> st.SearchStrategy[str]:
    low = int(node.get("minLength", 0))
    high = max(low, min(int(node.get("maxLength", MAX_TEXT)), MAX_TEXT))
    pattern = node.get("pattern")
    if pattern is None:
        return st.text(TEXT_CHARS, min_size=low, max_size=high)
    if pattern.startswith("^") and pattern.endswith("$"):
        # Anchored: generate from the pattern itself, then keep the lengths allowed.
        return _regex(pattern).filter(lambda s: low <= len(s) <= high)
    # Unanchored (e.g. "\\S": something that is not blank): text around a match.
    pad = st.text(TEXT_CHARS, max_size=3)
    padded = st.tuples(pad, _regex(pattern), pad).map(lambda t: t[0] + t[1] + t[2])
    return padded.filter(lambda s: low <= len(s) <= high and re.search(pattern, s) is not None)


def _object(node: Schema) -> st.SearchStrategy[dict[str, Any]]:
    properties: Mapping[str, Schema] = node.get("properties", {})
    required = set(node.get("required", ()))
    fixed = {k: strategy(v) for k, v in properties.items() if k in required}
    optional = {k: strategy(v) for k, v in properties.items() if k not in required}
    base = st.fixed_dictionaries(fixed, optional=optional)
    extra_schema = node.get("additionalProperties", True)
    if extra_schema is False:
        return base
    extra_values = SCALARS if extra_schema is True else strategy(extra_schema)
    keys = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12)
    extras = st.dictionaries(keys.filter(lambda k: k not in properties), extra_values, max_size=2)
    return st.tuples(base, extras).map(lambda t: {**t[1], **t[0]})


def strategy(node: Schema) -> st.SearchStrategy[Any]:
    """Values valid for ``node`` (a schema, or a part of one, with ``$ref`` to others)."""
    node = _resolve(node)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([strategy({**node, "type": k}) for k in kind])
    if kind == "object":
        return _object(node)
    if kind == "string":
        return _string(node)
    if kind == "integer":
        low = max(int(node.get("minimum", -MATRIX_INT)), -MATRIX_INT)
        return st.integers(low, min(int(node.get("maximum", MATRIX_INT)), MATRIX_INT))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = strategy(node.get("items", {}))
        low = int(node.get("minItems", 0))
        high = max(low, min(int(node.get("maxItems", MAX_ITEMS)), MAX_ITEMS))
        unique = json.dumps if node.get("uniqueItems") else None
        return st.lists(items, min_size=low, max_size=high, unique_by=unique)
    if kind is None and not node.keys() - {"description", "title"}:
        return SCALARS
    raise ValueError(f"the generator does not know this schema part: {dict(node)}")


def mutate(content: Any, rnd: random.Random, junk: Any) -> Any:
    """Delete a key, or put ``junk`` in place of a value, somewhere in ``content``."""
    mutated = copy.deepcopy(content)
    spots: list[tuple[Any, Any]] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                spots.append((node, k))
                collect(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                spots.append((node, i))
                collect(v)

    collect(mutated)
    if not spots:
        return junk
    container, key = rnd.choice(spots)
    if isinstance(container, dict) and rnd.random() < 0.4:
        del container[key]
    else:
        container[key] = copy.deepcopy(junk)
    return mutated


def samples(values: st.SearchStrategy[Any], n: int, seed: int | None) -> list[Any]:
    """``n`` values drawn by hypothesis (``seed`` for the same values every run)."""
    drawn: list[Any] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=seed is not None,
    )
    @given(values)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn[:n]


def contents(schema_name: str, n: int, seed: int | None) -> tuple[list[Any], list[Any]]:
    """(``n`` valid contents, ``n`` mutated ones)."""
    valid = strategy(schemas.schema(schema_name))
    rnd = random.Random(seed)
    good = samples(valid, n, seed)
    more = samples(valid, n, None if seed is None else seed + 1)
    mutated = [mutate(c, rnd, rnd.choice(JUNK)) for c in more]
    return good, mutated


# -- the oracle --------------------------------------------------------------------------


def matrix_refuses(value: Any) -> bool:
    """What a Matrix homeserver refuses in an event (canonical JSON): floats, integers
    outside ±(2^53 - 1)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return True
    if isinstance(value, int):
        return abs(value) > MATRIX_INT
    if isinstance(value, dict):
        return any(matrix_refuses(v) for v in value.values())
    if isinstance(value, list):
        return any(matrix_refuses(v) for v in value)
    return False


@attrs.frozen
class Place:
    """Where the events go: the class chat, its class and a poll the teacher started."""

    room_id: str
    class_id: str
    poll_start_id: str
    server_name: str


def module_refuses(event_type: str, content: Any, place: Place) -> str | None:
    """Why the module refuses ``content`` (as ``content/`` and ``homework/`` check it)."""
    if event_type == "m.room.message":
        if not isinstance(content, dict):
            return None
        if events.DOCUMENT in content:
            return schemas.problem("org.parta.document.message", content)
        if events.ARTICLE in content:
            return schemas.problem("org.parta.article.message", content)
        if events.HOMEWORK in content:
            problem = schemas.problem("org.parta.homework.message", content)
            if problem is not None:
                return problem
            block = content[events.HOMEWORK]
            if parse_due(block["due"]) is None:
                return "no calendar date"
            if block["class_id"] != place.class_id:
                return "another class"
        return None
    problem = schemas.problem(event_type, content)
    if problem is not None:
        return problem
    if event_type in events.POLL_STARTS:
        answers = [a for a, _ in polls.parse_start(event_type, content).answers]
        if len(set(answers)) != len(answers):
            return "duplicate answer IDs"
        if "org.parta.poll" in content:
            return "a Parta poll or quiz is created through the API"
    return None


def for_place(event_type: str, content: Any, place: Place) -> Any:
    """A valid content made to fit the place: relations point at the teacher's poll,
    homework names the room's class and a real date, media is on another server (our own
    must match an upload)."""
    if not isinstance(content, dict):
        return content
    content = copy.deepcopy(content)
    relates = content.get("m.relates_to")
    if isinstance(relates, dict) and "event_id" in relates:
        relates["event_id"] = place.poll_start_id
    block = content.get(events.HOMEWORK)
    if event_type == "m.room.message" and isinstance(block, dict):
        block["class_id"] = place.class_id
        block["due"] = "2026-05-25"
    url = content.get("url")
    if isinstance(url, str) and url.startswith(f"mxc://{place.server_name}/"):
        content["url"] = "mxc://elsewhere.example/" + url.rpartition("/")[2]
    return content


# -- sending -----------------------------------------------------------------------------


@attrs.define
class Tally:
    sent: int = 0
    stored: int = 0
    refused: int = 0
    findings: list[str] = attrs.Factory(list)


def stored_as_sent(sent: Any, stored: Any) -> bool:
    """Equal as JSON, but for what the module makes safe (an article's HTML, a message's
    formatted body)."""

    def cleaned(c: Any) -> Any:
        if not isinstance(c, dict):
            return c
        return {k: v for k, v in c.items() if k not in ("formatted_body", events.ARTICLE)}

    return bool(json.loads(json.dumps(cleaned(sent))) == json.loads(json.dumps(cleaned(stored))))


async def latest_event_id(client: AsyncClient, room_id: str) -> str:
    answer = await client.room_messages(room_id, limit=1)
    chunk = getattr(answer, "chunk", None)
    assert chunk, answer
    return str(chunk[0].event_id)


async def send_batch(
    client: AsyncClient, place: Place, event_type: str, batch: list[Any], tally: Tally
) -> None:
    """Send each content; compare what happened with the oracle."""
    for content in batch:
        expected = matrix_refuses(content) or module_refuses(event_type, content, place)
        # A relation to an event that is not the poll: Synapse may refuse it first.
        relates = content.get("m.relates_to") if isinstance(content, dict) else None
        either = isinstance(relates, dict) and relates.get("event_id") != place.poll_start_id
        shown = json.dumps(content, ensure_ascii=False)[:300]
        before = await latest_event_id(client, place.room_id)
        sent = await client.room_send(
            place.room_id,
            event_type,
            content,
            tx_id=uuid.uuid4().hex,
            ignore_unverified_devices=True,
        )
        tally.sent += 1
        if isinstance(sent, RoomSendResponse):
            if expected and not either:
                tally.findings.append(
                    f"{event_type}: accepted though refused ({expected}): {shown}"
                )
                continue
            event = await client.room_get_event(place.room_id, sent.event_id)
            got = getattr(event, "event", None)
            source = getattr(got, "source", {}) if got is not None else {}
            if source.get("type") != event_type or not stored_as_sent(
                content, source.get("content")
            ):
                tally.findings.append(f"{event_type}: stored differently: {shown} -> {source}")
            tally.stored += 1
            continue
        code = sent.transport_response.status if sent.transport_response else 0
        if not isinstance(sent, RoomSendError) or code != 400 or not (expected or either):
            message = getattr(sent, "message", sent)
            tally.findings.append(f"{event_type}: {code} {message}: {shown}")
            continue
        if await latest_event_id(client, place.room_id) != before:
            tally.findings.append(f"{event_type}: refused but something was stored: {shown}")
        tally.refused += 1


async def start_poll(client: AsyncClient, room_id: str) -> str:
    sent = await client.room_send(
        room_id,
        events.POLL_START,
        {
            events.POLL_START: {
                "question": {"org.matrix.msc1767.text": "Куда?"},
                "kind": "org.matrix.msc3381.poll.disclosed",
                "max_selections": 1,
                "answers": [
                    {"id": "a", "org.matrix.msc1767.text": "А"},
                    {"id": "b", "org.matrix.msc1767.text": "Б"},
                ],
            },
            "org.matrix.msc1767.text": "Куда?",
        },
        tx_id=uuid.uuid4().hex,
    )
    assert isinstance(sent, RoomSendResponse), sent
    return str(sent.event_id)


async def fuzz_all(
    client: AsyncClient,
    room_id: str,
    class_id: str,
    server_name: str,
    examples: int,
    seed: int | None,
    only: str | None = None,
) -> dict[str, Tally]:
    """Every event kind: ``examples`` valid and ``examples`` mutated contents. ``seed``:
    the same contents every run (the CI profile); None explores."""
    tallies: dict[str, Tally] = {}
    for index, (event_type, schema_name) in enumerate(EVENT_KINDS):
        if only is not None and not re.search(only, schema_name):
            continue
        place = Place(room_id, class_id, await start_poll(client, room_id), server_name)
        kind_seed = None if seed is None else seed + 1000 * index
        valid, mutated = contents(schema_name, examples, kind_seed)
        valid = [for_place(event_type, c, place) for c in valid]
        tally = tallies.setdefault(schema_name, Tally())
        await send_batch(client, place, event_type, [*valid, *mutated], tally)
    # The room is not stuck: a plain message still goes in.
    plain = await client.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": "после фаззинга"},
        tx_id=uuid.uuid4().hex,
    )
    if not isinstance(plain, RoomSendResponse):
        tallies.setdefault("after", Tally()).findings.append(f"a plain message failed: {plain}")
    return tallies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="valid (and mutated) per kind")
    parser.add_argument("--seed", type=int, default=None, help="the same contents every run")
    parser.add_argument("--only", help="regex over the schema names to fuzz")
    args = parser.parse_args(argv)
    from tests.content_school import make_school_class
    from tests.harness import running_homeserver

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory, running_homeserver(Path(directory)) as hs:
        school = make_school_class(hs, students=1)

        async def run() -> dict[str, Tally]:
            async with hs.client(school.teacher) as client:
                await client.join(school.room_id)
                return await fuzz_all(
                    client,
                    school.room_id,
                    school.class_id,
                    hs.server_name,
                    args.examples,
                    args.seed,
                    args.only,
                )

        tallies = asyncio.run(run())
    failed = 0
    for name, tally in tallies.items():
        print(
            f"{name:40} sent {tally.sent:5}  stored {tally.stored:5}  refused {tally.refused:5}"
            f"  findings: {len(tally.findings)}"
        )
        for line in tally.findings:
            print("  " + line)
        failed += len(tally.findings)
    total = sum(t.sent for t in tallies.values())
    print(f"total {total} events in {time.monotonic() - started:.0f} s, findings: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
