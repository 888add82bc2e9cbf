"""The services a running SmartVend is made of, wired once from their ports."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.clock import Clock
from api.payments.base import PaymentGateway
from api.services.admins import Admins
from api.services.context import Context
from api.services.dispense import Dispense
from api.services.locks import Locks
from api.services.machines import Machines
from api.services.orders import Orders
from api.services.policy import VendPolicy
from api.services.refunds import Refunds
from api.services.sweeper import Sweeper


@dataclass(frozen=True)
class Services:
    ctx: Context
    admins: Admins
    machines: Machines
    locks: Locks
    orders: Orders
    dispense: Dispense
    refunds: Refunds
    sweeper: Sweeper
    gateway: PaymentGateway

    @classmethod
    def build(
        cls,
        db: async_sessionmaker[AsyncSession],
        clock: Clock,
        policy: VendPolicy,
        gateway: PaymentGateway,
    ) -> "Services":
        ctx = Context(db=db, clock=clock, policy=policy)
        dispense = Dispense(ctx)
        return cls(
            ctx=ctx,
            admins=Admins(ctx),
            machines=Machines(ctx),
            locks=Locks(ctx, Locks.limiter_for(ctx)),
            orders=Orders(ctx, gateway),
            dispense=dispense,
            refunds=Refunds(ctx, gateway),
            sweeper=Sweeper(ctx, dispense),
            gateway=gateway,
        )
