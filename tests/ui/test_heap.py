"""heap.settle: once a page is drawn, what lives as long as the server is frozen out of the garbage collector's
full collections (each walked ~330,000 objects, ~200 ms with 30 students waiting)."""
from __future__ import annotations

import gc
from pathlib import Path

from streamlit.testing.v1 import AppTest

from aeviz.ui import heap

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_settle_freezes_once_per_name_and_leaves_later_objects_to_the_collector(monkeypatch):
    monkeypatch.setattr(heap, "_done", set())
    before = gc.get_freeze_count()
    try:
        kept = [object() for _ in range(10)]  # noqa: F841  (alive while settling: frozen)
        assert heap.settle("page") is True
        frozen = gc.get_freeze_count()
        assert frozen > before
        # once per name: nothing more is frozen (the count only drops, as frozen objects die in other threads)
        assert heap.settle("page") is False and gc.get_freeze_count() <= frozen
        later = [[] for _ in range(1000)]
        assert all(gc.is_tracked(x) for x in later)
        assert len(gc.get_objects()) < frozen  # a full collection walks what came later, not the frozen heap
    finally:
        gc.unfreeze()


def test_the_app_settles_each_page_after_its_first_run(monkeypatch):
    monkeypatch.setattr(heap, "_done", set())
    try:
        at = AppTest.from_file(APP, default_timeout=120).run()
        assert not at.exception
        assert heap._done == {"explorer"} and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
