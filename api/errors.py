"""SmartVend's one exception tree.

Services raise these; foreign errors (database, gateway SDK, broker) are
translated at the seam where they occur.  ``api.http`` maps each class to an
HTTP status with one table, so a route never chooses a status code itself.

The packages below ``api`` keep errors of their own, since they cannot import
it: ``schema``'s :class:`SchemaError`, ``broker``'s :class:`BrokerError` and the
lifecycle's :class:`IllegalTransition`. Each has a subclass here that is also a
:class:`SmartVendError` (so ``except SchemaError`` still catches it), and
:func:`translated` turns the originals into them where they cross into the
server.
"""

import contextlib
from collections.abc import Iterator

from api.lifecycle.table import IllegalTransition
from broker.errors import BrokerError
from schema.errors import SchemaError


class SmartVendError(Exception):
    """Base of every error SmartVend raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")
        self.retry_after = retry_after


class InvalidRequest(SmartVendError):
    code = "invalid_request"


class PayloadTooLarge(InvalidRequest):
    code = "payload_too_large"


class NotFound(SmartVendError):
    code = "not_found"


class MachineNotFound(NotFound):
    code = "machine_not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"


class CommandNotFound(NotFound):
    code = "command_not_found"


class Conflict(SmartVendError):
    code = "conflict"


class MachineTaken(Conflict):
    code = "machine_exists"


class MachineBusy(Conflict):
    code = "machine_busy"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class VendInProgress(Conflict):
    code = "vend_in_progress"


class RefundedInFull(Conflict):
    code = "refunded_in_full"


class RefundExceedsPaid(Conflict):
    code = "refund_exceeds_paid"


class LastAdmin(Conflict):
    code = "last_admin"


class FeedbackExists(Conflict):
    code = "feedback_exists"


class OrderNotFinished(Conflict):
    code = "order_not_finished"


class CheckoutNotOpen(Conflict):
    """A reservation is kept longer only while a payment is waiting on it."""

    code = "checkout_not_open"


class ReasonRequired(InvalidRequest):
    code = "reason_required"


class InvalidCode(SmartVendError):
    code = "invalid_code"


class MachineRequired(InvalidCode):
    """Code-only guesses are spent for now: the code is not checked unless the
    shopper names the machine (400, like any code not accepted)."""

    code = "machine_required"


class MachineOffline(SmartVendError):
    code = "machine_offline"


class MachineOutOfService(MachineOffline):
    code = "machine_out_of_service"


class RateLimited(SmartVendError):
    code = "rate_limited"


class TooManyStreams(RateLimited):
    """This client already holds as many live streams as it may."""

    code = "too_many_streams"


class StreamsFull(SmartVendError):
    """The server holds as many live streams as it serves at once."""

    code = "streams_full"


class NotLockOwner(SmartVendError):
    code = "not_lock_owner"


class NotOrderOwner(SmartVendError):
    code = "not_order_owner"


class SessionExpired(SmartVendError):
    code = "session_expired"


class InvalidSignature(SmartVendError):
    code = "invalid_signature"


class PaymentRequired(SmartVendError):
    code = "payment_required"


class PaymentFailed(PaymentRequired):
    code = "payment_failed"


class Unauthorized(SmartVendError):
    code = "unauthorized"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class Forbidden(SmartVendError):
    code = "forbidden"


class GatewayError(SmartVendError):
    """The payment gateway failed or answered something we cannot use."""

    code = "gateway_error"


class ConfigurationError(SmartVendError):
    """Settings that cannot work; raised at start, before anything listens."""

    code = "configuration_error"


class InvalidMessage(SmartVendError, SchemaError):
    """A topic or payload off the wire contract, as the server meets it."""

    code = "invalid_message"


class BrokerFailure(SmartVendError, BrokerError):
    """The MQTT broker failed (the broker package's error, inside the server)."""

    code = "broker_error"


class IllegalMove(SmartVendError, IllegalTransition):
    """A status move the vend's state diagram does not have: a bug, never a fallback."""

    code = "illegal_transition"


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise the lower packages' errors as members of this tree."""
    try:
        yield
    except SmartVendError:
        raise
    except SchemaError as exc:
        raise InvalidMessage(str(exc)) from exc
    except IllegalTransition as exc:
        raise IllegalMove(str(exc)) from exc
    except BrokerError as exc:
        raise BrokerFailure(str(exc)) from exc


class ProductNotFound(NotFound):
    code = "product_not_found"


class ItemsRequired(InvalidRequest):
    """A v1 ``quantity`` on a machine with several slots: the order must name them."""

    code = "items_required"


class InvalidItems(InvalidRequest):
    code = "invalid_items"


class SlotOutOfStock(InsufficientStock):
    """Not enough units in one slot; the answer names it (``"slot"`` beside ``code``)."""

    def __init__(self, message: str, *, slot: str) -> None:
        super().__init__(message)
        self.slot = slot


class SlotUnavailable(Conflict):
    code = "slot_unavailable"

    def __init__(self, message: str, *, slot: str) -> None:
        super().__init__(message)
        self.slot = slot


class PlanogramChanged(Conflict):
    """The planogram was changed since the editor read it."""

    code = "planogram_changed"


class SkuTaken(Conflict):
    code = "sku_exists"
