"""The one error the wire contract raises.

Kept in its own module so the firmware can import it under MicroPython.
"""


class SchemaError(ValueError):
    """A topic or payload that does not follow the SmartVend wire contract."""
