"""SmartVend's one exception tree.

Services raise these; foreign errors (database, gateway SDK, broker) are
translated at the seam where they occur.  ``api.http`` maps each class to an
HTTP status with one table, so a route never chooses a status code itself.
"""


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
