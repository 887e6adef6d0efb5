"""The one registration point: which features answer which Synapse callback, in which
order (``synapse_module/pipeline.py``), and that order seen from a real client."""

import pytest
from nio import JoinResponse

from parta_common import events
from synapse_module import pipeline
from synapse_module.broadcasts.api import Broadcasts
from synapse_module.confirmations.api import Confirmations
from synapse_module.content.callbacks import Content
from synapse_module.homework.api import Homework
from synapse_module.privacy.callbacks import ConsentsInRooms
from synapse_module.quiet_hours.api import QuietHoursFeature
from synapse_module.roster import texts as roster_texts
from synapse_module.roster.api import Roster
from tests.content_school import ClassRoom, make_school_class, send
from tests.harness import RunningHomeserver

# The documented order (docs/architecture.md, "One registration point"). Changing it
# changes what a person is told when an event breaks two rules: change both on purpose.
DOCUMENTED_ORDER = {
    "check_event_allowed": (
        "roster",
        "consents",
        "content",
        "homework",
        "confirmations",
        "quiet_hours",
    ),
    "on_new_event": ("content", "homework", "confirmations"),
    "on_create_room": ("roster",),
    "user_may_create_room": ("roster", "broadcasts"),
    "user_may_invite": ("roster", "broadcasts"),
    "user_may_join_room": ("roster", "broadcasts"),
    "user_may_publish_room": ("roster",),
    "check_event_for_spam": ("broadcasts",),
    "check_username_for_spam": ("roster",),
    "check_media_file_for_spam": ("content",),
    "get_media_config_for_user": ("content",),
    "is_user_allowed_to_upload_media_of_size": ("content",),
    "get_ratelimit_override_for_user": ("roster",),
    "check_password": ("roster",),
    "on_user_login": ("roster",),
}
FEATURE_CLASSES = {
    "roster": Roster,
    "consents": ConsentsInRooms,
    "broadcasts": Broadcasts,
    "content": Content,
    "homework": Homework,
    "confirmations": Confirmations,
    "quiet_hours": QuietHoursFeature,
}


def test_callback_order_is_the_documented_one() -> None:
    assert dict(pipeline.CALLBACK_ORDER) == DOCUMENTED_ORDER
    # The roster (who may send what where) speaks before content (is it well-formed).
    order = pipeline.CALLBACK_ORDER["check_event_allowed"]
    assert order.index("roster") < order.index("content")
    # A student without consent is told so before their message is checked for form.
    assert order.index("consents") < order.index("content")


@pytest.mark.parametrize(
    ("callback", "feature"),
    [(c, f) for c, features in DOCUMENTED_ORDER.items() for f in features],
)
def test_every_feature_named_answers_its_callback(callback: str, feature: str) -> None:
    assert callable(getattr(FEATURE_CLASSES[feature], callback, None)), (feature, callback)


def test_on_new_event_is_registered_only_where_events_are_indexed() -> None:
    """Synapse reads a room's whole current state for every event it hands to
    ``on_new_event``, on every process that hears of the event: only the indexing process
    (``content.indexer_worker``) registers it; the rules are registered everywhere."""
    here = pipeline.third_party_rules(FEATURE_CLASSES, indexes_here=True)
    elsewhere = pipeline.third_party_rules(FEATURE_CLASSES, indexes_here=False)
    assert here["on_new_event"] is not None
    assert elsewhere["on_new_event"] is None
    for rules in (here, elsewhere):
        assert rules["check_event_allowed"] is not None
        assert rules["on_create_room"] is not None


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> ClassRoom:
    return make_school_class(synapse, students=1)


def _malformed_poll() -> dict[str, object]:
    # No answers: the MSC3381 schema wants at least one.
    return {
        events.POLL_START: {
            "question": {events.TEXT_FALLBACK: "?"},
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 1,
            "answers": [],
        },
        events.TEXT_FALLBACK: "?",
    }


async def test_roster_refusal_comes_before_content_validation(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    """A student's malformed poll in the announcements channel breaks two rules: only
    staff post there (roster) and the poll has no answers (content). The person is told
    the first: 403, not 400. The teacher's same poll shows content's error is real."""
    announcements = school.school_rooms["announcements"]
    student, teacher = school.students[0], school.teacher
    for user in (student, teacher):
        async with synapse.client(user) as client:
            assert isinstance(await client.join(announcements), JoinResponse)

    status, body = await send(synapse, student, announcements, events.POLL_START, _malformed_poll())
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
    assert body["error"] == roster_texts.SEND_NEEDS_STAFF.format()

    status, body = await send(synapse, teacher, announcements, events.POLL_START, _malformed_poll())
    assert (status, body["errcode"]) == (400, "M_BAD_JSON"), body


async def test_structure_state_refusal_comes_first(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    """Structure state from a person is refused by the first rule, even from the
    school's administrator in the school's own space."""
    from tests.content_school import matrix, q

    space = school.school_rooms["school_space"]
    status, body = await matrix(
        synapse,
        school.admin,
        "PUT",
        f"/_matrix/client/v3/rooms/{q(space)}/state/{q(events.SCHOOL)}/",
        body={"name": "Не та школа"},
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
    assert body["error"] == roster_texts.STRUCTURE_STATE_FORBIDDEN.format(event_type=events.SCHOOL)
