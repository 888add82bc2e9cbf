"""Stand-in for MicroPython's ``ntptime``: hal.py only needs the name at import."""
