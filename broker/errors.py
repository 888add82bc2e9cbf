"""Errors raised by the broker package."""


class BrokerError(Exception):
    """Base of the broker package's errors."""


class BrokerStartError(BrokerError, OSError):
    """The embedded broker could not open its listener (port taken, bad address...)."""
