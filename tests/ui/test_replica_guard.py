"""The replica watcher is mounted only on a replica behind `aeviz serve` (AEVIZ_REPLICA): on a single server it
would only add to the cost of every widget on every rerun."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page():
    from aeviz.ui.components import replica

    replica.guard()


def test_the_guard_is_mounted_on_a_replica_only(monkeypatch):
    monkeypatch.delenv("AEVIZ_REPLICA", raising=False)
    at = AppTest.from_function(_page, default_timeout=30).run()
    assert not at.exception and not at.get("bidi_component")
    monkeypatch.setenv("AEVIZ_REPLICA", "r1")
    at = AppTest.from_function(_page, default_timeout=30).run()
    assert not at.exception and [e.proto.id.endswith("-aeviz_replica_guard") for e in at.get("bidi_component")] == [True]
