"""What a person reads about reports (from the catalogue, ``rules.*``)."""

from typing import Final

from parta_common.messages import Message

COMPLAINTS_ROOM: Final = Message("rules.complaints_room_name")
COMPLAINTS_ROOM_OF_CLASS: Final = Message("rules.complaints_room_name_class")
COMPLAINTS_TOPIC: Final = Message("rules.complaints_room_topic")
HEADING: Final = Message("rules.report_heading")
WHERE: Final = Message("rules.report_where")
SENDER: Final = Message("rules.report_sender")
TEXT: Final = Message("rules.report_text")
REASON: Final = Message("rules.report_reason")
LINK: Final = Message("rules.report_link")
NO_TEXT: Final = Message("rules.report_no_text")
DIRECT_CHAT: Final = Message("rules.report_direct")
RECEIVED: Final = Message("rules.report_received")
NOTICES_ROOM: Final = Message("rules.notices_room_name")
