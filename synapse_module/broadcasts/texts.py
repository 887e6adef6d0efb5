"""What a person reads about broadcasts (Russian and English)."""

from typing import Final

from parta_common.messages import Message

NOT_A_MANAGER: Final = Message(
    ru="Трансляции в этой комнате создают и ведут только учителя и администраторы.",
    en="Only teachers and administrators run broadcasts in this room.",
)
NOT_A_MEMBER: Final = Message(
    ru="Вы не участник этой комнаты.", en="You are not a member of this room."
)
NOT_A_SPEAKER: Final = Message(
    ru="Вы не докладчик этой трансляции.", en="You are not a speaker of this broadcast."
)
NO_BROADCAST: Final = Message(
    ru="В этой комнате нет такой трансляции.", en="There is no such broadcast in this room."
)
NO_LINK: Final = Message(ru="Нет такой ссылки.", en="There is no such link.")
ENDED: Final = Message(ru="Трансляция уже завершена.", en="The broadcast has already ended.")
BAD_SERVICE_TOKEN: Final = Message(
    ru="Нужен служебный токен сервера трансляций.",
    en="A service token of the broadcast relay is required.",
)
NOT_RECORDED: Final = Message(
    ru="Эта трансляция не записывается или ещё не завершена.",
    en="This broadcast is not recorded or has not ended yet.",
)
BAD_SCHEDULE: Final = Message(
    ru="Окончание трансляции должно быть позже начала.",
    en="The broadcast must end after it starts.",
)

RECORDER_ONLY_UPLOADS: Final = Message(
    ru="Служебная учётная запись записи трансляций только загружает файлы.",
    en="The broadcast recorder account only uploads files.",
)
FOREIGN_MEDIA: Final = Message(
    ru="Запись должна быть загружена на этот сервер.",
    en="The recording must be uploaded to this server.",
)
