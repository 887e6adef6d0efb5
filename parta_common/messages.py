"""Messages people read, in Russian first and English second.

Every refusal a person may see carries both languages in one string, because a Matrix
error has a single ``error`` field and clients show it as it is.
"""

from typing import Final

import attrs


@attrs.frozen
class Message:
    ru: str
    en: str

    def format(self, **kwargs: object) -> str:
        return f"{self.ru.format(**kwargs)} / {self.en.format(**kwargs)}"


STRUCTURE_STATE_FORBIDDEN: Final = Message(
    ru="Состояние «{event_type}» задаёт структуру школы; его меняет только сервис Parta.",
    en="State «{event_type}» defines the school structure; only the Parta service may change it.",
)

# -- roster API ----------------------------------------------------------------

NOT_OPERATOR = Message(
    ru="Это может только оператор сервера или координатор.",
    en="Only the server operator or a coordinator may do this.",
)
NOT_SCHOOL_ADMIN = Message(
    ru="Это может только администратор школы.",
    en="Only the school's administrator may do this.",
)
NOT_SCHOOL_STAFF = Message(
    ru="Это могут только администраторы и учителя школы.",
    en="Only the school's administrators and teachers may do this.",
)
NOT_IN_SCHOOL = Message(
    ru="Вы не состоите в этой школе.",
    en="You are not in this school.",
)
TEACHER_OWN_CLASSES = Message(
    ru="Учитель может приглашать и записывать только учеников своих классов.",
    en="A teacher may invite and enrol only students of their own classes.",
)
SCHOOL_NOT_FOUND = Message(ru="Школа не найдена: {school_id}", en="School not found: {school_id}")
CLASS_NOT_FOUND = Message(ru="Класс не найден: {class_id}", en="Class not found: {class_id}")
UNIT_NOT_FOUND = Message(
    ru="Регион или муниципалитет не найден: {unit_id}", en="Unit not found: {unit_id}"
)
USER_NOT_FOUND = Message(ru="Пользователь не найден: {user_id}", en="User not found: {user_id}")
CLASS_EXISTS = Message(
    ru="Класс {title} за {year} уже есть в этой школе.",
    en="Class {title} of {year} exists in this school already.",
)
EXTERNAL_ID_TAKEN = Message(
    ru="Внешний идентификатор {external_id} уже занят.",
    en="External ID {external_id} is taken already.",
)
CLASS_ARCHIVED = Message(
    ru="Класс {class_id} в архиве; выберите класс текущего года.",
    en="Class {class_id} is archived; choose a class of the current year.",
)
ROLE_NEEDS_CLASS = Message(
    ru="Ученика нужно записать ровно в один класс этой школы.",
    en="A student must be put into exactly one class of this school.",
)
PARENT_NEEDS_CHILD = Message(
    ru="Родителя нужно связать хотя бы с одним ребёнком — учеником этой школы.",
    en="A parent must be linked to at least one child who is a student of this school.",
)
CHILD_NOT_STUDENT = Message(
    ru="{user_id} не ученик этой школы.",
    en="{user_id} is not a student of this school.",
)
CLASSES_NEED_ROLE = Message(
    ru="Классы указываются только для ролей «учитель» и «ученик».",
    en="Classes apply only to the roles teacher and student.",
)
INVITE_UNKNOWN = Message(
    ru="Код приглашения не найден. Проверьте, что он введён без ошибок.",
    en="Invitation code not found. Check that it was typed correctly.",
)
INVITE_EXPIRED = Message(
    ru="Срок действия кода приглашения истёк; попросите новый.",
    en="The invitation code has expired; ask for a new one.",
)
INVITE_REVOKED = Message(
    ru="Код приглашения отозван; попросите новый.",
    en="The invitation code was revoked; ask for a new one.",
)
INVITE_USED_UP = Message(
    ru="Код приглашения уже использован максимальное число раз; попросите новый.",
    en="The invitation code has been used as many times as allowed; ask for a new one.",
)
INVITE_OWN_CHILD = Message(
    ru="Нельзя стать родителем самому себе.",
    en="You cannot become your own parent.",
)
REGISTRATION_CLOSED = Message(
    ru="Регистрация по коду на этом сервере выключена; обратитесь к администратору.",
    en="Registration with a code is switched off on this server; ask the administrator.",
)
PASSWORD_WEAK = Message(
    ru="Пароль должен быть не короче 8 символов.",
    en="The password must be at least 8 characters long.",
)
POLICY_REFUSED = Message(
    ru="Политика школы не принята: {reason}", en="School policy refused: {reason}"
)
BAD_TIMEZONE = Message(ru="Неизвестный часовой пояс: {tz}", en="Unknown time zone: {tz}")
NOT_A_STUDENT = Message(
    ru="Код для родителя может получить только ученик этой школы.",
    en="Only a student of this school can get a code for their parent.",
)
NOT_A_MEMBER = Message(
    ru="{user_id} не состоит в этой школе.", en="{user_id} is not a member of this school."
)
CODE_NOT_IMPORTED = Message(
    ru="Эта учётная запись создана не импортом списков: у неё нет кода для входа. "
    "Если пароль забыт, его сбрасывает администратор сервера.",
    en="This account was not made by a roster import, so it has no sign-in code. "
    "A forgotten password is reset by the server's administrator.",
)
CODE_HAS_PASSWORD = Message(
    ru="Человек уже задал свой пароль, код для входа ему не нужен. "
    "Если пароль забыт, его сбрасывает администратор сервера.",
    en="This person has already set a password of their own and needs no sign-in code. "
    "A forgotten password is reset by the server's administrator.",
)
USERNAME_TAKEN = Message(
    ru="Имя {user_id} уже занято другой учётной записью; выберите другое.",
    en="The name {user_id} already belongs to another account; choose another.",
)
BATCH_DUPLICATE = Message(
    ru="Один и тот же человек указан в списке дважды.",
    en="The same person is listed twice.",
)
SEND_NEEDS_STAFF = Message(
    ru="Писать сюда могут только учителя и администрация школы; здесь можно читать.",
    en="Only the school's teachers and administration may post here; you can read it.",
)
SEND_ARCHIVED = Message(
    ru="Это архив прошлого учебного года: его можно читать, но не писать в него.",
    en="This is an archive of a past school year: you can read it but not post in it.",
)
