"""Errors the lesson page shows: a code, a Russian / English message, maybe a close code."""

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
        Message("Некорректное сообщение: {detail}.", "Bad message: {detail}."),
    ),
    "join_timeout": ErrorKind(
        Message("Не получен запрос на вход в урок.", "No request to join the lesson arrived."),
        4408,
    ),
    "unauthorized": ErrorKind(
        Message(
            "Ссылка на урок недействительна или устарела; откройте урок заново.",
            "The lesson token is invalid or expired; open the lesson again.",
        ),
        4401,
    ),
    "wrong_room": ErrorKind(
        Message("Этот доступ выдан для другого урока.", "This token is for another lesson."),
        4401,
    ),
    "banned": ErrorKind(
        Message("Учитель удалил вас из этого урока.", "The teacher removed you from this lesson."),
        4403,
    ),
    "lesson_locked": ErrorKind(
        Message("Учитель закрыл вход в урок.", "The teacher has locked the lesson."),
        4423,
    ),
    "lesson_full": ErrorKind(
        Message(
            "В уроке уже {limit} участников — это предел.",
            "The lesson already has {limit} participants, its limit.",
        ),
        4429,
    ),
    "denied": ErrorKind(
        Message("Учитель не впустил вас в урок.", "The teacher did not let you in."), 4403
    ),
    "removed": ErrorKind(
        Message("Учитель удалил вас из урока.", "The teacher removed you from the lesson."),
        4403,
    ),
    "forbidden": ErrorKind(
        Message("Это вам не разрешено: {detail}.", "You are not allowed to do this: {detail}."),
    ),
    "not_found": ErrorKind(
        Message("Участник не найден.", "No such participant."),
    ),
    "bad_sdp": ErrorKind(
        Message(
            "Не удалось установить медиасоединение: {detail}.",
            "Could not set up the media connection: {detail}.",
        ),
    ),
    "internal": ErrorKind(
        Message("Ошибка сервера; подключитесь снова.", "Server error; please reconnect."), 4500
    ),
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
        }
        for key in ("source", "participant_id"):
            if key in self.details:
                body[key] = self.details[key]
        if request_id is not None:
            body["request_id"] = request_id
        return body
