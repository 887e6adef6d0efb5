"""What a person reads about broadcasts (Russian and English)."""

from typing import Final

from parta_common.messages import Message

NOT_A_MANAGER: Final = Message("broadcasts.not_a_manager")
NOT_A_MEMBER: Final = Message("broadcasts.not_a_member")
NOT_A_SPEAKER: Final = Message("broadcasts.not_a_speaker")
NO_BROADCAST: Final = Message("broadcasts.no_broadcast")
NO_LINK: Final = Message("broadcasts.no_link")
ENDED: Final = Message("broadcasts.ended")
BAD_SERVICE_TOKEN: Final = Message("broadcasts.bad_service_token")
NOT_RECORDED: Final = Message("broadcasts.not_recorded")
BAD_SCHEDULE: Final = Message("broadcasts.bad_schedule")

RECORDER_ONLY_UPLOADS: Final = Message("broadcasts.recorder_only_uploads")
FOREIGN_MEDIA: Final = Message("broadcasts.foreign_media")
RECORDER_NAME: Final = Message("broadcasts.recorder_name")
RECORDING_DESCRIPTION: Final = Message("broadcasts.recording_description")
RECORDING_TAG: Final = Message("broadcasts.recording_tag")
RECORDING_SECTION: Final = Message("broadcasts.recording_section")
