"""`aeviz bench actions` on the real app: every action kind is measured once, with its server CPU."""
from __future__ import annotations

import pytest

from aeviz.bench.actions import bench
from aeviz.io import PRETRAINED

KINDS = ("first_screen", "reload", "release", "map_click", "page", "preset", "model", "poll")


@pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")
def test_every_action_kind_is_measured_with_the_server_cpu_it_cost(capsys):
    out = bench(reps=1)
    for kind in KINDS:
        assert out[f"{kind}_n"] == (2 if kind == "page" else 1), kind
        assert out[f"{kind}_cpu_ms"] >= 0 and out[f"{kind}_p50_ms"] > 0, kind
    printed = capsys.readouterr().out
    assert all(f"{k.replace('_', ' '):>13}: server CPU" in printed for k in KINDS)
