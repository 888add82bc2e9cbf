"""The started server's objects stay out of full collections, and come back after."""

import gc
import weakref

from api.server import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_what_exists_is_frozen_what_comes_later_is_still_collected() -> None:
    old = Node()
    with heap.settled():
        assert gc.get_freeze_count() > 0
        assert all(o is not old for o in gc.get_objects())  # out of every generation
        young = weakref.ref(Node())
        gc.collect()
        assert young() is None  # later garbage is still freed
        frozen = weakref.ref(old)
        del old
        gc.collect()
        assert frozen() is not None  # a frozen cycle waits for the block's end
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert frozen() is None  # given back: collected as usual
