"""Training in several processes (DistributedDataParallel, gloo on the CPU) and the device choice."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import aeviz
from aeviz import cli
from aeviz.bench.ddp import run_ranks
from aeviz.config import ConfigError, TrainConfig
from aeviz.train import Group, group, pick_device

ROOT = Path(aeviz.__file__).resolve().parents[1]
N = 256  # one global batch: every sample of the step, split 128 + 128 across the two processes


def test_one_ddp_step_equals_one_step_on_the_whole_batch(tmp_path):
    mc = aeviz.config_for("digits", hidden=(32, 16), latent_dim=2)  # vanilla: no noise, no sampling
    tc = TrainConfig(epochs=1, batch_size=N, max_train=N, eval_every=0)
    single, hist = aeviz.train(mc, tc)
    assert len(hist.step_loss) == 1
    ranks = run_ranks(2, mc, tc, tmp_path)  # two spawned processes, a file:// rendezvous in tmp_path
    (w0, h0), (w1, h1) = ranks
    assert h0["samples"] == h1["samples"] == N and len(h0["step_loss"]) == 1
    assert h0["step_loss"] == h1["step_loss"]  # the all-reduced loss, logged alike
    assert h0["step_loss"][0] == pytest.approx(hist.step_loss[0], rel=1e-5)  # the mean over all N samples
    start = aeviz.build(mc).state_dict()  # same seed: the weights before the step
    for name, p in single.state_dict().items():
        torch.testing.assert_close(w0[name], w1[name], rtol=0, atol=0)  # the ranks agree exactly
        torch.testing.assert_close(w0[name], p, rtol=1e-5, atol=1e-7)
    assert any(not torch.equal(start[k], single.state_dict()[k]) for k in start)  # the step did move the weights


def test_outside_a_process_group_one_process_trains_on_the_cpu():
    assert group() == Group(0, 1, "") and group().main
    assert pick_device(None) == torch.device("cpu") and pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_is_one_sentence(capsys):
    with pytest.raises(ConfigError, match=r"^--device cuda needs a GPU, and this torch sees none"):
        pick_device("cuda")
    assert cli.main(["train", "--dataset", "digits", "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("aeviz train: --device cuda needs a GPU")


def test_nproc_refuses_a_batch_that_does_not_split(capsys):
    assert cli.main(["train", "--dataset", "digits", "--nproc", "3", "--batch-size", "128"]) == 2
    err = capsys.readouterr().err
    assert err == ("aeviz train: The batch size 128 does not split evenly across 3 processes; choose a multiple "
                   "of 3.\n")


def test_nproc_is_not_handed_to_torchrun():
    assert cli._without_nproc(["train", "--nproc", "2", "--epochs", "1", "--nproc=4"]) == ["train", "--epochs", "1"]


@pytest.mark.skipif(importlib.util.find_spec("torch.distributed.run") is None, reason="torchrun is not available")
def test_torchrun_two_processes_write_one_checkpoint_that_loads(tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "aeviz",
           "train", "--dataset", "digits", "--hidden", "32", "16", "--epochs", "1", "--batch-size", "64",
           "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("Wrote ") == 1 and "in 2 processes (gloo on cpu), a global batch of 64" in run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.safetensors"]
    model = aeviz.load(out)
    assert model.config == aeviz.config_for("digits", hidden=(32, 16), latent_dim=2)
    assert model.history["status"] == "finished" and model.metrics["epochs"] == 1
    assert model.metrics["test_mse"] < 0.2
