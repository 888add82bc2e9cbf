"""Counting failed code attempts per shopper and per source address.

Only failures count, so a shopper who types the right code is never slowed
down.  Windows are fixed per key (first failure opens the window), kept in
memory: the per-machine budget, which must survive restarts, is in the
database (``machines.code_failures``). Used for admin logins; code guesses
have their own budgets (``api.services.guesses``).
"""

from dataclasses import dataclass, field

from api.errors import RateLimited


@dataclass
class _Window:
    started: int
    failures: int = 0


@dataclass
class FailureLimiter:
    window_s: int
    limits: dict[str, int]
    what: str = "wrong codes"  # what was spent, for the refusal's message
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)

    def check(self, keys: dict[str, str], now: int) -> None:
        """Raise RateLimited when any key has spent its failures in this window."""
        for scope, key in keys.items():
            window = self._live(scope, key, now)
            if window is not None and window.failures >= self.limits[scope]:
                retry = max(1, window.started + self.window_s - now)
                raise RateLimited(
                    f"too many {self.what}; try again in {retry} s", retry_after=retry
                )

    def fail(self, keys: dict[str, str], now: int) -> None:
        for scope, key in keys.items():
            window = self._live(scope, key, now)
            if window is None:
                window = self._windows[(scope, key)] = _Window(started=now)
            window.failures += 1
        if len(self._windows) > 100_000:
            self._prune(now)

    def _live(self, scope: str, key: str, now: int) -> _Window | None:
        window = self._windows.get((scope, key))
        if window is not None and now >= window.started + self.window_s:
            del self._windows[(scope, key)]
            return None
        return window

    def _prune(self, now: int) -> None:
        for k in [k for k, w in self._windows.items() if now >= w.started + self.window_s]:
            del self._windows[k]
