import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import aeviz
from aeviz import cli
from aeviz.config import ModelConfig, TrainConfig
from aeviz.data import REGISTRY
from aeviz.io import PRETRAINED


def test_datasets_lists_name_offline_and_description(capsys):
    assert cli.main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "offline", "description"]
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in lines[1:]}
    assert set(rows) == set(REGISTRY)
    assert rows["mnist"] == ["yes", REGISTRY["mnist"].description]
    assert rows["mnist-full"][0] == "no"


def test_every_config_field_is_a_train_flag():
    parser = cli.build_parser()
    flags = {opt for action in parser._subparsers._group_actions[0].choices["train"]._actions
             for opt in action.option_strings}
    for cls in (ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            assert "--" + f.name.replace("_", "-") in flags, f.name
    args = parser.parse_args(["train", "--normal-classes", "1", "7", "--beta", "4", "--objective", "variational"])
    assert (args.normal_classes, args.beta, args.objective, args.latent_dim) == ([1, 7], 4.0, "variational", None)


def test_flag_help_comes_from_the_config_comments():
    comments = cli._field_comments(ModelConfig)
    assert comments["latent_dim"] == "size of the code z"
    assert set(comments) == {f.name for f in dataclasses.fields(ModelConfig)}
    assert set(cli._field_comments(TrainConfig)) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_train_writes_a_checkpoint_that_info_reads_back(tmp_path, capsys):
    out = tmp_path / "digits-vae.safetensors"
    code = cli.main(["train", "--dataset", "digits", "--objective", "variational", "--hidden", "32", "16",
                     "--epochs", "1", "--latent-dim", "3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and out.is_file()
    assert "epoch 1/1: 100%" in captured.err and "train=" in captured.err  # the tqdm bar ends with the losses
    assert f"Wrote {out}" in captured.out

    model = aeviz.load(out)
    assert model.config == aeviz.config_for("digits", objective="variational", hidden=(32, 16), latent_dim=3)
    m = model.metrics
    assert 0 < m["test_mse"] < 1 and m["epochs"] == 1 and m["params"] == model.n_params
    assert m["mse_ratio"] == pytest.approx(m["test_mse"] / m["pca_mse"])
    assert {"test_loss", "test_recon", "test_kl", "train_seconds", "samples_per_s", "lr", "seed"} <= set(m)
    assert model.history["status"] == "finished" and len(model.history["train"]["loss"]) == 1

    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert f"{out}: variational mlp, z=3, trained on digits, {model.n_params:,} parameters" in info
    assert "  latent_dim           3" in info and "  hidden               (32, 16)" in info
    assert f"  test_mse             {model.metrics['test_mse']:.4g}" in info
    assert "history: finished after 1 epochs" in info


def test_info_on_a_bad_file_is_one_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "notes.safetensors"
    bad.write_text("these are not weights")
    run = subprocess.run([sys.executable, "-m", "aeviz.cli", "info", str(bad)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("aeviz info: notes.safetensors is truncated or not a .safetensors file")


@pytest.mark.parametrize("argv, message", [
    (["train", "--latent-dim", "0", "--dataset", "digits"],
     "aeviz train: Latent size must be between 1 and 1024, not 0."),
    (["train", "--dataset", "cifar"], "aeviz train: Unknown dataset 'cifar'"),
    (["info", "missing.safetensors"], "aeviz info: missing.safetensors: no such file."),
])
def test_bad_input_is_one_line_on_stderr_with_exit_code_2(capsys, argv, message):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_pretrain_calls_build_zoo_with_out_and_only(monkeypatch, tmp_path):
    calls = []
    from aeviz import zoo

    monkeypatch.setattr(zoo, "build_zoo", lambda out_dir, only, jobs, device: calls.append((out_dir, only, jobs, device)))
    assert cli.main(["pretrain"]) == 0
    assert cli.main(["pretrain", "--out", str(tmp_path), "--only", "ae-mlp", "vae-mlp"]) == 0
    assert calls == [(Path(PRETRAINED), None, 1, "auto"), (tmp_path, ["ae-mlp", "vae-mlp"], 1, "auto")]


def test_pretrain_views_only_adds_codes_and_errors_and_keeps_the_maps(tmp_path, capsys):
    import shutil

    from safetensors.numpy import load_file, save_file

    src = PRETRAINED / "ae-mlp-z2.safetensors"
    if not src.exists():
        pytest.skip("no default model")
    shutil.copy(src, tmp_path / src.name)
    old = load_file(str(src.with_suffix(".views.safetensors")))
    wave1 = {k: v for k, v in old.items() if k not in ("codes", "errors")}  # a file from before the views grew
    save_file(wave1, str(tmp_path / "ae-mlp-z2.views.safetensors"))
    assert cli.main(["pretrain", "--views-only", "--out", str(tmp_path)]) == 0
    assert "Wrote" in capsys.readouterr().out
    new = load_file(str(tmp_path / "ae-mlp-z2.views.safetensors"))
    assert set(new) == set(wave1) | {"codes", "errors"} and new["codes"].shape == (1000, 2)
    assert all(new[k].tobytes() == wave1[k].tobytes() for k in wave1)  # snapshots untouched
    assert (tmp_path / src.name).read_bytes() == src.read_bytes()  # nothing retrained
    assert cli.main(["pretrain", "--views-only", "--out", str(tmp_path)]) == 0  # nothing left to add
    assert "Wrote" not in capsys.readouterr().out
