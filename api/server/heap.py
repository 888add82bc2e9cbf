"""The server's long-lived objects, kept out of Python's full garbage collections.

A full collection (of the oldest generation) scans every object the collector tracks
and stops the whole process meanwhile: the event loop, every request, the MQTT
bridge. Most of a started server's objects live as long as it does (modules, routes,
the services, compiled statements, the broker link); scanning them finds nothing, and
in the vend benchmark one such collection held the loop for 171 ms on SQLite and 126
ms on PostgreSQL, the longest stall of the run. Once the lifespan has started, the
objects alive are moved to the permanent generation (``gc.freeze``) after one last
collection, so a full collection scans only what came later; when the lifespan ends
they go back (``gc.unfreeze``) and become collectable again, as an embedding process
(a test, a benchmark) expects.
"""

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def settled() -> Iterator[None]:
    """While the block runs, what exists when it starts is never scanned again."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
