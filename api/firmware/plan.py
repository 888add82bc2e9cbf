"""The rules of a rollout, pure: wave sizes, what a machine's report moves, when a wave ends.

Waves are cumulative percentages of the target (``[1, 10, 50, 100]``: the first
1 %, at least one machine, then up to 10 %, ...). A wave has finished when every
machine in it (and in the waves before) has a final status; the next one opens
when at most ``max_failure_pct`` of those machines failed, else the rollout
pauses for the operator. ``failed``, ``rejected`` and ``timed_out`` count as
failures; ``canceled`` counts as neither.
"""

import itertools
import math
from dataclasses import dataclass

from schema import statuses

ACTIVE = ("sent", "downloading", "installing")
FINAL = ("succeeded", "failed", "rejected", "timed_out", "canceled")
FAILURES = ("failed", "rejected", "timed_out")
STAGES = ("download", "verify", "install")
RESULT_STATUSES = statuses.RESULT  # what a machine may say about a command
_RANK = {"queued": 0, "sent": 1, "downloading": 2, "installing": 3}


def wave_sizes(count: int, waves: list[int]) -> list[int]:
    """How many machines (cumulative) each wave covers."""
    sizes: list[int] = []
    for pct in waves:
        size = min(count, max(1, math.ceil(count * pct / 100)))
        sizes.append(max(size, sizes[-1] if sizes else 0))
    return sizes


def wave_of(position: int, sizes: list[int]) -> int:
    """The first wave (1-based) that includes the machine at ``position`` (0-based)."""
    for index, size in enumerate(sizes, start=1):
        if position < size:
            return index
    return len(sizes)


def check_waves(waves: object) -> str | None:
    """Why ``waves`` is not a valid list of cumulative percentages (None when it is)."""
    if not isinstance(waves, list) or not 1 <= len(waves) <= 20:
        return "waves must be a list of 1 to 20 percentages"
    if not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 100 for w in waves):
        return "each wave is a whole percentage from 1 to 100"
    if any(b <= a for a, b in itertools.pairwise(waves)):
        return "waves must increase"
    if waves[-1] != 100:
        return "the last wave must be 100 (the whole target)"
    return None


@dataclass(frozen=True)
class Move:
    """What a machine's report does to its row."""

    status: str
    error: str | None = None
    clear: bool = False  # the command is over: clear its retained topic
    requeue: bool = False  # busy: forget the command, send a new one after the session


def on_result(current: str, status: str, error: str | None, stage: str | None) -> Move | None:
    """The move a machine's result causes, or None when it changes nothing."""
    if current in FINAL or current == "queued":
        return None
    if status == "accepted":
        return Move("downloading") if current == "sent" else None
    if status == "running":
        wanted = "installing" if stage == "install" else "downloading"
        return Move(wanted) if _RANK[wanted] > _RANK[current] else None
    if status == "succeeded":
        return Move("succeeded", clear=True)
    if status == "failed":
        return Move("failed", error or "failed", clear=True)
    if status == "rejected":
        if error == "busy":
            return Move("queued", "busy", clear=True, requeue=True)
        return Move("rejected", error or "rejected", clear=True)
    if status == "expired":
        return Move("timed_out", "expired", clear=True)
    if status == "unknown":
        return Move("failed", "unknown", clear=True)
    return None


def failure_pct(statuses: list[str]) -> float:
    counted = [s for s in statuses if s != "canceled"]
    if not counted:
        return 0.0
    return 100.0 * sum(1 for s in counted if s in FAILURES) / len(counted)


def wave_outcome(statuses: list[str], max_failure_pct: float) -> str:
    """``wait`` while a machine of the open waves is unfinished; then ``next`` or ``pause``."""
    if any(s not in FINAL for s in statuses):
        return "wait"
    return "next" if failure_pct(statuses) <= max_failure_pct else "pause"
