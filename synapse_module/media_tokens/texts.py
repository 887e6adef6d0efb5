"""What a person reads about media tokens (Russian and English)."""

from typing import Final

from parta_common.messages import Message

MEDIA_DISABLED: Final = Message(
    ru="Видеоуроки на этом сервере не включены.",
    en="Video lessons are not enabled on this server.",
)
BAD_ROOM_ID: Final = Message(
    ru="«{room_id}» — не идентификатор комнаты Matrix.",
    en="«{room_id}» is not a Matrix room ID.",
)
NOT_A_MEMBER: Final = Message(
    ru="Вы не участник этой комнаты, поэтому не можете войти в её урок.",
    en="You are not a member of this room, so you cannot join its lesson.",
)
OTHER_SERVER: Final = Message(
    ru="Этот сервер выдаёт доступ к урокам только своим пользователям ({server}).",
    en="This server gives access to lessons only to its own users ({server}).",
)
OPENID_INVALID: Final = Message(
    ru="Токен OpenID недействителен или истёк; откройте урок заново.",
    en="The OpenID token is invalid or has expired; open the lesson again.",
)
OPENID_UNCHECKED: Final = Message(
    ru="Не удалось проверить токен OpenID: {detail}",
    en="Could not check the OpenID token: {detail}",
)

LIVEKIT_OFF: Final = Message(
    ru="На этом сервере нет LiveKit для Element Call.",
    en="This server has no LiveKit for Element Call.",
)
WRONG_CLAIM: Final = Message(
    ru="Токен OpenID принадлежит другому пользователю, чем указано в запросе.",
    en="The OpenID token belongs to another user than the request claims.",
)
# How long a LiveKit token lives (lk-jwt-service: one hour).
