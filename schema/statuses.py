"""The one status vocabulary of a vend's records, portable (plain tuples of strings).

Everything that names a status takes it from here: the database's check
constraints (``schema.models``), the result decoder (``schema.wire``), the
OpenAPI and AsyncAPI enums, and the lifecycle's ``StrEnum``s
(``api.lifecycle.states``). It runs on MicroPython too: no enum, no typing.
"""

ORDER = (
    "created",
    "paid",
    "dispensing",
    "dispensed",
    "failed",
    "refund_pending",
    "refunded",
    "expired",
)
COMMAND_PROGRESS = ("accepted", "running")
COMMAND_FINAL = ("succeeded", "failed", "rejected", "expired", "unknown")
COMMAND = ("pending",) + COMMAND_PROGRESS + COMMAND_FINAL  # noqa: RUF005 (MicroPython)
# What a machine may say about a command (CONTRACT 1, results).
RESULT = COMMAND_PROGRESS + COMMAND_FINAL
# A final word that gives money back for what did not come out.
COMMAND_SHORT = ("failed", "rejected", "expired", "unknown")
REFUND = ("pending", "processed", "failed")
SESSION = ("active", "ended", "expired")
# Refund.reason of an operator's refund; every other reason is automatic.
MANUAL_REFUND = "manual"
