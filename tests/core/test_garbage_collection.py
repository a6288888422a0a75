"""older_objects_frozen: the objects of before a run are left out of collections during it, and only then."""
from __future__ import annotations

import gc

from taskcodec.garbage_collection import older_objects_frozen


def test_objects_from_before_are_frozen_inside_and_released_after():
    assert gc.get_freeze_count() == 0
    before = [object() for _ in range(3)]  # noqa: F841 - kept alive
    with older_objects_frozen():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        cycle = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # a cycle made during the block is still collected
    assert gc.get_freeze_count() == 0


def test_a_callers_own_freeze_is_left_alone():
    gc.freeze()
    try:
        count = gc.get_freeze_count()
        with older_objects_frozen():
            pass
        assert gc.get_freeze_count() == count  # not unfrozen by the block
    finally:
        gc.unfreeze()


def test_nothing_is_done_with_the_collector_disabled():
    gc.disable()
    try:
        with older_objects_frozen():
            assert gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_an_error_inside_still_unfreezes():
    try:
        with older_objects_frozen():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_freeze_count() == 0
