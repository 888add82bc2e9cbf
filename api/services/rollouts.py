"""Rollouts: a release sent to a fleet in waves, by the leader, one machine at a time.

``tick`` (the leader's periodic work) opens waves, sends an update command to
each machine of the open waves that is online and idle, notices machines that
came back with the release's ``fw``, times out machines past their deadline and
decides whether the next wave opens or the rollout pauses (:mod:`api.firmware.plan`).

An update command is never sent during a vend: not while the machine has an
active lock, a dispense command without its final result, or reports itself
``locked`` or ``dispensing``; the machine's row is locked while that is checked,
so a lock taken at the same moment is seen by one side or the other. A machine
that answers ``rejected`` ``busy`` is queued again and gets a new command after
its session. Update commands are retained on ``cmd/{cmd_id}`` like dispense
commands and cleared once their machine has a final status.
"""

import json
import logging
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import InvalidRequest, MachineNotFound, NotFound
from api.firmware import plan
from api.observability import metrics
from api.security.ids import new_id
from api.services import outgoing
from api.services.context import Context
from api.services.firmware import ReleaseNotFound
from schema import messages, topics
from schema.models import (
    FINAL_COMMAND_STATES,
    ROLLOUT_MACHINE_STATES,
    ROLLOUT_STATES,
    Command,
    FirmwareRelease,
    Machine,
    MachineTag,
    Rollout,
    RolloutMachine,
    VendSession,
)

log = logging.getLogger(__name__)

CMD_PREFIX = "fw"  # update commands' ids start "fw_"; dispense commands' "cmd_"
BUSY_MODES = ("locked", "dispensing")
MAX_TAGS = 20
TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")


class RolloutNotFound(NotFound):
    code = "rollout_not_found"


class RolloutFinished(InvalidRequest):
    code = "rollout_not_active"


def is_update_command(cmd_id: str | None) -> bool:
    """Whether a result's ``cmd_id`` names an update command (see ``CMD_PREFIX``)."""
    return cmd_id is not None and cmd_id.startswith(CMD_PREFIX + "_")


def manifest_url(version: str) -> str:
    """The manifest's path on the server the machine already talks to over HTTP."""
    return f"/api/firmware/{version}/manifest"


def update_command(cmd_id: str, version: str, signature: str, issued: int, expires: int) -> bytes:
    payload = {
        "cmd_id": cmd_id,
        "action": "update",
        "firmware": {
            "version": version,
            "manifest_url": manifest_url(version),
            "signature": signature,
        },
        "issued_at": issued,
        "expires_at": expires,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def read_result(payload: bytes) -> tuple[str, str | None, str | None]:
    """``(status, error, stage)`` of an update result; unknown fields are ignored."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeError, ValueError) as exc:
        raise InvalidRequest("results: not UTF-8 JSON") from exc
    if not isinstance(obj, dict) or obj.get("status") not in plan.RESULT_STATUSES:
        raise InvalidRequest("results: no known status")
    error = obj.get("error")
    progress = obj.get("progress")
    stage = progress.get("stage") if isinstance(progress, dict) else None
    return (
        obj["status"],
        error[:64] if isinstance(error, str) else None,
        stage if stage in plan.STAGES else None,
    )


def clean_tags(tags: object) -> list[str]:
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise InvalidRequest(f"tags must be a list of at most {MAX_TAGS}")
    for tag in tags:
        if not isinstance(tag, str) or not 1 <= len(tag) <= 64 or not set(tag) <= TAG_CHARS:
            raise InvalidRequest("a tag is 1-64 of A-Z a-z 0-9 _ . : -")
    return sorted(set(tags))


class Rollouts:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def set_tags(self, machine_id: str, tags: object) -> list[str]:
        wanted = clean_tags(tags)
        async with self.ctx.db.begin() as s:
            if await s.get(Machine, machine_id) is None:
                raise MachineNotFound(f"no machine {machine_id}")
            for row in await s.scalars(
                select(MachineTag).where(MachineTag.machine_id == machine_id)
            ):
                await s.delete(row)
            await s.flush()
            for tag in wanted:
                s.add(MachineTag(machine_id=machine_id, tag=tag))
        return wanted

    async def tags(self, machine_id: str) -> list[str]:
        async with self.ctx.db() as s:
            rows = await s.scalars(
                select(MachineTag.tag).where(MachineTag.machine_id == machine_id)
            )
            return sorted(rows)

    async def start(
        self,
        version: str,
        target: object,
        waves: object,
        max_failure_pct: float,
        deadline_s: int,
        *,
        actor: str | None = None,
    ) -> str:
        why = plan.check_waves(waves)
        if why is not None:
            raise InvalidRequest(why)
        assert isinstance(waves, list)
        if not 0 <= max_failure_pct <= 100:
            raise InvalidRequest("max_failure_pct is a percentage from 0 to 100")
        if deadline_s < 1:
            raise InvalidRequest("deadline_s must be at least 1")
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            if await s.get(FirmwareRelease, version) is None:
                raise ReleaseNotFound(f"no release {version!r}")
            machine_ids = await _targets(s, target)
            if not machine_ids:
                raise InvalidRequest("the target has no machines")
            sizes = plan.wave_sizes(len(machine_ids), waves)
            rollout = Rollout(
                id=new_id("ro"),
                version=version,
                target=target if isinstance(target, dict) else {"all": True},
                waves=waves,
                max_failure_pct=float(max_failure_pct),
                deadline_s=deadline_s,
                status="running",
                wave=1,
                created_at=now,
                created_by=actor,
            )
            s.add(rollout)
            await s.flush()
            await s.execute(
                insert(RolloutMachine),
                [
                    {
                        "rollout_id": rollout.id,
                        "machine_id": mid,
                        "position": i,
                        "wave": plan.wave_of(i, sizes),
                        "status": "queued",
                        "attempts": 0,
                        "updated_at": now,
                    }
                    for i, mid in enumerate(machine_ids)
                ],
            )
            log.info("rollout %s of %s to %d machines", rollout.id, version, len(machine_ids))
            return rollout.id

    async def view(self, rollout_id: str) -> dict[str, Any]:
        async with self.ctx.db() as s:
            rollout = await s.get(Rollout, rollout_id)
            if rollout is None:
                raise RolloutNotFound(f"no rollout {rollout_id!r}")
            rows = await s.scalars(
                select(RolloutMachine)
                .where(RolloutMachine.rollout_id == rollout_id)
                .order_by(RolloutMachine.position)
            )
            machines = [
                {
                    "machine_id": r.machine_id,
                    "status": r.status,
                    "error": r.error,
                    "wave": r.wave,
                    "progress": None
                    if r.progress_total is None
                    else {"bytes": r.progress_bytes, "total": r.progress_total},
                }
                for r in rows
            ]
            return {
                "rollout_id": rollout.id,
                "version": rollout.version,
                "status": rollout.status,
                "wave": rollout.wave,
                "waves": rollout.waves,
                "max_failure_pct": rollout.max_failure_pct,
                "deadline_s": rollout.deadline_s,
                "created_at": rollout.created_at,
                "machines": machines,
            }

    async def list(self) -> list[dict[str, Any]]:
        async with self.ctx.db() as s:
            rollouts = (await s.scalars(select(Rollout).order_by(Rollout.created_at.desc()))).all()
            counts = await s.execute(
                select(RolloutMachine.rollout_id, RolloutMachine.status, func.count()).group_by(
                    RolloutMachine.rollout_id, RolloutMachine.status
                )
            )
            by: dict[str, dict[str, int]] = {}
            for rid, status, n in counts:
                by.setdefault(rid, {})[status] = n
            return [
                {
                    "rollout_id": r.id,
                    "version": r.version,
                    "status": r.status,
                    "wave": r.wave,
                    "waves": r.waves,
                    "created_at": r.created_at,
                    "counts": by.get(r.id, {}),
                }
                for r in rollouts
            ]

    async def resume(self, rollout_id: str) -> dict[str, Any]:
        """A paused rollout goes on with its next wave (or finishes after its last)."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            rollout = await _rollout(s, rollout_id)
            if rollout.status != "paused":
                raise RolloutFinished(f"rollout is {rollout.status}, not paused")
            if rollout.wave < len(rollout.waves):
                rollout.wave += 1
                rollout.status = "running"
            else:
                rollout.status = "finished"
                rollout.finished_at = now
        return await self.view(rollout_id)

    async def abort(self, rollout_id: str) -> dict[str, Any]:
        """Stop: queued machines and commands not yet accepted are canceled."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            rollout = await _rollout(s, rollout_id)
            if rollout.status not in ("running", "paused"):
                raise RolloutFinished(f"rollout is already {rollout.status}")
            rollout.status = "aborted"
            rollout.finished_at = now
            rows = await s.scalars(
                select(RolloutMachine)
                .where(
                    RolloutMachine.rollout_id == rollout_id,
                    RolloutMachine.status.in_(("queued", "sent")),
                )
                .with_for_update()
            )
            for row in rows:
                await self._move(s, row, plan.Move("canceled", clear=True), now)
        return await self.view(rollout_id)

    async def apply_result(self, machine_id: str, cmd_id: str, payload: bytes) -> bool:
        """A machine's report on an update command; False when it changed nothing."""
        if not payload:
            return False
        status, error, stage = read_result(payload)
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            row = await s.scalar(
                select(RolloutMachine).where(RolloutMachine.cmd_id == cmd_id).with_for_update()
            )
            if row is None or row.machine_id != machine_id:
                return False
            move = plan.on_result(row.status, status, error, stage)
            if status == "running":
                _progress(row, payload)
            if move is None:
                return False
            await self._move(s, row, move, now)
            return True

    async def tick(self) -> int:
        """The leader's step over every running rollout; returns the commands sent."""
        now = self.ctx.clock.now()
        sent = 0
        async with self.ctx.db.begin() as s:
            running = (
                await s.scalars(
                    select(Rollout).where(Rollout.status == "running").order_by(Rollout.created_at)
                )
            ).all()
            for rollout in running:
                # a wave that ends opens the next one in the same step
                for _ in range(len(rollout.waves) + 1):
                    wave = rollout.wave
                    sent += await self._step(s, rollout, now)
                    if rollout.wave == wave or rollout.status != "running":
                        break
        await self._observe()
        return sent

    async def _step(self, s: AsyncSession, rollout: Rollout, now: int) -> int:
        release = await s.get(FirmwareRelease, rollout.version)
        assert release is not None
        rows = (
            await s.scalars(
                select(RolloutMachine)
                .where(
                    RolloutMachine.rollout_id == rollout.id,
                    RolloutMachine.wave <= rollout.wave,
                    RolloutMachine.status.not_in(plan.FINAL),
                )
                .order_by(RolloutMachine.position)
                .with_for_update()
            )
        ).all()
        sent = 0
        if rows:
            ids = [r.machine_id for r in rows]
            fw = dict(
                (await s.execute(select(Machine.id, Machine.fw).where(Machine.id.in_(ids)))).all()
            )
            for row in rows:
                if row.due_at is None:
                    row.due_at = now + rollout.deadline_s
                if fw.get(row.machine_id) == rollout.version:
                    await self._move(s, row, plan.Move("succeeded", clear=True), now)
                elif row.due_at <= now:
                    await self._move(s, row, plan.Move("timed_out", "deadline", clear=True), now)
            queued = [r for r in rows if r.status == "queued"]
            if queued:
                ready = await _ready(s, [r.machine_id for r in queued], now)
                for row in queued:
                    if row.machine_id in ready:
                        await self._send(s, row, release, now)
                        sent += 1
        statuses = list(
            await s.scalars(
                select(RolloutMachine.status).where(
                    RolloutMachine.rollout_id == rollout.id,
                    RolloutMachine.wave <= rollout.wave,
                )
            )
        )
        outcome = plan.wave_outcome(statuses, rollout.max_failure_pct)
        if outcome == "pause":
            rollout.status = "paused"
            log.warning(
                "rollout %s paused after wave %d: %.1f%% failed",
                rollout.id,
                rollout.wave,
                plan.failure_pct(statuses),
            )
        elif outcome == "next":
            if rollout.wave < len(rollout.waves):
                rollout.wave += 1
            else:
                rollout.status = "finished"
                rollout.finished_at = now
        return sent

    async def _send(
        self, s: AsyncSession, row: RolloutMachine, release: FirmwareRelease, now: int
    ) -> None:
        assert row.due_at is not None
        cmd_id = new_id(CMD_PREFIX)
        row.cmd_id = cmd_id
        row.status = "sent"
        row.error = None
        row.attempts += 1
        row.updated_at = now
        payload = update_command(cmd_id, release.version, release.signature, now, row.due_at)
        await outgoing.enqueue(
            s, topics.cmd(row.machine_id, cmd_id), payload, retain=True, qos=1, now=now
        )

    async def _move(self, s: AsyncSession, row: RolloutMachine, move: plan.Move, now: int) -> None:
        if move.clear and row.cmd_id is not None:
            topic = topics.cmd(row.machine_id, row.cmd_id)
            await outgoing.enqueue(s, topic, messages.CLEAR, retain=True, qos=1, now=now)
        row.status = move.status
        row.error = move.error
        row.updated_at = now
        if move.requeue:
            row.cmd_id = None

    async def _observe(self) -> None:
        async with self.ctx.db() as s:
            counts = dict(
                (
                    await s.execute(
                        select(RolloutMachine.status, func.count())
                        .join(Rollout, Rollout.id == RolloutMachine.rollout_id)
                        .where(Rollout.status.in_(("running", "paused")))
                        .group_by(RolloutMachine.status)
                    )
                ).all()
            )
            rollouts = dict(
                (
                    await s.execute(select(Rollout.status, func.count()).group_by(Rollout.status))
                ).all()
            )
        for status in ROLLOUT_MACHINE_STATES:
            metrics.ROLLOUT_MACHINES.labels(status).set(counts.get(status, 0))
        for status in ROLLOUT_STATES:
            metrics.ROLLOUTS.labels(status).set(rollouts.get(status, 0))


def _progress(row: RolloutMachine, payload: bytes) -> None:
    try:
        progress = json.loads(payload).get("progress")
    except ValueError:  # read_result has parsed it already
        return
    if not isinstance(progress, dict):
        return
    done, total = progress.get("bytes"), progress.get("total")
    if isinstance(done, int) and isinstance(total, int) and done >= 0 and total >= 0:
        row.progress_bytes, row.progress_total = done, total


async def _rollout(s: AsyncSession, rollout_id: str) -> Rollout:
    rollout = await s.get(Rollout, rollout_id, with_for_update=True)
    if rollout is None:
        raise RolloutNotFound(f"no rollout {rollout_id!r}")
    return rollout


async def _targets(s: AsyncSession, target: object) -> list[str]:
    """The target's machine ids, in id order."""
    if target == "all":
        return list(await s.scalars(select(Machine.id).order_by(Machine.id)))
    if isinstance(target, dict) and set(target) == {"machines"}:
        wanted = target["machines"]
        if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
            raise InvalidRequest("target machines must be a list of machine ids")
        found = set(await s.scalars(select(Machine.id).where(Machine.id.in_(wanted))))
        unknown = sorted(set(wanted) - found)
        if unknown:
            raise MachineNotFound(f"no machine {unknown[0]}")
        return sorted(found)
    if isinstance(target, dict) and set(target) == {"tag"} and isinstance(target["tag"], str):
        return list(
            await s.scalars(
                select(MachineTag.machine_id)
                .where(MachineTag.tag == target["tag"])
                .order_by(MachineTag.machine_id)
            )
        )
    raise InvalidRequest('target is "all", {"machines": [...]} or {"tag": "..."}')


async def _ready(s: AsyncSession, machine_ids: list[str], now: int) -> set[str]:
    """Those of ``machine_ids`` that are online and not in a vend or another update.

    Their rows are locked first, so a lock or a dispense committed meanwhile is seen.
    An update of an aborted rollout that went silent past its deadline no longer counts."""
    online = set(
        await s.scalars(
            select(Machine.id)
            .where(
                Machine.id.in_(machine_ids),
                Machine.online.is_(True),
                Machine.key_revoked.is_(False),
                func.coalesce(Machine.reported_mode, "idle").not_in(BUSY_MODES),
            )
            .with_for_update()
        )
    )
    if not online:
        return online
    vending = set(
        await s.scalars(
            select(VendSession.machine_id).where(
                VendSession.machine_id.in_(online), VendSession.status == "active"
            )
        )
    )
    dispensing = set(
        await s.scalars(
            select(Command.machine_id).where(
                Command.machine_id.in_(online), Command.status.not_in(FINAL_COMMAND_STATES)
            )
        )
    )
    updating = set(
        await s.scalars(
            select(RolloutMachine.machine_id).where(
                RolloutMachine.machine_id.in_(online),
                RolloutMachine.status.in_(plan.ACTIVE),
                RolloutMachine.due_at > now,
            )
        )
    )
    return online - vending - dispensing - updating
