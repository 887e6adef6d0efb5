"""The module's configuration: the ``config:`` block under ``modules:`` in homeserver.yaml."""

import re
from collections.abc import Mapping
from typing import Any

import attrs

from parta_common.config import ConfigProblem, build

from .policy import PolicyLimits

_LOCALPART = re.compile(r"^[a-z0-9._=\-/]+$")


def _localpart(_inst: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not _LOCALPART.match(value):
        raise ValueError(
            f"{attribute.name}: {value!r} is not a valid Matrix localpart "
            "(lower-case letters, digits and ._=-/ only)"
        )


@attrs.frozen
class PartaConfig:
    """Everything the server operator sets for Parta; every key has a default."""

    # Localpart of the service account that creates and owns school rooms.
    service_localpart: str = attrs.field(default="parta", validator=_localpart)
    # Display name of the service account, as people see it in their clients.
    service_displayname: str = "Parta"
    # IANA time zone used for dates shown to people, unless a school sets its own.
    default_timezone: str = "Europe/Moscow"
    # Limits within which each school's administrators set their school's policy.
    policy: PolicyLimits = attrs.Factory(PolicyLimits)
    # Invitation codes: how long they live unless the person making one says otherwise.
    invite_default_ttl_days: int = attrs.field(default=7, validator=attrs.validators.ge(1))
    # Where invitation links point (a page that explains how to join); empty: the
    # homeserver's public_baseurl.
    invite_link_base: str = ""
    # Whether a person with an invitation code may create their account with it
    # (POST /invites/{code}/register); otherwise accounts come from the operator.
    registration_with_invite: bool = True


def parse_config(raw: Mapping[str, Any] | None) -> PartaConfig:
    """Build a :class:`PartaConfig`; a :class:`ConfigProblem` names the wrong key."""
    return build(PartaConfig, raw if raw is not None else {})


def raise_as_synapse_config_error(problem: ConfigProblem) -> None:
    """Re-raise ``problem`` as Synapse's ``ConfigError`` with the full key path."""
    from synapse.module_api.errors import ConfigError

    raise ConfigError(problem.msg, ("modules", "<parta>", "config", *problem.path))
