"""What the lifecycle is shown of a vend, and what it answers: plain frozen data.

A service loads one :class:`Vend` (the order with its lines, its command, its
lock, the machine, the payments and refunds so far), asks one function of
``api.lifecycle.vend`` about one event, and applies the :class:`Outcome` it gets
back through ``api.services.vend_writer``. Nothing here touches a database.

Orders speak in lines (a slot, a product, a quantity, how many came out, the
unit price); an order of the one-product machines is one line on slot ``"1"``.
"""

from dataclasses import dataclass, field

from api.lifecycle.states import CommandStatus, OrderStatus, RefundStatus, SessionStatus

ONLY_SLOT = "1"  # the slot of a machine registered the v1 way


@dataclass(frozen=True)
class Line:
    slot: str
    product: str  # the product's id (what the integrators' ``sales`` names)
    quantity: int
    dispensed: int
    unit_amount: int
    name: str = ""  # the product's name when the order was made
    motor: int = 0  # the machine's motor that runs the slot

    @property
    def short(self) -> int:
        """Units paid for that did not come out."""
        return max(0, self.quantity - self.dispensed)


@dataclass(frozen=True)
class OrderSnap:
    id: str
    machine_id: str
    session_id: str
    status: str
    amount: int
    currency: str
    lines: tuple[Line, ...]

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def dispensed(self) -> int:
        return sum(line.dispensed for line in self.lines)


@dataclass(frozen=True)
class CommandSnap:
    id: str
    status: str
    quantity: int
    dispensed: int
    deadline: int


@dataclass(frozen=True)
class SessionSnap:
    id: str
    status: str
    expires_at: int
    orders: tuple[tuple[str, str], ...] = ()  # (order id, status) of every order of the lock


@dataclass(frozen=True)
class MachineSnap:
    id: str
    stock: int
    price_amount: int = 0
    currency: str = "INR"
    product: str = ""  # what its one slot sells
    lock_id: str | None = None  # the machine's active lock, whichever it is


@dataclass(frozen=True)
class PaymentSnap:
    id: str
    amount: int
    disposition: str


@dataclass(frozen=True)
class RefundSnap:
    id: str
    payment_id: str
    amount: int
    status: str
    reason: str


@dataclass(frozen=True)
class Vend:
    """One vend as the database holds it when an event arrives."""

    machine: MachineSnap | None = None
    order: OrderSnap | None = None
    command: CommandSnap | None = None
    session: SessionSnap | None = None
    payments: tuple[PaymentSnap, ...] = ()
    refunds: tuple[RefundSnap, ...] = ()


# What the lifecycle answers


@dataclass(frozen=True)
class Incoming:
    """A verified payment as the gateway reports it."""

    gateway_payment_id: str
    amount: int
    currency: str
    via: str


@dataclass(frozen=True)
class NewPayment:
    incoming: Incoming
    disposition: str


@dataclass(frozen=True)
class NewOrder:
    client_id: str
    lines: tuple[Line, ...]
    currency: str

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def amount(self) -> int:
        return sum(line.quantity * line.unit_amount for line in self.lines)


@dataclass(frozen=True)
class Dispatch:
    """The order's one dispense command."""

    quantity: int
    expires_at: int
    deadline: int


@dataclass(frozen=True)
class NewRefund:
    payment_id: str | None  # None: the payment this event records
    amount: int
    reason: str
    lines: tuple[tuple[str, int], ...] = ()  # (slot, amount) of what it gives back
    note: str | None = None  # an operator's reason for a manual refund


@dataclass(frozen=True)
class Sale:
    """What came out, for the integrators' ``sales``."""

    quantity: int
    amount: int
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Publish:
    desired: bool = False  # the machine's desired and state change
    command: bool = False  # send the new command
    clear: bool = False  # clear the finished command
    sale: Sale | None = None


@dataclass(frozen=True)
class Outcome:
    """Everything one event changes; the default changes nothing."""

    refusal: str | None = None  # why the event changes nothing (the service's error)
    new_order: NewOrder | None = None
    order: OrderStatus | None = None  # the order's new status
    order_paid: bool = False
    lines: tuple[Line, ...] | None = None  # the order's lines with what came out
    command: CommandStatus | None = None
    command_dispensed: int | None = None
    command_accepted: bool = False
    command_finished: bool = False
    command_error: str | None = None
    dispatch: Dispatch | None = None
    payment: NewPayment | None = None
    refunds: tuple[NewRefund, ...] = ()
    refund: tuple[str, RefundStatus] | None = None  # (refund id, its new status)
    session: SessionStatus | None = None
    end_reason: str | None = None
    session_expires_at: int | None = None
    expire_unpaid: OrderStatus | None = None  # the lock's unpaid orders move here
    stock_taken: int = 0
    rotate_code: bool = False
    publish: Publish = field(default_factory=Publish)

    @property
    def changed(self) -> bool:
        return self != Outcome(refusal=self.refusal)
