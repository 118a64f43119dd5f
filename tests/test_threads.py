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


def test_the_cores_are_split_between_the_trainings_running(four_cores):
    assert threads.fair_share() == 4
    with threads.training_slot():
        assert threads.fair_share() == 4
        with threads.training_slot():
            assert threads.fair_share() == 2
            with threads.training_slot():
                assert threads.fair_share() == 1  # 4 // 3
                with threads.training_slot(), threads.training_slot():
                    assert threads.fair_share() == 1  # never below one
        assert threads.fair_share() == 4


def test_aeviz_threads_pins_every_training(four_cores, monkeypatch):
    monkeypatch.setenv("AEVIZ_THREADS", "2")
    with threads.training_slot(), threads.training_slot(), threads.training_slot():
        assert threads.fair_share() == 2


def test_a_failing_training_frees_its_slot(four_cores):
    with pytest.raises(RuntimeError):
        with threads.training_slot():
            raise RuntimeError("boom")
    with threads.training_slot(), threads.training_slot():
        assert threads.fair_share() == 2
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


def test_import_aeviz_leaves_streamlit_unimported_and_starts_torch_with_one_sleeping_thread():
    code = ("import json, os, sys, aeviz, torch; print(json.dumps({'streamlit': 'streamlit' in sys.modules, "
            "'omp': os.environ.get('OMP_NUM_THREADS'), 'wait': os.environ.get('OMP_WAIT_POLICY'), "
            "'torch': torch.get_num_threads()}))")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True,
                         timeout=120)
    assert json.loads(out.stdout.splitlines()[-1]) == {"streamlit": False, "omp": "1", "wait": "PASSIVE", "torch": 1}
