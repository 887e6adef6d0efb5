"""The broadcast's own clock: every timestamp in the HLS output is relay time at 90 kHz."""

import time
from typing import Final

RATE: Final = 90_000


class RelayClock:
    def __init__(self) -> None:
        self._start = time.monotonic()
        self.wall_start = time.time()

    def now(self) -> int:
        """90 kHz ticks since the broadcast started."""
        return int((time.monotonic() - self._start) * RATE)

    def wall(self, ticks: int) -> float:
        """The wall-clock time (epoch seconds) of a relay timestamp."""
        return self.wall_start + ticks / RATE
