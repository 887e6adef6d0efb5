"""What a person reads about privacy (ids in the catalogue, parta_common/locale)."""

from typing import Final

from parta_common.messages import Message

VERIFY_OPERATOR_ONLY: Final = Message("privacy.verify_operator_only")
