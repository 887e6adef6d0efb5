"""What a person reads about statistics (Russian and English)."""

from typing import Final

from parta_common.messages import Message

NOT_ALLOWED: Final = Message("statistics.not_allowed")
