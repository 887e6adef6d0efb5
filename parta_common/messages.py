"""Texts people read, by message id from the one catalogue (:mod:`parta_common.catalogue`).

A Matrix error has a single ``error`` field that clients show as it is, so a refusal
carries both languages there ("русский / English") and, for clients that pick one, the
message id and parameters (:meth:`Message.fields`).
"""

from typing import Final

import attrs

from parta_common import catalogue


@attrs.frozen
class Message:
    id: str

    def __attrs_post_init__(self) -> None:
        if not catalogue.has(self.id):
            raise ValueError(f"message {self.id!r} is not in the catalogue (parta_common/locale)")

    @property
    def ru(self) -> str:
        """The Russian template (``{name}`` parameters unfilled)."""
        return catalogue.texts()["ru"][self.id]

    @property
    def en(self) -> str:
        return catalogue.texts()["en"][self.id]

    def text(self, language: str, **params: object) -> str:
        return (self.en if language == "en" else self.ru).format(**params)

    def format(self, **params: object) -> str:
        """ "русский / English", filled in: the ``error`` text of a refusal."""
        return f"{self.text('ru', **params)} / {self.text('en', **params)}"

    def reference(self, **params: object) -> dict[str, object]:
        return catalogue.reference(self.id, **params)

    def fields(self, **params: object) -> dict[str, object]:
        """The extra fields of a Matrix error body (``additional_fields``): id and params."""
        return {catalogue.FIELD: self.reference(**params)}


STRUCTURE_STATE_FORBIDDEN: Final = Message("roster.structure_state_forbidden")

# -- roster API ----------------------------------------------------------------

NOT_OPERATOR = Message("roster.not_operator")
NOT_SCHOOL_ADMIN = Message("roster.not_school_admin")
NOT_SCHOOL_STAFF = Message("roster.not_school_staff")
NOT_IN_SCHOOL = Message("roster.not_in_school")
TEACHER_OWN_CLASSES = Message("roster.teacher_own_classes")
SCHOOL_NOT_FOUND = Message("roster.school_not_found")
CLASS_NOT_FOUND = Message("roster.class_not_found")
UNIT_NOT_FOUND = Message("roster.unit_not_found")
NOT_COORDINATOR = Message("roster.not_coordinator")
USER_NOT_FOUND = Message("roster.user_not_found")
CLASS_EXISTS = Message("roster.class_exists")
EXTERNAL_ID_TAKEN = Message("roster.external_id_taken")
CLASS_ARCHIVED = Message("roster.class_archived")
ROLE_NEEDS_CLASS = Message("roster.role_needs_class")
PARENT_NEEDS_CHILD = Message("roster.parent_needs_child")
CHILD_NOT_STUDENT = Message("roster.child_not_student")
CLASSES_NEED_ROLE = Message("roster.classes_need_role")
INVITE_UNKNOWN = Message("roster.invite_unknown")
INVITE_EXPIRED = Message("roster.invite_expired")
INVITE_REVOKED = Message("roster.invite_revoked")
INVITE_USED_UP = Message("roster.invite_used_up")
INVITE_OWN_CHILD = Message("roster.invite_own_child")
REGISTRATION_CLOSED = Message("roster.registration_closed")
PASSWORD_WEAK = Message("roster.password_weak")
POLICY_REFUSED = Message("roster.policy_refused")
BAD_TIMEZONE = Message("roster.bad_timezone")
NOT_A_STUDENT = Message("roster.not_a_student")
NOT_A_MEMBER = Message("roster.not_a_member")
CODE_NOT_IMPORTED = Message("roster.code_not_imported")
CODE_HAS_PASSWORD = Message("roster.code_has_password")
USERNAME_TAKEN = Message("roster.username_taken")
BATCH_DUPLICATE = Message("roster.batch_duplicate")
SEND_NEEDS_STAFF = Message("roster.send_needs_staff")
SEND_ARCHIVED = Message("roster.send_archived")
UNKNOWN_ROLE = Message("roster.unknown_role")
