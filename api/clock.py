"""The clock port: services take ``now`` from it, tests move it by hand."""

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Unix seconds."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: int = 1_800_000_000) -> None:
        self.value = start

    def now(self) -> int:
        return self.value

    def advance(self, seconds: int) -> int:
        self.value += seconds
        return self.value
