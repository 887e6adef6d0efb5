"""Roles a person can hold in a school, and the power levels derived from them."""

import enum
from typing import Final


class Role(enum.StrEnum):
    COORDINATOR = "coordinator"
    ADMINISTRATOR = "administrator"
    TEACHER = "teacher"
    STUDENT = "student"
    PARENT = "parent"


ALL_ROLES: Final = tuple(Role)

# Matrix power levels per role, the default for school rooms.
POWER_LEVEL: Final[dict[Role, int]] = {
    Role.COORDINATOR: 100,
    Role.ADMINISTRATOR: 100,
    Role.TEACHER: 50,
    Role.STUDENT: 0,
    Role.PARENT: 0,
}


def parse_role(value: str) -> Role:
    """The role named by ``value``; ``ValueError`` naming the allowed ones otherwise."""
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {value!r}; expected one of: {allowed}") from None
