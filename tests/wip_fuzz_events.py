"""WORK IN PROGRESS (not collected: the valid-content filter makes generation too slow).

Parta events fuzzed from their JSON Schemas, sent by a real client (#16 item 2).

Every event content the module checks (``parta_common/schemas``: documents and articles
inside ``m.room.message``, polls' start / response / end in both namespaces) is
generated from its schema with hypothesis-jsonschema, valid and mutated, and sent with
matrix-nio by the class teacher into the class chat of a real Synapse with the module.
The schema itself is the oracle: what it accepts is stored as sent, what it refuses is
a 400 ``M_BAD_JSON`` with nothing stored; never a 5xx, and the room still takes a plain
message afterwards. (Lessons and broadcasts are API calls, not events: the API fuzzing
of ``test_fuzz_api.py`` covers them.)
"""

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from nio import JoinResponse, RoomSendError, RoomSendResponse
from schemathesis import GenerationMode

from parta_common import events, schemas
from tests.content_school import ClassRoom, make_school_class, matrix, q
from tests.harness import RunningHomeserver

# Per event type, in make test: this many valid and this many mutated contents.
CI_EXAMPLES = 6

# (event type, the schema its content answers to, the key of the block inside it).
EVENT_KINDS: list[tuple[str, str]] = [
    ("m.room.message", "org.parta.document.message"),
    ("m.room.message", "org.parta.article.message"),
    *(
        (name, name)
        for name in sorted(events.POLL_STARTS | events.POLL_RESPONSES | events.POLL_ENDS)
    ),
]

JUNK: list[Any] = [None, 0, -1, 1.5, "", "x" * 300, [], {}, True, [None], {"": None}]


def inlined(name: str) -> dict[str, Any]:
    """The schema with its ``$ref`` s to the other Parta schemas replaced by them, which
    hypothesis-jsonschema needs (it resolves no remote references)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.endswith(".json"):
                target = ref.removeprefix(schemas.BASE_URI).removesuffix(".json")
                rest = {k: walk(v) for k, v in node.items() if k != "$ref"}
                return {"allOf": [walk(inner(target)), rest]} if rest else walk(inner(target))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    def inner(target: str) -> dict[str, Any]:
        found = {k: v for k, v in schemas.schema(target).items() if k not in ("$id", "$schema")}
        return found

    top = {k: v for k, v in schemas.schema(name).items() if k not in ("$id", "$schema")}
    result: dict[str, Any] = walk(top)
    return result


def refused_by_module(event_type: str, content: Any) -> bool:
    """What the module checks, as ``content/callbacks.py`` dispatches it."""
    if event_type == "m.room.message":
        if not isinstance(content, dict):
            return False
        if events.DOCUMENT in content:
            return schemas.problem("org.parta.document.message", content) is not None
        if events.ARTICLE in content:
            return schemas.problem("org.parta.article.message", content) is not None
        return False
    return schemas.problem(event_type, content) is not None


def matrix_refuses(value: Any) -> bool:
    """What any Matrix homeserver refuses in an event (canonical JSON): floats, and
    integers outside ±(2^53 - 1)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return True
    if isinstance(value, int):
        return abs(value) > 2**53 - 1
    if isinstance(value, dict):
        return any(matrix_refuses(v) for v in value.values())
    if isinstance(value, list):
        return any(matrix_refuses(v) for v in value)
    return False


def mutate(content: dict[str, Any], rnd: random.Random, junk: Any) -> dict[str, Any]:
    """Delete a key, or put junk in place of a value, somewhere in ``content``."""
    mutated = copy.deepcopy(content)
    # Every (container, key) pair in the tree.
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
        return {"junk": junk}
    container, key = rnd.choice(spots)
    if isinstance(container, dict) and rnd.random() < 0.4:
        del container[key]
    else:
        container[key] = copy.deepcopy(junk)
    return mutated


def samples(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` values drawn by hypothesis (generation only: nothing here to shrink)."""
    drawn: list[Any] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn[:n]


def from_schema(schema: dict[str, Any], mode: GenerationMode) -> st.SearchStrategy[Any]:
    """Contents generated from a JSON Schema (2020-12) by schemathesis's generator, as the
    body of a one-operation OpenAPI 3.1 document. (hypothesis-jsonschema 0.23.1, the
    last release, fails on the hypothesis this venv has: ``'many' object has no attribute
    'more'``.)"""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "event", "version": "1"},
        "paths": {
            "/event": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": schema}},
                    },
                    "responses": {"200": {"description": "stored"}},
                }
            }
        },
    }
    operation = schemathesis.openapi.from_dict(document)["/event"]["POST"]
    return operation.as_strategy(generation_mode=mode).map(lambda case: case.body)


def contents(schema_name: str, n: int) -> tuple[list[Any], list[Any]]:
    """(valid contents, invalid ones: schemathesis's negative mode and our mutations)."""
    schema = inlined(schema_name)
    # Valid for the schema and for Matrix (no floats, no integers past 2^53).
    valid = from_schema(schema, GenerationMode.POSITIVE).filter(lambda c: not matrix_refuses(c))
    mutated = st.tuples(valid, st.randoms(use_true_random=False), st.sampled_from(JUNK)).map(
        lambda t: mutate(t[0], t[1], t[2])
    )
    invalid = st.one_of(mutated, from_schema(schema, GenerationMode.NEGATIVE))
    return samples(valid, n), samples(invalid, n)


@pytest.fixture(scope="module")
def room(synapse: RunningHomeserver) -> ClassRoom:
    return make_school_class(synapse, students=1)


async def latest_event_id(synapse: RunningHomeserver, school: ClassRoom) -> str:
    status, body = await matrix(
        synapse,
        school.teacher,
        "GET",
        f"/_matrix/client/v3/rooms/{q(school.room_id)}/messages",
        params={"dir": "b", "limit": "1"},
    )
    assert status == 200, body
    return str(body["chunk"][0]["event_id"])


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON (Synapse gives integers back for floats like 1.0)."""
    return bool(json.loads(json.dumps(a)) == json.loads(json.dumps(b)) or _loose(a) == _loose(b))


def _loose(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _loose(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_loose(v) for v in value]
    return value


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("event_type", "schema_name"), EVENT_KINDS)
async def test_fuzzed_events_are_stored_or_refused_whole(
    synapse: RunningHomeserver, room: ClassRoom, event_type: str, schema_name: str
) -> None:
    valid, mutated = contents(schema_name, CI_EXAMPLES)
    assert valid and mutated
    # Responses and ends must point at a real poll (Synapse refuses relations to
    # unknown events): the valid ones point at one the teacher started.
    start_id = await start_poll(synapse, room)
    valid = [pointing_at(c, start_id) for c in valid]
    mutated = [c for c in mutated if is_json(c)]
    problems: list[str] = []
    stored = refused = 0
    async with synapse.client(room.teacher) as client:
        joined = await client.join(room.room_id)
        assert isinstance(joined, JoinResponse), joined
        for content in [*valid, *mutated]:
            expect_refusal = matrix_refuses(content) or refused_by_module(event_type, content)
            # A relation to an event that is not there: Synapse may refuse it (400) first.
            relates = content.get("m.relates_to") if isinstance(content, dict) else None
            either = isinstance(relates, dict) and relates.get("event_id") != start_id
            before = await latest_event_id(synapse, room)
            sent = await client.room_send(room.room_id, event_type, content)
            shown = json.dumps(content, ensure_ascii=False)[:300]
            if isinstance(sent, RoomSendResponse):
                if expect_refusal and not either:
                    problems.append(f"accepted although the schema refuses it: {shown}")
                    continue
                status, event = await matrix(
                    synapse,
                    room.teacher,
                    "GET",
                    f"/_matrix/client/v3/rooms/{q(room.room_id)}/event/{q(sent.event_id)}",
                )
                assert status == 200, event
                if event["type"] != event_type or not _stored_as_sent(content, event["content"]):
                    problems.append(f"stored differently: {shown} -> {event['content']}")
                stored += 1
                continue
            assert isinstance(sent, RoomSendError), sent
            # nio's status_code is the errcode; the HTTP status is the transport's.
            code = sent.transport_response.status if sent.transport_response else 0
            # Refused by the module (M_BAD_JSON) or, before it, by Synapse's own checks of
            # m.room.message or relations (M_UNKNOWN): a 400 either way.
            if not (expect_refusal or either) or code != 400 or not sent.status_code:
                problems.append(f"{code} {sent.status_code} {sent.message}: {shown}")
                continue
            if await latest_event_id(synapse, room) != before:
                problems.append(f"refused but something was stored: {shown}")
            refused += 1
        # The room is not stuck: a plain message still goes in.
        plain = await client.room_send(
            room.room_id, "m.room.message", {"msgtype": "m.text", "body": "после фаззинга"}
        )
        assert isinstance(plain, RoomSendResponse), plain
    assert not problems, "\n".join(problems)
    assert stored >= len(valid), (stored, refused)


async def start_poll(synapse: RunningHomeserver, room: ClassRoom) -> str:
    status, body = await matrix(
        synapse,
        room.teacher,
        "PUT",
        f"/_matrix/client/v3/rooms/{q(room.room_id)}/send/{events.POLL_START}/{random.random()}",
        body={
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
    )
    assert status == 200, body
    return str(body["event_id"])


def pointing_at(content: Any, event_id: str) -> Any:
    relates = content.get("m.relates_to") if isinstance(content, dict) else None
    if isinstance(relates, dict) and "event_id" in relates:
        return {**content, "m.relates_to": {**relates, "event_id": event_id}}
    return content


def is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _stored_as_sent(sent: Any, stored: Any) -> bool:
    """Stored as sent, but for what the module makes safe (an article's HTML, a
    message's formatted body): those keys may differ."""
    cleaned: Callable[[Any], Any] = lambda c: {  # noqa: E731
        k: v for k, v in c.items() if k not in ("formatted_body", events.ARTICLE)
    }
    return same_json(cleaned(sent), cleaned(stored))
