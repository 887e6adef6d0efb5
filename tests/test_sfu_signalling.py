"""Shape checks of client messages: every malformed message is a bad_request, never a crash."""

import json

import pytest

from sfu.errors import ERRORS, LessonError
from sfu.signalling import parse


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"no": "type"}',
        '{"type": 5}',
        '{"type": "fly"}',
        '{"type": "raise_hand", "extra": 1}',
        '{"type": "mute"}',
        '{"type": "mute", "participant_id": 3}',
        '{"type": "offer", "sdp": "v=0", "sources": {"0": "hologram"}}',
        '{"type": "offer", "sdp": "v=0", "sources": []}',
        '{"type": "mute_self", "source": "nose", "muted": true}',
        '{"type": "set_lesson", "locked": "yes"}',
        '{"type": "raise_hand", "request_id": 7}',
        json.dumps({"type": "raise_hand", "request_id": "x" * 65}),
    ],
)
def test_malformed_messages_are_bad_requests(text: str) -> None:
    with pytest.raises(LessonError) as error:
        parse(text)
    assert error.value.code == "bad_request"
    payload = error.value.payload("r1")
    assert payload["type"] == "error"
    assert payload["request_id"] == "r1"
    assert " / " in str(payload["message"])


@pytest.mark.parametrize(
    "message",
    [
        {"type": "raise_hand"},
        {"type": "lower_hand"},
        {"type": "lower_hand", "participant_id": "p2", "request_id": "r"},
        {"type": "offer", "sdp": "v=0", "sources": {"0": "camera", "1": "microphone"}},
        {"type": "mute_self", "source": "microphone", "muted": True},
        {"type": "set_lesson", "locked": True, "waiting_room": False},
        {"type": "allow_screen", "participant_id": "p2", "allowed": True},
    ],
)
def test_well_formed_messages_pass(message: dict[str, object]) -> None:
    assert parse(json.dumps(message)) == message


def test_the_first_message_must_be_join_with_a_token() -> None:
    assert parse('{"type": "join", "token": "t"}', expect_join=True)["token"] == "t"
    for text in ('{"type": "raise_hand"}', '{"type": "join"}', '{"type": "join", "token": 1}'):
        with pytest.raises(LessonError):
            parse(text, expect_join=True)


def test_every_error_has_both_languages_and_fatal_ones_a_close_code() -> None:
    for code, kind in ERRORS.items():
        text = LessonError(code, detail="x", limit=100).payload()["message"]
        assert " / " in str(text), code
        assert kind.close_code is None or 4000 <= kind.close_code < 5000, code
    with pytest.raises(ValueError, match="unknown"):
        LessonError("nonsense")
