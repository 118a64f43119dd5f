"""The shipped zoo: every file loads, its stored figures are true, the README agrees, and the targets hold."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import aeviz
from aeviz import analysis as A
from aeviz import zoo
from aeviz.config import ConfigError, ModelConfig
from aeviz.data import load as load_data
from aeviz.io import PRETRAINED, load_views, pretrained
from aeviz.uses import regularizers as R

CARDS = {c.name: c for c in pretrained(PRETRAINED)}
NAMES = [r.name for r in zoo.ZOO]


@pytest.fixture(scope="module", params=NAMES)
def entry(request):
    card = CARDS[request.param]
    return card, aeviz.load(card.path), load_data(card.config.dataset)


def test_zoo_is_complete_and_nothing_else():
    assert sorted(CARDS) == sorted(NAMES)
    shipped = {p.name for p in PRETRAINED.iterdir()}
    expected = {f"{n}{s}" for n in NAMES for s in (".safetensors", ".views.safetensors")} | {"README.md"}
    assert shipped == expected


def test_zoo_fits_the_size_budget():
    assert sum(p.stat().st_size for p in PRETRAINED.iterdir()) <= 25e6


def test_loads_with_valid_config_and_history(entry):
    card, model, data = entry
    assert isinstance(model.config, ModelConfig) and model.config == card.config
    assert model.config == dataclasses.replace(model.config)  # re-validates every field
    assert model.config.input_shape == data.sample_shape
    assert all(p.dtype == torch.float32 for p in model.parameters())  # float16 on disk, upcast on load
    assert model.metrics["params"] == model.n_params
    assert model.history["status"] == "finished"
    assert len(model.history["test"]["loss"]) == model.metrics["epochs"] == len(model.history["epochs"])


def _close(stored: float, recomputed: float) -> bool:
    return abs(stored - recomputed) <= 0.01 * abs(recomputed)


def test_stored_figures_match_a_recomputation(entry):
    card, model, data = entry
    m, x = card.metrics, data.x_test.numpy()
    flat_train = data.x_train.numpy().reshape(len(data.x_train), -1)
    pca = A.fit_pca(flat_train, model.config.latent_dim)
    mse = A.per_sample_mse(x, A.reconstruct(model, x)).mean()
    pca_mse = A.per_sample_mse(x.reshape(len(x), -1), A.pca_reconstruct(pca, x.reshape(len(x), -1))).mean()
    assert _close(m["test_mse"], mse)
    assert _close(m["pca_mse"], pca_mse)
    assert _close(m["mse_ratio"], mse / pca_mse)
    if model.has_prior:
        assert _close(m["nelbo"], A.negative_elbo(model, x, samples=10, seed=1).mean())
    if "knn_acc" in m:
        codes = A.embed(model, data.x_train), A.embed(model, x)
        assert _close(m["knn_acc"], A.knn_accuracy(codes[0], data.y_train.numpy(), codes[1], data.y_test.numpy()))
    else:
        errors = A.per_sample_mse(x, A.reconstruct(model, x))
        assert _close(m["auroc"], A.roc(errors, data.y_test.numpy() > 0)[2])
    if "active_fraction" in m:
        assert _close(m["active_fraction"], R.activity(model, x).per_image.mean())
        assert _close(m["jacobian_norm"], R.jacobian_norms(model, x).mean())
    if model.corrupts_input:
        noisy = zoo.noisy_test(data)
        vanilla = aeviz.load(CARDS[dict((r.name, r.compare) for r in zoo.ZOO)[card.name]].path)
        assert vanilla.config == dataclasses.replace(model.config, objective="vanilla")  # same size and nets
        assert _close(m["psnr_noisy"], A.psnr(x, noisy))
        assert _close(m["psnr_denoised"], A.psnr(x, A.reconstruct(model, noisy)))
        assert _close(m["psnr_vanilla_noisy"], A.psnr(x, A.reconstruct(vanilla, noisy)))


def test_views_are_precomputed(entry):
    card, model, data = entry
    views = load_views(card)
    n = len(data.x_test)
    # the test codes and errors the app would compute on a student's first visit (a cold model switch)
    x = data.x_test.numpy()
    np.testing.assert_allclose(views.pop("codes"), A.embed(model, data.x_test), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(views.pop("errors"), A.per_sample_mse(x, A.reconstruct(model, x)), rtol=1e-4, atol=1e-7)
    if model.config.latent_dim > 2:
        assert set(views) == {"pca", "umap"}
        for v in views.values():
            assert v.shape == (n, 2) and v.dtype == np.float32 and np.isfinite(v).all()
        return
    assert set(views) == {"snapshots", "snapshot_epochs"}
    epochs = views["snapshot_epochs"]
    assert views["snapshots"].shape == (len(epochs), n, 2)
    assert list(epochs) == list(range(1, int(model.metrics["epochs"]) + 1))
    final = A.embed(model, data.x_test)  # the last snapshot is the shipped model's codes (up to float16)
    assert np.corrcoef(final.ravel(), views["snapshots"][-1].astype(np.float32).ravel())[0, 1] > 0.999


def test_readme_is_generated_from_the_files():
    text = (PRETRAINED / "README.md").read_text(encoding="utf-8")
    assert text == zoo.readme(PRETRAINED, NAMES)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == NAMES
    for row in rows:
        name, cells = row.split("`")[1], [c.strip() for c in row.split("|")]
        assert cells[9] == f"{CARDS[name].metrics['test_mse']:.4f}"


@pytest.mark.parametrize("name, key, limit", [
    ("ae-mlp-z2", "mse_ratio", 0.82), ("ae-mlp-z16", "mse_ratio", 0.75),
    ("vae-mlp-z16", "nelbo", 115.0), ("vae-mlp-z2", "nelbo", 165.0),
])
def test_quality_targets_hold(name, key, limit):
    assert CARDS[name].metrics[key] <= limit


def test_denoiser_beats_noise_and_the_plain_autoencoder():
    m = CARDS["dae-mlp-z16"].metrics
    assert m["psnr_denoised"] >= 17.0
    assert m["psnr_denoised"] >= m["psnr_vanilla_noisy"] + 3.0


def test_sparse_code_is_sparser_than_its_plain_twin():
    sparse, plain = CARDS["sparse-mlp-z64"], CARDS["ae-mlp-shallow-z64"]
    assert sparse.config.hidden == plain.config.hidden and sparse.config.latent_dim == plain.config.latent_dim
    assert sparse.metrics["active_fraction"] < 0.5


def test_rebuilding_a_recipe_gives_the_same_bytes(tmp_path):
    tiny = dataclasses.replace(zoo.ZOO[0], train=aeviz.TrainConfig(epochs=2, max_train=256))
    with zoo.pinned_threads():
        paths = [zoo.build_one(tiny, tmp_path / str(i)) for i in range(2)]
    for suffix in ("", ".views"):
        blobs = [p.with_suffix(f"{suffix}.safetensors") for p in paths]
        a, b = (load_file(str(p)) for p in blobs)
        assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_select_adds_the_missing_comparison_and_refuses_unknown_names(tmp_path):
    assert [r.name for r in zoo.select(["dae-mlp-z16"], tmp_path)] == ["ae-mlp-z16", "dae-mlp-z16"]
    with pytest.raises(ConfigError, match="Unknown zoo entry 'nope'"):
        zoo.select(["nope"], tmp_path)


def test_header_length_ending_in_0x80_is_not_mistaken_for_a_pickle(tmp_path):
    model = aeviz.build(aeviz.ModelConfig(latent_dim=2, input_shape=(4,), hidden=(3,)))
    for pad in range(256):  # some padding makes the header length's first byte 0x80
        path = tmp_path / f"m{pad}.safetensors"
        aeviz.save(model, path, {"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            assert aeviz.load(path).config == model.config
            return
    pytest.fail("no padding gave a 0x80 header byte")  # pragma: no cover


def test_card_of_a_manifold_model_scores_trustworthiness_not_knn_on_a_colour():
    from aeviz.config import TrainConfig

    data = load_data("swiss-roll")
    model, _ = aeviz.train(aeviz.config_for("swiss-roll", latent_dim=2), TrainConfig(epochs=3))
    m = zoo.model_card(model, data)
    assert "knn_acc" not in m and "auroc" not in m
    assert m["trustworthiness"] == pytest.approx(A.trustworthiness(data.x_test.numpy(), A.embed(model, data.x_test)))
    assert 0.5 < m["trustworthiness"] <= 1.0


RUN = {"train_seconds", "epochs", "lr", "batch_size", "seed"}  # the training run's, not the model's


@pytest.mark.parametrize("name", ["ae-mlp-z2", "vae-mlp-z2", "cae-mlp-z16", "sparse-mlp-z64", "ae-conv-z16"])
def test_a_model_trained_now_gets_every_figure_its_zoo_twin_has(name):
    recipe = next(r for r in zoo.ZOO if r.name == name)
    data = load_data("mnist")
    model, _ = aeviz.train(recipe.config(), aeviz.TrainConfig(epochs=1, max_train=256, eval_every=0), data)
    m = zoo.model_card(model, data)
    assert set(m) == set(CARDS[name].metrics) - RUN
    x = data.x_test.numpy()
    assert m["params"] == model.n_params
    assert m["test_mse"] == pytest.approx(A.per_sample_mse(x, A.reconstruct(model, x)).mean())
    assert m["pca_mse"] == pytest.approx(CARDS[name].metrics["pca_mse"], rel=1e-6)  # the same PCA as the zoo's
    assert m["mse_ratio"] == pytest.approx(m["test_mse"] / m["pca_mse"])
    if model.has_prior:
        assert m["nelbo"] == pytest.approx(A.negative_elbo(model, x, samples=10).mean())


def test_the_denoiser_card_compares_with_its_plain_twin():
    dae, ae = aeviz.load(CARDS["dae-mlp-z16"].path), aeviz.load(CARDS["ae-mlp-z16"].path)
    data = load_data("mnist")
    m = zoo.model_card(dae, data, vanilla=ae)
    assert set(m) == set(CARDS["dae-mlp-z16"].metrics) - RUN
    assert _close(CARDS["dae-mlp-z16"].metrics["psnr_denoised"], m["psnr_denoised"])
    assert "psnr_vanilla_noisy" not in zoo.model_card(dae, data)


def test_pca_mse_is_computed_once_per_dataset_and_size():
    data = load_data("digits")
    zoo._pca_mse.cache_clear()
    first = zoo.pca_mse(data, 3)
    assert zoo.pca_mse(data, 3) == first and zoo._pca_mse.cache_info().hits == 1
    assert zoo.pca_mse(data, 5) < first and zoo._pca_mse.cache_info().misses == 2
    x = data.x_test.numpy().reshape(len(data.x_test), -1)
    pca = A.fit_pca(data.x_train.numpy(), 3)
    assert first == pytest.approx(A.per_sample_mse(x, A.pca_reconstruct(pca, x)).mean())


def test_a_card_after_training_keeps_what_it_can_when_a_figure_fails():
    data = load_data("digits")
    x = data.x_train.clone()
    x[:, 0, 0, 0] = float("nan")  # the training set's NaN breaks PCA and the k-NN of the codes, not the test MSE
    broken = dataclasses.replace(data, x_train=x)
    model = aeviz.build(aeviz.config_for("digits", hidden=(8,)))
    with pytest.raises(ValueError):
        zoo.model_card(model, broken)
    card = zoo.trained_card(model, broken)
    assert card == {"params": model.n_params, "test_mse": pytest.approx(zoo.test_mse(model, data.x_test.numpy()))}
    assert zoo.trained_card(model, data) == zoo.model_card(model, data)


def test_refresh_views_adds_codes_and_errors_and_keeps_the_maps_a_file_has(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    torch.manual_seed(0)
    model = aeviz.build(ModelConfig(dataset="digits", input_shape=(1, 8, 8), latent_dim=3, hidden=(16,))).eval()
    aeviz.save(model, tmp_path / "tiny.safetensors", metrics={"test_mse": 0.1})
    kept = np.full((360, 2), 7.0, np.float32)  # not what UMAP would give: a recomputed map would show
    save_file({"pca": kept, "umap": kept}, str(tmp_path / "tiny.views.safetensors"))
    monkeypatch.setattr(zoo.A, "project", lambda *a, **k: pytest.fail("a map the file has was computed again"))
    (written,) = zoo.refresh_views(tmp_path)
    got = load_file(str(written))
    assert set(got) == {"codes", "errors", "pca", "umap"} and got["codes"].shape == (360, 3)
    np.testing.assert_array_equal(got["umap"], kept)
    np.testing.assert_array_equal(got["pca"], kept)
    assert zoo.refresh_views(tmp_path) == []  # nothing left to add
