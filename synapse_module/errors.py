"""Matrix errors the module answers with: Russian / English text, and the catalogue id."""

from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message


def matrix_error(status: int, errcode: str, message: Message, /, **params: object) -> SynapseError:
    """The text for plain clients ("русский / English") and its catalogue id for the rest."""
    return SynapseError(
        status, message.format(**params), errcode, additional_fields=message.fields(**params)
    )


def forbidden(message: Message, /, **kwargs: object) -> SynapseError:
    return matrix_error(403, Codes.FORBIDDEN, message, **kwargs)


def bad_json(message: Message, /, **kwargs: object) -> SynapseError:
    return matrix_error(400, Codes.BAD_JSON, message, **kwargs)


def not_found(message: Message, /, **kwargs: object) -> SynapseError:
    return matrix_error(404, Codes.NOT_FOUND, message, **kwargs)


def conflict(message: Message, /, **kwargs: object) -> SynapseError:
    """409 ``M_BAD_STATE``: the thing's state forbids this (ended, published, taken).

    The one other 409 is ``M_USER_IN_USE``, an account name someone else holds."""
    return matrix_error(409, Codes.BAD_STATE, message, **kwargs)
