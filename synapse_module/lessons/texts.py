"""What a person reads about lessons (Russian and English)."""

from typing import TYPE_CHECKING, Final

from parta_common.messages import Message

if TYPE_CHECKING:
    pass


ONLY_TEACHERS: Final = Message("lessons.only_teachers")
NOT_A_MEMBER: Final = Message("lessons.not_a_member")
NO_SUCH_LESSON: Final = Message("lessons.no_such_lesson")
LESSON_ALREADY_LIVE: Final = Message("lessons.lesson_already_live")
LESSON_NOT_SCHEDULED: Final = Message("lessons.lesson_not_scheduled")
LESSON_ALREADY_ENDED: Final = Message("lessons.lesson_already_ended")
BAD_START: Final = Message("lessons.bad_start")
BAD_SERVICE_TOKEN: Final = Message("lessons.bad_service_token")
LESSON_STARTED_NOTICE: Final = Message("lessons.lesson_started_notice")
WIDGET_NAME: Final = Message("lessons.widget_name")
CSV_HEADER: Final = Message("lessons.csv_header")  # columns, separated by ";"
CSV_PRESENT: Final = Message("lessons.csv_present")
CSV_ABSENT: Final = Message("lessons.csv_absent")
