"""A request whose transaction lost a race inside the database is run again.

On PostgreSQL two transactions that lock the same rows in different orders can
deadlock (one of them is cancelled, SQLSTATE 40P01), and a serialization failure
(40001) asks the client to retry. Both leave nothing behind: the transaction was
rolled back whole. The shopper's writes are run again a few times, a little
apart; if the race goes on, the answer is the contract's 409 ``machine_busy``
(someone else is using the machine right now), never a 500.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from api.errors import MachineBusy

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
ATTEMPTS = 4
BACKOFF_S = 0.02


def lost_race(exc: BaseException) -> bool:
    """True for a database error that a plain retry resolves."""
    if not isinstance(exc, DBAPIError):
        return False
    for found in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(found, "pgcode", None) or getattr(found, "sqlstate", None)
        if code in RETRYABLE:
            return True
    return False


async def retried(what: str, run: Callable[[], Awaitable[T]]) -> T:
    """``run()`` again after a lost race (at most ``ATTEMPTS`` times in all)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await run()
        except DBAPIError as exc:
            if not lost_race(exc):
                raise
            log.info("%s lost a database race (attempt %d): %s", what, attempt, exc.orig)
            if attempt == ATTEMPTS:
                raise MachineBusy("the machine is busy right now; try again") from exc
            await asyncio.sleep(random.uniform(0, BACKOFF_S * 2**attempt))
    raise AssertionError("unreachable")
