"""`aeviz pretrain --jobs N`: recipes built in N processes give the same weights as a serial build."""
from __future__ import annotations

import json

from safetensors import safe_open

from aeviz import cli, zoo
from aeviz.config import TrainConfig

TINY = TrainConfig(epochs=2, max_train=300, batch_size=64)
RECIPES = [  # a plain model, the denoiser compared with it (it must wait for it), and one that needs nothing
    zoo.Recipe("tiny-ae", {"dataset": "digits", "latent_dim": 2, "hidden": (16,)}, TINY),
    zoo.Recipe("tiny-dae", {"dataset": "digits", "latent_dim": 2, "hidden": (16,), "objective": "denoising",
                            "noise_level": 0.3}, TINY, compare="tiny-ae"),
    zoo.Recipe("tiny-vae", {"dataset": "digits", "latent_dim": 3, "hidden": (16,), "objective": "variational"}, TINY),
]
TIMINGS = {"train_seconds", "samples_per_s"}  # wall clock: the only figures that differ between two builds


def contents(path):
    """(tensor bytes by name, metadata with the wall-clock figures left out) of a .safetensors file."""
    with safe_open(str(path), "np") as f:
        tensors = {k: f.get_tensor(k).tobytes() for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        meta = dict(f.metadata() or {})
    if "metrics" in meta:
        meta["metrics"] = {k: v for k, v in json.loads(meta["metrics"]).items() if k not in TIMINGS}
    if "history" in meta:
        meta["history"] = {k: v for k, v in json.loads(meta["history"]).items() if k not in ("seconds", "message")}
    return tensors, meta


def test_two_jobs_build_the_same_files_as_one(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "ZOO", RECIPES)  # workers get the recipes themselves, so they need no patching
    serial = zoo.build_zoo(tmp_path / "serial", jobs=1, device="cpu")
    parallel = zoo.build_zoo(tmp_path / "parallel", jobs=2, device="cpu")
    assert [p.name for p in serial] == [p.name for p in parallel] == [
        "tiny-ae.safetensors", "tiny-dae.safetensors", "tiny-vae.safetensors"]
    for a, b in zip(serial, parallel):
        for suffix in ("", ".views"):
            assert contents(a.with_suffix(f"{suffix}.safetensors")) == contents(b.with_suffix(f"{suffix}.safetensors"))
    dae = contents(parallel[1])[1]["metrics"]
    assert dae["psnr_vanilla_noisy"] > 0  # the denoiser found the plain model that another worker built
    assert "tiny-vae" in (tmp_path / "parallel" / "README.md").read_text()


def test_pretrain_passes_jobs_and_device(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(zoo, "build_zoo", lambda out_dir, only, jobs, device: calls.append((out_dir, only, jobs, device)))
    assert cli.main(["pretrain", "--out", str(tmp_path), "--only", "ae-mlp-z2", "--jobs", "3", "--device", "cpu"]) == 0
    assert calls == [(tmp_path, ["ae-mlp-z2"], 3, "cpu")]
