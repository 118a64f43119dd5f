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


def test_every_training_takes_one_thread_however_many_cores(four_cores):
    # Measured (bench threads --arch mlp|conv|rnn): with sleeping pool threads a second thread made a lone
    # training 0.72-0.90x as fast, and two trainings ran 1.21-1.38x faster in total with 1 thread each.
    assert threads.per_training() == 1


def test_train_applies_one_thread(four_cores):
    import aeviz
    from aeviz.config import TrainConfig

    seen = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # whatever this thread had before
        aeviz.train(aeviz.config_for("digits", latent_dim=2), TrainConfig(epochs=1),
                    callback=lambda p: seen.append(torch.get_num_threads()) or True)
    finally:
        torch.set_num_threads(before)
    assert seen == [1]


@pytest.mark.parametrize("value,expected", [("2", 2), ("0", 1), ("many", 1), ("", 1)])
def test_aeviz_threads_pins_every_training_and_ignores_nonsense(four_cores, monkeypatch, value, expected):
    monkeypatch.setenv("AEVIZ_THREADS", value)
    assert threads.per_training() == expected


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
