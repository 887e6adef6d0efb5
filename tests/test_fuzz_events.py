"""Parta events fuzzed from their JSON Schemas, sent by a real client (#16 item 2).

A bounded, derandomized profile of ``devtools/fuzz_events.py`` (which runs longer): every
event type the module checks (documents, articles and homework in ``m.room.message``;
poll start, response and end in both namespaces, Parta polls and quizzes among them),
valid and mutated contents, sent with matrix-nio by the class teacher into the class
chat of the real Synapse with the module. Valid ones are stored as sent; refused ones are
a 400 with nothing stored; never a 5xx; the room still takes a plain message afterwards.
"""

import pytest

from devtools import fuzz_events
from tests.content_school import make_school_class
from tests.harness import RunningHomeserver

# Per event type: this many valid and this many mutated contents (9 kinds: ~110 events).
CI_EXAMPLES = 6


def test_the_generator_makes_valid_contents_without_a_filter() -> None:
    place = fuzz_events.Place("!room:hs", "cls_1", "$poll", "hs")
    for event_type, name in fuzz_events.EVENT_KINDS:
        valid, mutated = fuzz_events.contents(name, CI_EXAMPLES, seed=7)
        assert len(valid) == len(mutated) == CI_EXAMPLES, name
        for content in valid:
            assert not fuzz_events.matrix_refuses(content), content
            placed = fuzz_events.for_place(event_type, content, place)
            problem = fuzz_events.module_refuses(event_type, placed, place)
            # Only the module's own rules beyond the schema refuse a valid content.
            assert problem in (
                None,
                "duplicate answer IDs",
                "a Parta poll or quiz is created through the API",
            ), (name, problem, content)
        assert mutated != valid


@pytest.mark.timeout(900)
async def test_fuzzed_events_are_stored_or_refused_whole(synapse: RunningHomeserver) -> None:
    school = make_school_class(synapse, students=1)
    async with synapse.client(school.teacher) as client:
        await client.join(school.room_id)
        tallies = await fuzz_events.fuzz_all(
            client,
            school.room_id,
            school.class_id,
            synapse.server_name,
            CI_EXAMPLES,
            seed=16,
        )
    findings = [line for tally in tallies.values() for line in tally.findings]
    assert not findings, "\n".join(findings)
    assert set(tallies) == {name for _, name in fuzz_events.EVENT_KINDS}
    for name, tally in tallies.items():
        assert tally.sent == 2 * CI_EXAMPLES, name
        assert tally.stored >= 1 and tally.refused >= 1, (name, tally)
