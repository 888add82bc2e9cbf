"""Stand-in for the board's ``machine`` module: hal.py only needs the name at import."""
