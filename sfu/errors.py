"""Errors the lesson page shows: a code, a message (catalogue id ``lesson_error.<code>``, and
its "русский / English" text), maybe a close code."""

from typing import Final

import attrs

from parta_common.messages import Message


@attrs.frozen
class ErrorKind:
    message: Message
    # WebSocket close code when the error ends the connection.
    close_code: int | None = None


ERRORS: Final[dict[str, ErrorKind]] = {
    "bad_request": ErrorKind(
        Message("lesson_error.bad_request"),
    ),
    "join_timeout": ErrorKind(
        Message("lesson_error.join_timeout"),
        4408,
    ),
    "unauthorized": ErrorKind(
        Message("lesson_error.unauthorized"),
        4401,
    ),
    "wrong_room": ErrorKind(
        Message("lesson_error.wrong_room"),
        4401,
    ),
    "banned": ErrorKind(
        Message("lesson_error.banned"),
        4403,
    ),
    "lesson_locked": ErrorKind(
        Message("lesson_error.lesson_locked"),
        4423,
    ),
    "lesson_full": ErrorKind(
        Message("lesson_error.lesson_full"),
        4429,
    ),
    "denied": ErrorKind(Message("lesson_error.denied"), 4403),
    "removed": ErrorKind(
        Message("lesson_error.removed"),
        4403,
    ),
    "forbidden": ErrorKind(
        Message("lesson_error.forbidden"),
    ),
    "not_found": ErrorKind(
        Message("lesson_error.not_found"),
    ),
    "bad_sdp": ErrorKind(
        Message("lesson_error.bad_sdp"),
    ),
    "internal": ErrorKind(Message("lesson_error.internal"), 4500),
}


class LessonError(Exception):
    """A refusal to send to the client as an ``error`` message."""

    def __init__(self, code: str, **details: object) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown lesson error code {code!r}")
        self.code = code
        self.details = details
        super().__init__(code)

    @property
    def kind(self) -> ErrorKind:
        return ERRORS[self.code]

    def payload(self, request_id: str | None = None) -> dict[str, object]:
        fmt = {"detail": "", "limit": "", **self.details}
        body: dict[str, object] = {
            "type": "error",
            "code": self.code,
            "message": self.kind.message.format(**fmt),
            # The page shows the text in its own language from these (sfu/static/texts.js).
            **self.kind.message.fields(**fmt),
        }
        for key in ("source", "participant_id"):
            if key in self.details:
                body[key] = self.details[key]
        if request_id is not None:
            body["request_id"] = request_id
        return body
