"""Bulk work collects garbage less often, and leaves the process's setting as it found it,
also when it fails or when bulk jobs overlap."""

from __future__ import annotations

import gc

import pytest

from engine.collector import YOUNG, fewer_collections


def test_bulk_work_collects_less_often_and_puts_the_setting_back() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (max(before[0], YOUNG), *before[1:])
        with fewer_collections():  # nested (or another thread's job meanwhile)
            pass
        assert gc.get_threshold()[0] == max(before[0], YOUNG)
    assert gc.get_threshold() == before

    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the load failed")
    assert gc.get_threshold() == before
