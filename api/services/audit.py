"""The audit trail: one append-only row per change an operator made, from any interface.

``record`` writes in the caller's transaction, so the change and its entry commit
together or not at all. Nothing here updates or deletes; the database refuses it
too (``schema.models.AUDIT_IMMUTABLE_DDL``).
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.services.context import Context
from schema.models import AuditEntry

ACTIONS = (
    "price_changed",
    "stock_changed",
    "planogram_changed",
    "product_changed",
    "mode_changed",
    "refund_issued",
    "machine_registered",
    "machine_removed",
    "key_rotated",
    "key_revoked",
    "user_created",
    "user_changed",
    "webhook_changed",
    "rollout_started",
    "threshold_changed",
)
CLI = "cli"  # the actor of changes made with the smartvend command
LIST_LIMIT = 500


def record(
    session: AsyncSession,
    actor: str,
    action: str,
    target: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None = None,
    *,
    machine_id: str | None = None,
    at: int | None = None,
) -> AuditEntry:
    """Add one entry to ``session`` (flushed with the caller's commit).

    ``target`` is ``kind:id`` (``machine:lobby-1``, ``order:…``, ``user:ann``); a
    ``machine:`` target names the machine for the ``machine_id`` filter unless given.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action}")
    if machine_id is None and target.startswith("machine:"):
        machine_id = target.removeprefix("machine:")
    entry = AuditEntry(
        at=int(time.time()) if at is None else at,
        actor=actor[:64] or "?",
        action=action,
        target=target[:120],
        machine_id=machine_id,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        reason=(reason or None) and reason[:500],
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditFilter:
    since: int | None = None
    until: int | None = None
    machine_id: str | None = None
    actor: str | None = None
    action: str | None = None
    target: str | None = None


def as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
    }


class Audit:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def entries(self, where: AuditFilter, limit: int = LIST_LIMIT) -> list[AuditEntry]:
        """Newest first."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if where.since is not None:
            query = query.where(AuditEntry.at >= where.since)
        if where.until is not None:
            query = query.where(AuditEntry.at < where.until)
        if where.machine_id:
            query = query.where(AuditEntry.machine_id == where.machine_id)
        if where.actor:
            query = query.where(AuditEntry.actor == where.actor)
        if where.action:
            query = query.where(AuditEntry.action == where.action)
        if where.target:
            query = query.where(AuditEntry.target == where.target)
        async with self.ctx.db() as s:
            return list((await s.scalars(query)).all())
