"""What the daily-figures feed's last read saw, to tell which machines changed since.

A sale changes a machine's figures when its command finishes having dispensed: the
feed keeps a watermark on ``commands.finished_at``, looking back ``SALES_LAG_S``
before its last read (a sale's transaction may commit after a read it predates)
and remembering the commands it has seen in that look-back, so a sale is news
once. Manual refunds are few a day: their totals per machine are compared whole.
The whole feed is due again at local midnight (every figure resets) and every
``WHOLE_READ_S``.
"""

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from api.clock import LocalCalendar
from api.views import daily_figures

WHOLE_READ_S = 600  # the whole feed is read at least this often (and at local midnight)
SALES_LAG_S = 60  # a sale's transaction committing this long after it finished is still seen


@dataclass(frozen=True)
class Marks:
    at: int | None = None  # clock time of the last read; None: there was none
    day: str | None = None  # its local day
    whole_at: int = 0  # when the whole feed was last read
    sales: frozenset[str] = frozenset()  # commands that finished in its look-back
    refunded: dict[str, int] = field(default_factory=dict)  # manual refunds today, by machine

    def whole_due(self, now: int, day: str) -> bool:
        return self.at is None or day != self.day or now >= self.whole_at + WHOLE_READ_S


@dataclass(frozen=True)
class Since:
    """Sales and manual refunds as read now, against ``Marks``."""

    sales: list[tuple[str, str]]  # (command id, machine id) finished in the look-back
    refunded: dict[str, int]

    def changed(self, marks: Marks) -> set[str]:
        """The machines a sale or a manual refund changed since ``marks``."""
        found = {mid for cid, mid in self.sales if cid not in marks.sales}
        found.update(
            mid
            for mid in self.refunded.keys() | marks.refunded.keys()
            if self.refunded.get(mid) != marks.refunded.get(mid)
        )
        return found

    def marks(self, now: int, day: str, whole_at: int) -> Marks:
        """The marks of a read at ``now`` that saw this."""
        return Marks(now, day, whole_at, frozenset(cid for cid, _ in self.sales), self.refunded)


async def since(
    s: AsyncSession, marks: Marks, calendar: LocalCalendar, day_start: int, now: int
) -> Since:
    """Sales finished since the look-back of ``marks`` and manual refunds today, read now."""
    look_back = (now if marks.at is None else marks.at) - SALES_LAG_S
    return Since(
        await daily_figures.sales_finished_since(s, look_back),
        await daily_figures.manual_refunds_by_machine(s, calendar, day_start, now),
    )
