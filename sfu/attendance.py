"""Who joined and left a lesson, and when: the SFU reports, the module keeps.

The SFU calls an :class:`AttendanceSink` for every admission and departure. The lessons
feature implements it by posting to the module's attendance API; the default sink only
logs. A sink must not block the lesson: the SFU runs each report as its own task, and a
failure is logged, never raised into the lesson.
"""

import enum
import logging
from typing import Protocol

import attrs

logger = logging.getLogger(__name__)


class AttendanceKind(enum.StrEnum):
    JOINED = "joined"
    LEFT = "left"


class LeaveReason(enum.StrEnum):
    LEFT = "left"
    DISCONNECTED = "disconnected"
    REMOVED = "removed"
    SERVER_STOPPED = "server_stopped"


@attrs.frozen
class AttendanceEvent:
    """One join or leave of one participant (one connection) in one lesson."""

    kind: AttendanceKind
    room_id: str
    user_id: str
    display_name: str
    role: str
    participant_id: str
    # Unix time in seconds, the SFU's clock.
    at: float
    reason: LeaveReason | None = None

    def __attrs_post_init__(self) -> None:
        if (self.kind is AttendanceKind.LEFT) != (self.reason is not None):
            raise ValueError("a leave carries a reason, a join does not")


class AttendanceSink(Protocol):
    """Where the SFU reports attendance: first kept, then delivered.

    :meth:`keep` runs synchronously where the join or leave happens, before the person or
    anyone else is told of it, so an SFU killed right after cannot lose it (the fault
    runner, ``devtools/faults.py``, found joins lost that way when keeping was itself
    a background task)."""

    def keep(self, event: AttendanceEvent) -> int:
        """Keep ``event`` durably; the handle :meth:`deliver` takes."""

    async def deliver(self, kept: int) -> None:
        """Deliver what :meth:`keep` kept; may raise, the SFU logs the failure."""


class LoggingAttendance:
    """The default sink: attendance goes to the log only."""

    def keep(self, event: AttendanceEvent) -> int:
        logger.info(
            "attendance: %s %s (%s) in %s as %s at %.3f%s",
            event.user_id,
            event.kind,
            event.participant_id,
            event.room_id,
            event.role,
            event.at,
            f" ({event.reason})" if event.reason else "",
        )
        return 0

    async def deliver(self, kept: int) -> None:
        pass
