"""webmodel: a model's nets as one safetensors blob with a layer spec and a content hash, for the browser."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

import aeviz
from aeviz import webmodel
from aeviz.webmodel import WebExportError

SMALL = {"mlp": (16, 8), "conv": (4, 8), "rnn": (12,)}


def fresh(arch="mlp", objective="vanilla", cell="gru", shape=(1, 8, 8), latent=3, seed=0):
    torch.manual_seed(seed)
    return aeviz.build(aeviz.ModelConfig(objective=objective, arch=arch, latent_dim=latent, dataset="digits",
                                         input_shape=shape, hidden=SMALL[arch], rnn_cell=cell)).eval()


@pytest.mark.parametrize("arch,objective,cell", [("mlp", "vanilla", "gru"), ("conv", "variational", "gru"),
                                                 ("rnn", "sparse", "gru"), ("rnn", "variational", "lstm")])
def test_the_blob_carries_spec_hash_and_every_named_tensor_as_the_model_holds_it(tmp_path, arch, objective, cell):
    model = fresh(arch, objective, cell)
    wm = webmodel.export(model, encoder=True)
    spec, digest, tensors = webmodel.read(wm.blob)
    assert spec == wm.spec and digest == wm.hash and len(digest) == 16
    state = model.state_dict()
    named = {v for net in ("decoder", "encoder") for op in spec[net] for v in op.values()
             if isinstance(v, str) and v in state}
    assert named == set(tensors) == set(state)  # these nets use every parameter, and nothing else is shipped
    for name, arr in tensors.items():
        assert arr.dtype == np.float32 and np.array_equal(arr, state[name].numpy())
    assert spec["decoder"][-1] == {"op": "sigmoid", "shape": list(model.config.input_shape)}
    assert spec["encoder"][-1]["shape"] == [model.config.latent_dim]
    path = tmp_path / "w.safetensors"  # an ordinary safetensors file: any reader opens it
    path.write_bytes(wm.blob)
    with safe_open(str(path), framework="np") as f:
        assert json.loads(f.metadata()["aeviz_web"])["latent_dim"] == model.config.latent_dim


def test_float16_weights_ship_as_float16_and_anything_else_as_float32():
    model = fresh()
    with torch.no_grad():  # the zoo's weights: float16 values held in float32 tensors
        for p in model.parameters():
            p.copy_(p.half().float())
    half = webmodel.export(model)
    _, _, tensors = webmodel.read(half.blob)
    assert {a.dtype for a in tensors.values()} == {np.dtype(np.float16)}
    for name, arr in tensors.items():  # the same numbers, in half the bytes
        assert np.array_equal(arr.astype(np.float32), model.state_dict()[name].numpy())
    full = webmodel.export(fresh())
    assert len(half.blob) < 0.6 * len(full.blob)
    assert {a.dtype for a in webmodel.read(full.blob)[2].values()} == {np.dtype(np.float32)}  # rounding would lose


def test_the_encoder_ends_as_encode_does_per_objective():
    tails = {o: webmodel.export(fresh(objective=o), encoder=True).spec["encoder"][-1]["op"]
             for o in ("vanilla", "sparse", "variational", "denoising", "contractive")}
    assert tails == {"vanilla": "linear", "sparse": "relu", "variational": "slice", "denoising": "linear",
                     "contractive": "linear"}
    assert "encoder" not in webmodel.export(fresh()).spec


def test_the_conv_and_rnn_ops_record_their_torch_settings():
    ops = webmodel.export(fresh("conv", shape=(1, 28, 28))).spec["decoder"]
    convs = [op for op in ops if op["op"] == "convtranspose2d"]
    assert [(op["k"], op["stride"], op["pad"], op["out_pad"], op["shape"]) for op in convs] == [
        ([4, 4], [2, 2], [1, 1], [0, 0], [4, 14, 14]), ([4, 4], [2, 2], [1, 1], [0, 0], [1, 28, 28])]
    rnn = webmodel.export(fresh("rnn", cell="lstm", shape=(128, 1))).spec["decoder"][0]
    assert (rnn["op"], rnn["cell"], rnn["steps"], rnn["feats"], rnn["hidden"]) == ("rnn_decode", "lstm", 128, 1, 12)


def test_the_hash_is_stable_and_follows_the_weights():
    a, b = webmodel.export(fresh()), webmodel.export(fresh())
    assert a.hash == b.hash and a.blob == b.blob
    assert webmodel.export(fresh(seed=1)).hash != a.hash
    assert webmodel.export(fresh(), encoder=True).hash != a.hash
    model = fresh()
    with torch.no_grad():
        model.decoder[0].bias[0] += 1e-3
    assert webmodel.export(model).hash != a.hash


def test_a_layer_the_browser_does_not_know_is_refused_by_name():
    model = fresh()
    model.decoder[1] = nn.ELU()
    with pytest.raises(WebExportError, match="ELU"):
        webmodel.export(model)
    conv = fresh("conv", shape=(1, 28, 28))
    conv.decoder[3] = nn.ConvTranspose2d(8, 4, 4, 2, 1, dilation=2)
    with pytest.raises(WebExportError, match="dilation"):
        webmodel.export(conv)
    rnn = fresh("rnn", shape=(28, 28))
    rnn.decoder.rnn = nn.GRU(3, 12, num_layers=2, batch_first=True)
    with pytest.raises(WebExportError, match="one-layer"):
        webmodel.export(rnn)


def test_an_objective_with_its_own_posterior_is_refused():
    class Odd(aeviz.Autoencoder):
        def posterior(self, x):
            return self.encoder(x) * 2, {}

    model = Odd(fresh().config)
    webmodel.export(model)  # the decoder alone is fine
    with pytest.raises(WebExportError, match="posterior"):
        webmodel.export(model, encoder=True)


def test_a_blob_without_a_spec_is_not_read_as_a_model():
    from safetensors.numpy import save

    with pytest.raises(WebExportError, match="no spec"):
        webmodel.read(save({"w": np.zeros(2, np.float32)}))


def test_exported_remembers_a_model_until_its_weights_change():
    model = fresh()
    first = webmodel.exported(model)
    assert webmodel.exported(model) is first
    assert webmodel.exported(model, encoder=True).has_encoder and not first.has_encoder
    with torch.no_grad():
        model.decoder[0].weight.mul_(2)
    again = webmodel.exported(model)
    assert again is not first and again.hash != first.hash


def test_webmodel_is_core_it_never_imports_streamlit():
    import subprocess
    import sys

    code = "import sys, aeviz.webmodel; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
