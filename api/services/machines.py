"""The fleet: registration, credentials, stock, price, mode and presence."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import (
    InvalidRequest,
    MachineBusy,
    MachineNotFound,
    MachineTaken,
    VendInProgress,
)
from api.lifecycle.states import COMMAND_FINAL, ordered
from api.money import money
from api.security.ids import new_api_key, new_id
from api.services import audit, outgoing, planogram, sessions, webhooks_out
from api.services.codes import rotate_code
from api.services.context import Context
from api.services.presence_rule import status_applies
from broker.passwords import hash_secret, verify_secret
from schema import topics
from schema.models import (
    Command,
    DeviceEvent,
    Integrator,
    Machine,
    MachineSlot,
    Product,
    Telemetry,
)

if TYPE_CHECKING:
    from schema.messages import EventsMsg, ReportedMsg, StatusMsg, TelemetryMsg

RESERVED_IDS = frozenset({"smartvend-server", "server", "admin"})
MIN_PRICE = 100  # one rupee: the smallest amount a payment gateway takes
MAX_PRICE = 10_000_000


def check_price(amount: int) -> None:
    if not MIN_PRICE <= amount <= MAX_PRICE:
        raise InvalidRequest(
            f"price must be {MIN_PRICE} to {MAX_PRICE} paise "
            f"({money(MIN_PRICE)} to {money(MAX_PRICE)})"
        )


@dataclass(frozen=True)
class NewMachine:
    machine_id: str
    name: str
    price_amount: int
    capacity: int
    stock: int = 0
    currency: str = "INR"
    location: str | None = None
    simulated: bool = False  # run by this server's own simulator (make run, simulate)

    def validate(self) -> None:
        if not topics.is_machine_id(self.machine_id):
            raise InvalidRequest("machine_id must match [A-Za-z0-9_-]{1,32}")
        if self.machine_id in RESERVED_IDS:
            raise InvalidRequest(f"machine_id {self.machine_id!r} is reserved")
        if not 1 <= len(self.name.strip()) <= 100:
            raise InvalidRequest("name must be 1 to 100 characters")
        if self.location is not None and len(self.location) > 200:
            raise InvalidRequest("location must be at most 200 characters")
        if self.currency != "INR":
            raise InvalidRequest("only INR is supported")
        check_price(self.price_amount)
        if not 1 <= self.capacity <= 10_000:
            raise InvalidRequest("capacity must be 1 to 10,000")
        if not 0 <= self.stock <= self.capacity:
            raise InvalidRequest("stock must be between 0 and capacity")


async def add_one_slot(s: AsyncSession, machine: Machine, now: int) -> None:
    """A machine registered the v1 way: one slot "1" on motor 0 with a product of its
    own (its name and price), its capacity as par and its stock."""
    product = Product(
        id=new_id("prd"),
        sku=None,
        name=machine.name[:40],
        price_amount=machine.price_amount,
        currency=machine.currency,
        active=True,
        created_at=now,
        updated_at=now,
    )
    s.add(product)
    await s.flush()  # no relationship orders the two inserts
    s.add(
        MachineSlot(
            machine_id=machine.id,
            slot_id="1",
            motor=0,
            product_id=product.id,
            price_amount=None,
            capacity=machine.capacity,
            par=machine.capacity,
            stock=machine.stock,
            enabled=True,
            position=0,
            sold_out_taps=0,
            low_stock_alerted=False,
            sold_out_alerted=False,
        )
    )


async def only_slot(s: AsyncSession, machine_id: str, what: str) -> MachineSlot | None:
    """The slot of a one-slot machine (v1 stock and price act on it); None without slots."""
    found = await planogram.rows(s, machine_id, lock=True)
    if len(found) > 1:
        raise InvalidRequest(f"this machine has several slots: set {what} per slot")
    return found[0][0] if found else None


SYSTEM = "system"  # the actor of a change no person asked for


class Machines:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def register(self, new: NewMachine, *, by: str = SYSTEM) -> tuple[Machine, str]:
        """Create a machine; the API key is returned here once and stored only hashed."""
        new.validate()
        now = self.ctx.clock.now()
        api_key = new_api_key()
        try:
            async with self.ctx.db.begin() as s:
                if await s.get(Machine, new.machine_id) is not None:
                    raise MachineTaken(f"machine {new.machine_id} is already registered")
                if (
                    await s.scalar(
                        select(Integrator.id).where(Integrator.username == new.machine_id)
                    )
                    is not None
                ):
                    raise MachineTaken(f"{new.machine_id} is an integrator account's name")
                machine = Machine(
                    id=new.machine_id,
                    name=new.name.strip(),
                    location=new.location,
                    api_key_hash=hash_secret(api_key),
                    key_revoked=False,
                    price_amount=new.price_amount,
                    currency=new.currency,
                    capacity=new.capacity,
                    stock=new.stock,
                    restocked_total=0,
                    dispensed_total=0,
                    mode="in_service",
                    code_failures=0,
                    desired_version=0,
                    online=False,
                    boot=0,
                    low_stock_alerted=False,
                    offline_alerted=False,
                    created_at=now,
                    simulated=new.simulated,
                )
                s.add(machine)
                await s.flush()
                await add_one_slot(s, machine, now)
                await s.flush()
                await rotate_code(s, machine, now, self.ctx.policy.display_code_ttl_s)
                await outgoing.machine_changed(s, machine, now)
                audit.record(
                    s,
                    by,
                    "machine_registered",
                    f"machine:{machine.id}",
                    None,
                    {
                        "name": machine.name,
                        "location": machine.location,
                        "price": machine.price_amount,
                        "capacity": machine.capacity,
                        "stock": machine.stock,
                    },
                    at=now,
                )
        except IntegrityError as exc:
            raise MachineTaken(f"machine {new.machine_id} is already registered") from exc
        return machine, api_key

    async def mark_simulated(self, machine_ids: list[str]) -> list[str]:
        """Machines this server's own simulator runs: in dev mode their pages preview what
        their displays show. Returns the ids it knew."""
        async with self.ctx.db.begin() as s:
            found = list(
                (await s.scalars(select(Machine).where(Machine.id.in_(machine_ids)))).all()
            )
            for machine in found:
                machine.simulated = True
        return [m.id for m in found]

    async def is_simulated(self, machine_id: str) -> bool:
        async with self.ctx.db.begin() as s:
            return (await self._get(s, machine_id)).simulated

    async def rotate_key(self, machine_id: str, *, by: str = SYSTEM) -> str:
        api_key = new_api_key()
        async with self.ctx.db.begin() as s:
            machine = await self._get(s, machine_id)
            before = {"revoked": machine.key_revoked}
            machine.api_key_hash = hash_secret(api_key)
            machine.key_revoked = False
            audit.record(
                s,
                by,
                "key_rotated",
                f"machine:{machine_id}",
                before,
                {"revoked": False},
                at=self.ctx.clock.now(),
            )
        return api_key

    async def authenticate(self, machine_id: str, api_key: str) -> bool:
        """True when ``api_key`` is the machine's current, unrevoked key."""
        async with self.ctx.db() as s:
            machine = await s.get(Machine, machine_id)
        if machine is None or machine.key_revoked:
            return False
        return verify_secret(api_key, machine.api_key_hash)

    async def revoke_key(self, machine_id: str, *, by: str = SYSTEM) -> None:
        async with self.ctx.db.begin() as s:
            machine = await self._get(s, machine_id)
            before = {"revoked": machine.key_revoked}
            machine.key_revoked = True
            audit.record(
                s,
                by,
                "key_revoked",
                f"machine:{machine_id}",
                before,
                {"revoked": True},
                at=self.ctx.clock.now(),
            )

    async def remove(self, machine_id: str, *, by: str = SYSTEM) -> Machine:
        """Decommission: the key stops working, the retained ``desired`` and ``state``
        are cleared (empty retained payloads), the machine leaves fleet views and its
        orders stay. MachineBusy while a vend session or a command is open."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await self._get(s, machine_id, lock=True)
            if machine.removed_at is not None:
                return machine
            if await sessions.active_session(s, machine.id) is not None or (
                await s.scalar(
                    select(Command.id).where(
                        Command.machine_id == machine.id,
                        Command.status.not_in(ordered(COMMAND_FINAL)),
                    )
                )
            ):
                raise MachineBusy("a vend is running on this machine; remove it after it ends")
            before = {"name": machine.name, "location": machine.location, "mode": machine.mode}
            machine.key_revoked = True
            machine.removed_at = now
            machine.mode = "out_of_service"
            machine.display_code = None
            machine.display_code_expires_at = None
            retained = [topics.desired(machine.id), topics.state(machine.id)]
            await outgoing.supersede(s, retained)
            await outgoing.enqueue_many(
                s, [(t, b"") for t in retained], retain=True, qos=1, now=now
            )
            audit.record(
                s, by, "machine_removed", f"machine:{machine.id}", before,
                {"removed_at": now}, None, at=now,
            )  # fmt: skip
        return machine

    async def set_stock(
        self, machine_id: str, stock: int, *, by: str = SYSTEM, reason: str | None = None
    ) -> Machine:
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await self._get(s, machine_id, lock=True)
            if not 0 <= stock <= machine.capacity:
                raise InvalidRequest(f"stock must be between 0 and {machine.capacity}")
            in_flight = await s.scalar(
                select(Command.id).where(
                    Command.machine_id == machine.id, Command.status.not_in(ordered(COMMAND_FINAL))
                )
            )
            if in_flight is not None:
                raise VendInProgress("a vend is running on this machine; restock after it ends")
            slot = await only_slot(s, machine.id, "stock")
            if slot is not None:
                slot.stock = stock
            audit.record(
                s,
                by,
                "stock_changed",
                f"machine:{machine_id}",
                {"stock": machine.stock},
                {"stock": stock},
                reason,
                at=now,
            )
            machine.restocked_total += stock - machine.stock
            machine.stock = stock
            limit = machine.low_stock_threshold
            if stock > (self.ctx.policy.low_stock_threshold if limit is None else limit):
                machine.low_stock_alerted = False
            await outgoing.machine_changed(s, machine, now)
        return machine

    async def set_price(
        self, machine_id: str, amount: int, *, by: str = SYSTEM, reason: str | None = None
    ) -> Machine:
        check_price(amount)
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await self._get(s, machine_id, lock=True)
            before = {"price_amount": machine.price_amount}
            slot = await only_slot(s, machine.id, "prices")
            if slot is not None:
                slot.price_amount = amount
                machine.planogram_version += 1
            machine.price_amount = amount
            after = {"price_amount": amount}
            audit.record(s, by, "price_changed", f"machine:{machine_id}", before, after, reason,
                         at=now)  # fmt: skip
            await outgoing.machine_changed(s, machine, now)
        return machine

    async def set_mode(
        self, machine_id: str, mode: str, *, by: str = SYSTEM, reason: str | None = None
    ) -> Machine:
        if mode not in ("in_service", "out_of_service"):
            raise InvalidRequest("mode must be in_service or out_of_service")
        return await self._set(machine_id, ("mode_changed", by, reason), mode=mode)

    async def _set(
        self, machine_id: str, why: tuple[str, str, str | None], **fields: Any
    ) -> Machine:
        """Change what the machine must apply, and tell it through ``desired``;
        ``why`` is the audit trail's (action, actor, reason)."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await self._get(s, machine_id, lock=True)
            before = {name: getattr(machine, name) for name in fields}
            for name, value in fields.items():
                setattr(machine, name, value)
            action, by, reason = why
            audit.record(s, by, action, f"machine:{machine_id}", before, fields, reason, at=now)
            await outgoing.machine_changed(s, machine, now)
        return machine

    async def apply_status(self, machine_id: str, msg: "StatusMsg") -> bool:
        """Presence from ``status``; a will of an older ``boot`` never wins. True if applied."""
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await s.get(Machine, machine_id, with_for_update=True)
            if machine is None:
                return False
            boot = int(msg["boot"])
            online = msg["state"] == "online"
            if not status_applies(machine.boot, machine.online, boot, online):
                return False
            machine.boot = boot
            if machine.online != online:
                presence = {"machine_id": machine.id, "boot": boot}
                kind = "machine_online" if online else "machine_offline"
                await webhooks_out.emit(s, kind, presence, now)
            machine.online = online
            # Connected until now: the will is published when the link is lost.
            machine.last_seen = now
            if online:
                machine.offline_alerted = False
                machine.fw = msg.get("fw") or machine.fw
            await outgoing.machine_changed(s, machine, now, desired=False)
        return True

    async def apply_reported(self, machine_id: str, msg: "ReportedMsg") -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await self._heard(s, machine_id, now)
            if machine is None:
                return
            changed = machine.reported_mode != msg["mode"]
            machine.reported_version = msg["desired_version"]
            machine.reported_mode = msg["mode"]
            machine.reported_stock = msg["stock"]
            if changed:
                await outgoing.machine_changed(s, machine, now, desired=False)

    async def record_event(self, machine_id: str, msg: "EventsMsg") -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await self._heard(s, machine_id, now)
            if machine is None:
                return
            s.add(
                DeviceEvent(
                    machine_id=machine_id,
                    type=msg["type"],
                    code=msg["code"],
                    detail=msg["detail"],
                    ts=msg["ts"],
                    received_at=now,
                )
            )

    async def record_telemetry(self, machine_id: str, msg: "TelemetryMsg") -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.begin() as s:
            machine = await self._heard(s, machine_id, now)
            if machine is None:
                return
            data = {k: v for k, v in msg.items() if k != "ts"}
            s.add(Telemetry(machine_id=machine_id, ts=msg["ts"], data=data))

    @staticmethod
    async def _heard(s: AsyncSession, machine_id: str, now: int) -> Machine | None:
        """A message from the machine: note when it was last heard. Presence is
        ``status``'s alone (CONTRACT 1): a message never brings a machine online."""
        machine = await s.get(Machine, machine_id, with_for_update=True)
        if machine is not None:
            machine.last_seen = now
        return machine

    async def _get(self, s: Any, machine_id: str, *, lock: bool = False) -> Machine:
        machine = await s.get(Machine, machine_id, with_for_update=lock)
        if machine is None:
            raise MachineNotFound(f"no machine {machine_id}")
        return machine  # type: ignore[no-any-return]
