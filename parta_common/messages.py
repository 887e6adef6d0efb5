"""Messages people read, in Russian first and English second.

Every refusal a person may see carries both languages in one string, because a Matrix
error has a single ``error`` field and clients show it as it is.
"""

from typing import Final

import attrs


@attrs.frozen
class Message:
    ru: str
    en: str

    def format(self, **kwargs: object) -> str:
        return f"{self.ru.format(**kwargs)} / {self.en.format(**kwargs)}"


STRUCTURE_STATE_FORBIDDEN: Final = Message(
    ru="Состояние «{event_type}» задаёт структуру школы; его меняет только сервис Parta.",
    en="State «{event_type}» defines the school structure; only the Parta service may change it.",
)
