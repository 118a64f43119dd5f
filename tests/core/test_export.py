"""aeviz export: the .py runs and trains the same model again; the .ipynb is a valid notebook with the same steps."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import aeviz
from aeviz import cli, userdata, zoo
from aeviz.export import export

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVIZ_DATA", str(tmp_path / "registry"))
    userdata._USER.clear()
    yield
    userdata._USER.clear()


def table(path: Path, n: int = 60) -> Path:
    rng = np.random.default_rng(0)
    rows = ["a,b,c,d,group"] + [",".join(f"{v:.4f}" for v in rng.normal(0, 1, 4)) + f",{'xy'[i % 2]}"
                                for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def code_of(notebook) -> str:
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")


def test_an_exported_py_trains_the_same_model_again(tmp_path, capsys):
    data = table(tmp_path / "measures.csv")
    original = tmp_path / "m.safetensors"
    assert cli.main(["train", "--data", str(data), "--label-column", "group", "--hidden", "8", "--epochs", "2",
                     "--batch-size", "16", "--seed", "3", "--out", str(original)]) == 0
    assert cli.main(["export", str(original), "-o", str(tmp_path / "redo.py")]) == 0
    assert capsys.readouterr().out.endswith(f"Wrote {tmp_path / 'redo.py'}.\n")
    source = (tmp_path / "redo.py").read_text()
    assert source.startswith("# %% [markdown]\n# # Train *vanilla mlp, z=2* on `user:measures` again")
    assert source.count("# %% [markdown]") == 8 and source.count("# %%\n") == 8
    assert f"DATA_PATH = {str(data)!r}" in source and "label_column='group'" in source
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AEVIZ_DATA": str(tmp_path / "elsewhere")}
    run = subprocess.run([sys.executable, "redo.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Same config as the checkpoint: True" in run.stdout and "Note:" not in run.stdout
    before, after = aeviz.load(original), aeviz.load(tmp_path / "redo-reproduced.safetensors")
    assert after.config == before.config and after.train_config == before.train_config
    assert after.train_config == aeviz.TrainConfig(epochs=2, batch_size=16, seed=3)
    assert after.preprocessing == before.preprocessing
    for (name, w), w2 in zip(before.state_dict().items(), after.state_dict().values()):
        assert torch.allclose(w, w2, atol=1e-6), name
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("test_mse"))
    assert float(line.split()[1]) == pytest.approx(float(line.split()[2]), rel=1e-3)
    assert {p.name for p in (tmp_path / "redo-figures").iterdir()} == {"latent-map.html", "reconstructions.html",
                                                                       "plotly.min.js"}


def test_an_exported_notebook_is_valid_and_says_the_train_config_is_unknown(make_checkpoint, tmp_path, monkeypatch):
    checkpoint = make_checkpoint()  # saved without a train config, as checkpoints were before
    out = export(checkpoint, tmp_path / "digits.ipynb")
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["markdown", "code"] * 8 and nb.metadata["kernelspec"]["name"] == "python3"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "does not store its training settings" in text and "epochs, batch_size, lr, seed are read from its" in text
    code = code_of(nb)
    assert "aeviz.load_dataset('digits')" in code and "TrainConfig(epochs=2, batch_size=128, lr=0.001, seed=0)" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "digits.ipynb", "exec"), {})  # the image branch of the tutorial runs, in this process
    again = aeviz.load(tmp_path / "digits-reproduced.safetensors")
    assert again.config == aeviz.load(checkpoint).config


def test_a_sequence_model_s_tutorial_runs(tmp_path, monkeypatch):
    wave = np.sin(np.arange(600) / 7.0)
    path = tmp_path / "wave.csv"
    path.write_text("level\n" + "\n".join(f"{v:.5f}" for v in wave))
    data = aeviz.read_data(path, window=24, stride=12)
    name = aeviz.register_user_dataset("wave", data)
    tc = aeviz.TrainConfig(epochs=1, batch_size=8)
    model, _ = aeviz.train(aeviz.config_for(name, arch="rnn", hidden=(8,)), tc, data)
    checkpoint = aeviz.save(model, tmp_path / "wave.safetensors", train_config=tc,
                            preprocessing=data.extras["preprocessing"])
    out = export(checkpoint, tmp_path / "wave.py")
    source = out.read_text()
    assert "window=24, stride=12" in source and "arch='rnn'" in source
    userdata._USER.clear()
    monkeypatch.chdir(tmp_path)
    exec(compile(source, "wave.py", "exec"), {})
    assert aeviz.load(tmp_path / "wave-reproduced.safetensors").config == model.config


def test_a_zoo_model_takes_its_recipe_from_the_zoo(tmp_path):
    source = export(ROOT / "pretrained" / "ae-mlp-z2.safetensors", tmp_path / "zoo.py", zoo.ZOO).read_text()
    compile(source, "zoo.py", "exec")
    assert "This is the zoo model `ae-mlp-z2`" in source and "`aeviz/zoo.py`" in source
    assert "aeviz.TrainConfig(epochs=60, batch_size=128, lr=0.002, seed=0)" in source
    assert "aeviz.config_for('mnist', objective='vanilla', arch='mlp', latent_dim=2, hidden=(512, 256), " \
           "recon='bce')" in source


def test_export_refuses_other_suffixes_in_one_line(tiny_checkpoint, capsys):
    assert cli.main(["export", str(tiny_checkpoint), "-o", "notes.txt"]) == 2
    assert capsys.readouterr().err == ("aeviz export: The export must be a .py or an .ipynb file, "
                                       "not 'notes.txt'.\n")
