import json
import os
import subprocess
import sys

import pytest
import torch

from aeviz import threads


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.delenv("AEVIZ_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 4)


def test_one_core_is_left_for_everything_else_and_the_rest_is_split(four_cores):
    assert threads.fair_share() == 3
    with threads.training_slot():
        assert threads.fair_share() == 3
        with threads.training_slot():
            assert threads.fair_share() == 1  # 3 // 2
            with threads.training_slot(), threads.training_slot():
                assert threads.fair_share() == 1  # never below one
        assert threads.fair_share() == 3


@pytest.mark.parametrize("n_cores, alone", [(1, 1), (2, 1), (8, 7)])
def test_share_of_one_training_alone(monkeypatch, n_cores, alone):
    monkeypatch.delenv("AEVIZ_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: n_cores)
    with threads.training_slot():
        assert threads.fair_share() == alone


def test_aeviz_threads_pins_every_training(four_cores, monkeypatch):
    monkeypatch.setenv("AEVIZ_THREADS", "2")
    with threads.training_slot(), threads.training_slot(), threads.training_slot():
        assert threads.fair_share() == 2


def test_a_failing_training_frees_its_slot(four_cores):
    with pytest.raises(RuntimeError):
        with threads.training_slot():
            raise RuntimeError("boom")
    with threads.training_slot(), threads.training_slot():
        assert threads.fair_share() == 1
    assert threads._busy == 0


def test_apply_sets_this_thread_pool():
    before = torch.get_num_threads()
    try:
        assert threads.apply(2) == 2 and torch.get_num_threads() == 2
        assert threads.apply(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cores_counts_this_process_cpus():
    assert threads.cores() == len(os.sched_getaffinity(0))


def test_import_aeviz_leaves_streamlit_unimported_and_starts_torch_with_one_thread():
    code = ("import json, os, sys, aeviz, torch; print(json.dumps({'streamlit': 'streamlit' in sys.modules, "
            "'omp': os.environ.get('OMP_NUM_THREADS'), 'torch': torch.get_num_threads()}))")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True,
                         timeout=120)
    assert json.loads(out.stdout.splitlines()[-1]) == {"streamlit": False, "omp": "1", "torch": 1}
