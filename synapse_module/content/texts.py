"""What the content rules say to people, in Russian and English."""

from typing import Final

from parta_common.messages import Message

MALFORMED: Final = Message("content.malformed")
DUPLICATE_ANSWER_IDS: Final = Message("content.duplicate_answer_ids")
DOCUMENT_NOT_ALLOWED: Final = Message("content.document_not_allowed")
ARTICLE_NOT_ALLOWED: Final = Message("content.article_not_allowed")
POLL_START_NOT_ALLOWED: Final = Message("content.poll_start_not_allowed")
POLL_END_NOT_ALLOWED: Final = Message("content.poll_end_not_allowed")
PARTA_POLL_VIA_API: Final = Message("content.parta_poll_via_api")
TOO_LARGE_FOR_KIND: Final = Message("content.too_large_for_kind")
TOO_LARGE_AT_ALL: Final = Message("content.too_large_at_all")
FORBIDDEN_FILE: Final = Message("content.forbidden_file")
MISMATCHED_FILE: Final = Message("content.mismatched_file")
KIND_RU: Final = {k: Message(f"content.kind.{k}").ru for k in ("document", "video", "image")}
NOT_A_MEMBER: Final = Message("content.not_a_member")
STAFF_ONLY: Final = Message("content.staff_only")
NO_SUCH_ARTICLE: Final = Message("content.no_such_article")
NOT_THE_AUTHOR: Final = Message("content.not_the_author")
ALREADY_PUBLISHED: Final = Message("content.already_published")
NO_SUCH_POLL: Final = Message("content.no_such_poll")
POLL_ENDED: Final = Message("content.poll_ended")
POLL_NOT_ENDED: Final = Message("content.poll_not_ended")
OWNER_ONLY: Final = Message("content.owner_only")
ANONYMOUS_NO_NAMES: Final = Message("content.anonymous_no_names")
BAD_ANSWER: Final = Message("content.bad_answer")
QUIZ_NEEDS_CORRECT: Final = Message("content.quiz_needs_correct")
CORRECT_ONLY_IN_QUIZ: Final = Message("content.correct_only_in_quiz")
POLL_ENDED_TEXT: Final = Message("content.poll_ended_text")
POLL_NOTICE_TITLE: Final = Message("content.poll_notice_title")
POLL_NOTICE_HINT: Final = Message("content.poll_notice_hint")
POLL_NOTICE_HINT_MANY: Final = Message("content.poll_notice_hint_many")
POLL_NOTICE_ANONYMOUS: Final = Message("content.poll_notice_anonymous")
REPLY_VOTE_RECORDED: Final = Message("content.reply_vote_recorded")
CORRECT_TEXT: Final = Message("content.correct_text")
