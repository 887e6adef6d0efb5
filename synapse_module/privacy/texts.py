"""What a person reads about privacy (ids in the catalogue, parta_common/locale)."""

from typing import Final

from parta_common.messages import Message

VERIFY_OPERATOR_ONLY: Final = Message("privacy.verify_operator_only")
CONSENT_NOT_ALLOWED: Final = Message("privacy.consent_not_allowed")
CONSENT_READ_NOT_ALLOWED: Final = Message("privacy.consent_read_not_allowed")
DOCUMENT_NUMBER_REQUIRED: Final = Message("privacy.document_number_required")
NOT_IN_SCHOOL: Final = Message("privacy.not_in_school")
NO_BROADCAST_CONSENT: Final = Message("privacy.no_broadcast_consent")
NO_COMMUNICATION_CONSENT: Final = Message("privacy.no_communication_consent")
NO_PHOTOS_CONSENT: Final = Message("privacy.no_photos_consent")
EXPORT_NOT_ALLOWED: Final = Message("privacy.export_not_allowed")
ERASE_ACCOUNT_OPERATOR_ONLY: Final = Message("privacy.erase_account_operator_only")
ERASE_NO_SCHOOL: Final = Message("privacy.erase_no_school")
ERASURE_NOT_FOUND: Final = Message("privacy.erasure_not_found")
RETENTION_OUT_OF_RANGE: Final = Message("privacy.retention_out_of_range")
ERASURE_REQUEST_NOT_ALLOWED: Final = Message("privacy.erasure_request_not_allowed")
ERASURE_REQUEST_NOT_FOUND: Final = Message("privacy.erasure_request_not_found")
ERASURE_REQUEST_ANSWERED: Final = Message("privacy.erasure_request_answered")
ONLY_THE_BOT: Final = Message("privacy.only_the_bot")
