"""Texts people read, by message id from the one catalogue (:mod:`parta_common.catalogue`).

A Matrix error has a single ``error`` field that clients show as it is, so a refusal
carries both languages there ("русский / English") and, for clients that pick one, the
message id and parameters (:meth:`Message.fields`).
"""

import attrs

from parta_common import catalogue


@attrs.frozen
class Message:
    id: str

    def __attrs_post_init__(self) -> None:
        if not catalogue.has(self.id):
            raise ValueError(f"message {self.id!r} is not in the catalogue (parta_common/locale)")

    @property
    def ru(self) -> str:
        """The Russian template (``{name}`` parameters unfilled)."""
        return catalogue.texts()["ru"][self.id]

    @property
    def en(self) -> str:
        return catalogue.texts()["en"][self.id]

    def text(self, language: str, **params: object) -> str:
        return (self.en if language == "en" else self.ru).format(**params)

    def format(self, **params: object) -> str:
        """ "русский / English", filled in: the ``error`` text of a refusal."""
        return f"{self.text('ru', **params)} / {self.text('en', **params)}"

    def reference(self, **params: object) -> dict[str, object]:
        return catalogue.reference(self.id, **params)

    def fields(self, **params: object) -> dict[str, object]:
        """The extra fields of a Matrix error body (``additional_fields``): id and params."""
        return {catalogue.FIELD: self.reference(**params)}
