"""What a person reads about read confirmations (catalogue ``rules.confirm_*``)."""

from typing import Final

from parta_common.messages import Message

PROMPT: Final = Message("rules.confirm_prompt")
ONLY_STAFF: Final = Message("rules.confirm_only_staff")
ONLY_SCHOOL_ROOMS: Final = Message("rules.confirm_only_school_rooms")
NOT_FOUND: Final = Message("rules.confirm_not_found")
WHO_SEES: Final = Message("rules.confirm_who_sees")
CSV_HEADER: Final = Message("rules.confirm_csv_header")
YES: Final = Message("rules.confirm_yes")
NO: Final = Message("rules.confirm_no")
PROMPT_REACTION: Final = Message("rules.confirm_prompt_reaction")
ONLY_CONFIRMING_REACTIONS: Final = Message("rules.confirm_only_confirming_reactions")
NOT_A_MEMBER: Final = Message("rules.confirm_not_a_member")
NOT_YOUR_CHILD: Final = Message("rules.confirm_not_your_child")
OWN_REQUEST: Final = Message("rules.confirm_own_request")
ONLY_THE_BOT: Final = Message("rules.confirm_only_the_bot")
NOT_IN_SCHOOL: Final = Message("rules.confirm_not_in_school")
