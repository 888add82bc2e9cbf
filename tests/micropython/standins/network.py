"""Stand-in for the board's ``network`` module: hal.py only needs the name at import."""
