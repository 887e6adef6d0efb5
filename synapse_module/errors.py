"""Matrix errors the module answers with; every message in Russian and English."""

from synapse.module_api.errors import Codes, SynapseError

from parta_common.messages import Message


def forbidden(message: Message, **kwargs: object) -> SynapseError:
    return SynapseError(403, message.format(**kwargs), Codes.FORBIDDEN)


def bad_json(message: Message, **kwargs: object) -> SynapseError:
    return SynapseError(400, message.format(**kwargs), Codes.BAD_JSON)


def not_found(message: Message, **kwargs: object) -> SynapseError:
    return SynapseError(404, message.format(**kwargs), Codes.NOT_FOUND)


def conflict(message: Message, **kwargs: object) -> SynapseError:
    """409 ``M_BAD_STATE``: the thing's state forbids this (ended, published, taken).

    The one other 409 is ``M_USER_IN_USE``, an account name someone else holds."""
    return SynapseError(409, message.format(**kwargs), Codes.BAD_STATE)
