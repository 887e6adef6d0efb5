"""What the content rules say to people, in Russian and English."""

from typing import Final

from parta_common.messages import Message

MALFORMED: Final = Message(
    ru="Неверное событие «{event_type}»: поле {detail}",
    en="Malformed «{event_type}» event: field {detail}",
)
DUPLICATE_ANSWER_IDS: Final = Message(
    ru="В опросе повторяются идентификаторы ответов",
    en="The poll has duplicate answer IDs",
)
DOCUMENT_NOT_ALLOWED: Final = Message(
    ru="Публиковать документы здесь могут учителя и администраторы; ученики — только когда "
    "учитель открыл сдачу работ в этой комнате",
    en="Teachers and administrators post documents here; students only while a teacher has "
    "opened homework hand-in in this room",
)
ARTICLE_NOT_ALLOWED: Final = Message(
    ru="Публиковать статьи здесь могут только учителя и администраторы",
    en="Only teachers and administrators may publish articles here",
)
POLL_START_NOT_ALLOWED: Final = Message(
    ru="Создавать опросы здесь могут только учителя и администраторы",
    en="Only teachers and administrators may start polls here",
)
POLL_END_NOT_ALLOWED: Final = Message(
    ru="Завершить опрос может его автор, учитель или администратор",
    en="Only the poll's author, a teacher or an administrator may end the poll",
)
PARTA_POLL_VIA_API: Final = Message(
    ru="Анонимные опросы и викторины создаются через API Parta (POST /rooms/{{room_id}}/polls)",
    en="Anonymous polls and quizzes are created through the Parta API "
    "(POST /rooms/{{room_id}}/polls)",
)
TOO_LARGE_FOR_KIND: Final = Message(
    ru="Файл слишком большой: {kind_ru} не больше {limit_mib} МиБ для вашей роли",
    en="File too large: a {kind} may be at most {limit_mib} MiB for your role",
)
TOO_LARGE_AT_ALL: Final = Message(
    ru="Файл слишком большой: {kind_ru} не больше {limit_mib} МиБ",
    en="File too large: a {kind} may be at most {limit_mib} MiB",
)
FORBIDDEN_FILE: Final = Message(
    ru="Такие файлы загружать нельзя: {what}",
    en="Files of this type may not be uploaded: {what}",
)
MISMATCHED_FILE: Final = Message(
    ru="Тип файла не совпадает с заявленным: по содержимому это {sniffed}, а заявлено {declared}",
    en="The file is not what the message says: its bytes are {sniffed}, declared {declared}",
)
KIND_RU: Final = {"document": "документ", "video": "видео", "image": "изображение"}
NOT_A_MEMBER: Final = Message(
    ru="Вы не участник этой комнаты",
    en="You are not a member of this room",
)
STAFF_ONLY: Final = Message(
    ru="Это могут только учителя и администраторы этой комнаты",
    en="Only teachers and administrators of this room may do this",
)
NO_SUCH_ARTICLE: Final = Message(ru="Нет такой статьи: {id}", en="No such article: {id}")
NOT_THE_AUTHOR: Final = Message(
    ru="Изменять статью может только её автор",
    en="Only the article's author may change it",
)
ALREADY_PUBLISHED: Final = Message(
    ru="Статья уже опубликована", en="The article is already published"
)
NO_SUCH_POLL: Final = Message(ru="Нет такого опроса: {id}", en="No such poll: {id}")
POLL_ENDED: Final = Message(ru="Опрос уже завершён", en="The poll has already ended")
POLL_NOT_ENDED: Final = Message(
    ru="Результаты викторины доступны после её завершения",
    en="Quiz scores are available once the quiz has ended",
)
OWNER_ONLY: Final = Message(
    ru="Ответы по участникам видят только автор опроса и администраторы",
    en="Only the poll's author and administrators see who answered what",
)
ANONYMOUS_NO_NAMES: Final = Message(
    ru="Опрос анонимный: ответы по участникам не выдаются никому",
    en="The poll is anonymous: nobody gets answers by person",
)
BAD_ANSWER: Final = Message(
    ru="Нет такого варианта ответа: {answer}", en="No such answer option: {answer}"
)
QUIZ_NEEDS_CORRECT: Final = Message(
    ru="В викторине отметьте хотя бы один правильный ответ (correct: true)",
    en="A quiz needs at least one answer marked correct: true",
)
CORRECT_ONLY_IN_QUIZ: Final = Message(
    ru="Правильные ответы задаются только для викторины (quiz: true)",
    en="Correct answers are only for quizzes (quiz: true)",
)
POLL_ENDED_TEXT: Final = Message(ru="Опрос завершён", en="The poll has ended")
POLL_NOTICE_TITLE: Final = Message(ru="Опрос", en="Poll")
POLL_NOTICE_HINT: Final = Message(
    ru="Чтобы проголосовать, ответьте на это сообщение номером ответа (например: 2).",
    en="To vote, reply to this message with the number of your answer (e.g. 2).",
)
POLL_NOTICE_HINT_MANY: Final = Message(
    ru="Чтобы проголосовать, ответьте на это сообщение номерами ответов через запятую "
    "(например: 1, 3), не больше {max}.",
    en="To vote, reply to this message with the numbers of your answers separated by "
    "commas (e.g. 1, 3), at most {max}.",
)
POLL_NOTICE_ANONYMOUS: Final = Message(
    ru="Опрос анонимный: номер в вашем ответе никто не увидит, в чате останется только "
    "«голос принят».",
    en="The poll is anonymous: nobody sees the number in your reply; the chat shows only "
    "«vote recorded».",
)
REPLY_VOTE_RECORDED: Final = Message(ru="Голос принят", en="Vote recorded")
CORRECT_TEXT: Final = Message(ru="Правильный ответ: {answers}", en="Correct answer: {answers}")
