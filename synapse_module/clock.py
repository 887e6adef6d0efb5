"""The time the module's school rules read (quiet hours, reminders, retention), and the
one hook tests use.

Everything that decides by the school's wall clock asks :class:`Clock` rather than
``time.time()``, so a test can say "it is 22:00 now" and then "it is 08:00" without
sleeping. The hook is an environment variable read once at start-up:
``PARTA_TEST_CLOCK_FILE`` names a file holding Unix seconds (a number); while it is set,
the module's rules read the time from that file (a file the test rewrites). It is meant
for tests only, and the module logs a warning when it is in use. Timestamps the module
records for people (the audit log, row times) stay the real time: retention measures
them against the clock's "now", so a test puts now a rule's days after a real moment.
"""

import logging
import os
import time
from pathlib import Path
from typing import Final, Protocol

logger = logging.getLogger(__name__)

CLOCK_FILE_VARIABLE: Final = "PARTA_TEST_CLOCK_FILE"


class Clock(Protocol):
    def now_ms(self) -> int:
        """Unix time in milliseconds."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)


class FileClock:
    """Unix seconds read from a file on each call (tests only)."""

    def __init__(self, path: Path):
        self.path = path

    def now_ms(self) -> int:
        try:
            return int(float(self.path.read_text(encoding="utf-8").strip()) * 1000)
        except (OSError, ValueError):
            logger.warning("Parta's test clock %s is unreadable; using the real time", self.path)
            return int(time.time() * 1000)


def clock_from_environment() -> Clock:
    """The file clock when ``PARTA_TEST_CLOCK_FILE`` is set, else the system's."""
    path = os.environ.get(CLOCK_FILE_VARIABLE, "").strip()
    if not path:
        return SystemClock()
    logger.warning("Parta reads the time from %s (%s): for tests only", path, CLOCK_FILE_VARIABLE)
    return FileClock(Path(path))
