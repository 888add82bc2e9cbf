"""Runs first after every reset: drive every configured motor's pins low (config
``motors``, or the single motor of ``pins``) before anything else.

Then MicroPython runs main.py, which starts the SmartVend firmware loop.
"""

import gc

try:
    import json

    import hal

    try:
        with open("/config.json") as f:
            config = json.loads(f.read())
    except (OSError, ValueError):
        config = None
    hal.safe_outputs(config)
except ImportError:  # hal.py not copied yet: a bare board, keep the REPL usable
    pass

gc.collect()
