"""What speakers and viewers are told, in Russian and English."""

import json
from typing import Final

from aiohttp import web

from parta_common.messages import Message

NO_TOKEN: Final = Message(
    ru="Нужен токен докладчика (Authorization: Bearer …).",
    en="A speaker token is required (Authorization: Bearer …).",
)
BAD_TOKEN: Final = Message(
    ru="Токен докладчика недействителен или истёк: {reason}",
    en="The speaker token is invalid or has expired: {reason}",
)
NOT_A_SPEAKER: Final = Message(
    ru="Вы не докладчик этой трансляции.",
    en="You are not a speaker of this broadcast.",
)
NO_SCREEN_GRANT: Final = Message(
    ru="Вам не разрешено показывать экран.",
    en="You may not share your screen.",
)
NO_SUCH_BROADCAST: Final = Message(
    ru="Такой трансляции нет.",
    en="There is no such broadcast.",
)
BROADCAST_ENDED: Final = Message(
    ru="Трансляция уже завершена.",
    en="The broadcast has already ended.",
)
NOT_SDP: Final = Message(
    ru="Ожидается предложение SDP (Content-Type: application/sdp).",
    en="An SDP offer is expected (Content-Type: application/sdp).",
)
BAD_SDP: Final = Message(
    ru="Не удалось принять предложение SDP: {reason}",
    en="The SDP offer could not be accepted: {reason}",
)
NO_SUCH_SESSION: Final = Message(
    ru="Нет такого подключения докладчика.",
    en="There is no such speaker session.",
)
NOT_YOUR_SESSION: Final = Message(
    ru="Это подключение другого докладчика.",
    en="This session belongs to another speaker.",
)
NO_TRICKLE: Final = Message(
    ru="Дополнительные ICE-кандидаты не принимаются: все кандидаты есть в ответе.",
    en="Trickle ICE is not supported: the answer carries every candidate.",
)
LINK_INVALID: Final = Message(
    ru="Ссылка на трансляцию недействительна.",
    en="This broadcast link is not valid.",
)
LINK_EXPIRED: Final = Message(
    ru="Срок действия ссылки истёк. Попросите у школы новую ссылку.",
    en="This link has expired. Ask the school for a new one.",
)
LINK_REVOKED: Final = Message(
    ru="Школа отозвала эту ссылку.",
    en="The school has revoked this link.",
)
NOT_STARTED: Final = Message(
    ru="Трансляция ещё не началась.",
    en="The broadcast has not started yet.",
)
UNAVAILABLE: Final = Message(
    ru="Сервер трансляций временно не может проверить ссылку. Попробуйте позже.",
    en="The broadcast server cannot check the link right now. Try again later.",
)


def error(status: int, errcode: str, message: Message, **kwargs: object) -> web.Response:
    """A Matrix-style JSON error that no cache keeps."""
    return web.json_response(
        {"errcode": errcode, "error": message.format(**kwargs)},
        status=status,
        headers={"Cache-Control": "no-store"},
        dumps=readable_json,
    )


def readable_json(value: object) -> str:
    """JSON with Russian left readable (no \\u escapes)."""
    return json.dumps(value, ensure_ascii=False)
