import io
import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

import aeviz
from aeviz.config import ARCHS, OBJECTIVES, to_json
from aeviz.io import FORMAT, MAX_BYTES, CheckpointError, load, pretrained, read_metadata, save, to_bytes

SMALL = {"mlp": (16, 8), "conv": (4, 8), "rnn": (16,)}


def model_for(objective="vanilla", arch="mlp", latent_dim=3):
    torch.manual_seed(0)
    return aeviz.build(aeviz.config_for("digits", objective=objective, arch=arch, latent_dim=latent_dim,
                                        hidden=SMALL[arch]))


@pytest.mark.parametrize("objective, arch", [(o, a) for o in OBJECTIVES for a in ARCHS])
def test_round_trip_gives_identical_outputs(tmp_path, objective, arch):
    model = model_for(objective, arch).eval()
    path = save(model, tmp_path / "m.safetensors", metrics={"test_mse": 0.01}, history={"epochs": [1]})
    back = load(path)
    assert back.config == model.config and not back.training
    assert back.metrics == {"test_mse": 0.01} and back.history == {"epochs": [1]}
    x = torch.rand(4, 64)
    with torch.no_grad():
        assert torch.equal(back.encode(x), model.encode(x))
        z = torch.randn(4, 3)
        assert torch.equal(back.decode(z), model.decode(z))
    if objective == "variational":
        g = lambda: torch.Generator().manual_seed(0)
        assert torch.equal(back.sample(3, generator=g()), model.sample(3, generator=g()))


@pytest.mark.parametrize("arch", ARCHS)
def test_loading_draws_no_random_weights_and_the_loaded_ones_can_be_trained(tmp_path, arch):
    """A model is built on the meta device and takes the file's tensors: no random initialisation to overwrite
    (it took 14 ms of a zoo MLP's first visit), so loading leaves torch's random stream where it was."""
    path = save(model_for("variational", arch), tmp_path / "m.safetensors")
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    back = load(path)
    assert torch.equal(torch.rand(3), expected)
    stored = aeviz.io.load_file(str(path))
    for name, p in back.named_parameters():
        assert not p.is_meta and p.requires_grad and p.dtype == torch.float32 and torch.equal(p.detach(), stored[name])
    assert not any(b.is_meta for b in back.buffers())
    back.train()
    back.objective(torch.rand(4, 64))["loss"].backward()
    assert all(p.grad is not None for p in back.parameters())


def test_bytes_round_trip_and_metadata_without_weights(tmp_path):
    model = model_for("sparse")
    back = load(to_bytes(model, metrics={"a": 1}), name="upload.safetensors")
    assert back.config == model.config and back.metrics == {"a": 1}
    config, metrics, history = read_metadata(save(model, tmp_path / "s.safetensors", metrics={"b": 2.5}))
    assert config == model.config and metrics == {"b": 2.5} and history == {}


def refused(path, *fragments):
    with pytest.raises(CheckpointError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(path.name) and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_a_pickled_torch_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(model_for().state_dict(), path)
    refused(path, "looks like a pickled PyTorch file", "never unpickles anything")
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    refused(raw, "looks like a pickled PyTorch file")


class Exploit:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["pickle-v2", "pickle-v0", "torch.save"])
def test_a_malicious_pickle_runs_nothing(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.safetensors"
    if how == "torch.save":
        torch.save({"w": Exploit(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Exploit(marker), protocol=2 if how == "pickle-v2" else 0))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load(path)
    with pytest.raises(CheckpointError):
        load(path.read_bytes())
    assert not marker.exists()
    if how == "torch.save":  # the exploit is real: unpickling does fire it
        torch.load(io.BytesIO(path.read_bytes()), weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_truncated_files_are_refused_as_truncated(tmp_path):
    good = save(model_for(), tmp_path / "good.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    for keep in (len(good) - 10, len(good) // 2, 100, 5):
        cut.write_bytes(good[:keep])
        message = refused(cut)
        assert "truncated" in message or "too short" in message, message


def test_a_file_whose_tensors_do_not_fit_its_config_is_refused(tmp_path):
    small, big = model_for(latent_dim=2), model_for(latent_dim=3)
    path = tmp_path / "mixed.safetensors"
    meta = {"format": FORMAT, "config": to_json(big.config), "metrics": "{}"}
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(path), metadata=meta)
    message = refused(path, "its tensors do not fit its config", "wrong shape")
    assert "encoder.5.weight (2, 8) instead of (3, 8)" in message
    partial = {k: v.contiguous() for k, v in big.state_dict().items() if not k.startswith("decoder")}
    save_file(partial, str(path), metadata=meta)
    refused(path, "missing decoder.0.bias")


def test_foreign_safetensors_and_bad_metadata_are_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    refused(path, "is a .safetensors file but not an aeviz checkpoint")
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": FORMAT, "config": "{not json"})
    refused(path, "has unreadable aeviz metadata")
    bad = json.dumps({"objective": "magic"})
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": FORMAT, "config": bad})
    refused(path, "has an invalid config: Unknown objective 'magic'")


def test_missing_empty_and_oversized_files_are_refused(tmp_path):
    refused(tmp_path / "nowhere.safetensors", "no such file")
    empty = tmp_path / "empty.safetensors"
    empty.touch()
    refused(empty, "too short")
    huge = tmp_path / "huge.safetensors"
    with huge.open("wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    refused(huge, "aeviz checkpoints are at most 64 MB")
    with pytest.raises(CheckpointError, match="the uploaded file is 67 MB; aeviz checkpoints are at most 64 MB."):
        load(bytes(MAX_BYTES + 1))


def test_pretrained_lists_checkpoints_but_not_their_views(tmp_path):
    save(model_for("variational"), tmp_path / "b-vae.safetensors", metrics={"x": 1})
    save(model_for(), tmp_path / "a-ae.safetensors")
    save_file({"pca": torch.zeros(2, 2)}, str(tmp_path / "a-ae.views.safetensors"))
    cards = pretrained(tmp_path)
    assert [c.name for c in cards] == ["a-ae", "b-vae"]
    assert cards[1].config.objective == "variational" and cards[1].metrics == {"x": 1}
    assert cards[0].views_path == tmp_path / "a-ae.views.safetensors"


def test_a_loaded_model_saved_again_keeps_its_train_config_and_preprocessing(tmp_path):
    """Downloads and the student's workspace save models that were loaded: nothing the file said may be lost."""
    model = aeviz.build(aeviz.config_for("digits", hidden=(8,)))
    tc, pre = aeviz.TrainConfig(epochs=3, seed=7), {"source": {"file": "x.csv"}, "columns": ["a", "b"]}
    again = load(to_bytes(load(save(model, tmp_path / "m.safetensors", train_config=tc, preprocessing=pre))))
    assert again.train_config == tc and again.preprocessing == pre
    other = aeviz.TrainConfig(epochs=5)
    assert load(to_bytes(again, train_config=other)).train_config == other  # given ones still win
