"""What a person reads about lessons (Russian and English)."""

from typing import TYPE_CHECKING, Final

from parta_common.messages import Message

if TYPE_CHECKING:
    pass


ONLY_TEACHERS: Final = Message(
    ru="Уроки в этой комнате ведут только учителя и администраторы.",
    en="Only teachers and administrators run lessons in this room.",
)
NOT_A_MEMBER: Final = Message(
    ru="Вы не участник этой комнаты.",
    en="You are not a member of this room.",
)
NO_SUCH_LESSON: Final = Message(
    ru="В этой комнате нет урока «{lesson_id}».",
    en="There is no lesson «{lesson_id}» in this room.",
)
LESSON_ALREADY_LIVE: Final = Message(
    ru="В этой комнате уже идёт урок «{title}»; сначала завершите его.",
    en="Lesson «{title}» is already live in this room; end it first.",
)
LESSON_NOT_SCHEDULED: Final = Message(
    ru="Урок «{title}» уже {status_ru}.",
    en="Lesson «{title}» is already {status_en}.",
)
LESSON_ALREADY_ENDED: Final = Message(
    ru="Урок «{title}» уже завершён.",
    en="Lesson «{title}» has already ended.",
)
BAD_START: Final = Message(
    ru="Время начала должно быть не позже чем через год.",
    en="The start time must be within a year from now.",
)
BAD_SERVICE_TOKEN: Final = Message(
    ru="Служебный токен недействителен.",
    en="The service token is not valid.",
)
LESSON_STARTED_NOTICE: Final = Message(
    ru="Урок «{title}» начался: {url}",
    en="Lesson «{title}» has started: {url}",
)
