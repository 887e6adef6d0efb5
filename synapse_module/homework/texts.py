"""What a person reads about homework (from the catalogue, ``rules.homework_*``)."""

from typing import Final

from parta_common.messages import Message

BODY: Final = Message("rules.homework_body")
FILES: Final = Message("rules.homework_files")
MALFORMED: Final = Message("rules.homework_malformed")
BAD_DUE: Final = Message("rules.homework_bad_due")
ONLY_TEACHERS: Final = Message("rules.homework_only_teachers")
ONLY_CLASS_CHAT: Final = Message("rules.homework_only_class_chat")
WRONG_CLASS: Final = Message("rules.homework_wrong_class")
NOT_YOURS: Final = Message("rules.homework_not_yours")
HANDINS_STAFF: Final = Message("rules.homework_handins_staff")
NOT_FOUND: Final = Message("rules.homework_not_found")
