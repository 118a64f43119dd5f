"""Shared fixtures: tiny trained checkpoints, built once per test session (per xdist worker)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Students' saved models, rooms and user datasets go to a throwaway folder, never the developer's own.
os.environ.setdefault("AEVIZ_DATA", tempfile.mkdtemp(prefix="aeviz-test-data-"))

import aeviz
from aeviz.data import load


@pytest.fixture(scope="session")
def make_checkpoint(tmp_path_factory):
    """Factory (objective="vanilla", arch="mlp", dataset="digits", epochs=2, latent_dim=2) -> Path of a trained
    .safetensors checkpoint with model-card metrics and history, as `aeviz train` writes it.

    Small hidden sizes, seed 0, so each new combination costs about a second; repeated calls are cached.
    """
    from aeviz.cli import checkpoint_metrics

    folder = tmp_path_factory.mktemp("checkpoints")
    made: dict[tuple, Path] = {}
    small = {"mlp": (32, 16), "conv": (8, 16), "rnn": (32,)}

    def make(objective: str = "vanilla", arch: str = "mlp", dataset: str = "digits", epochs: int = 2,
             latent_dim: int = 2) -> Path:
        key = (objective, arch, dataset, epochs, latent_dim)
        if key not in made:
            mc = aeviz.config_for(dataset, objective=objective, arch=arch, latent_dim=latent_dim, hidden=small[arch])
            data = load(dataset)
            tc = aeviz.TrainConfig(epochs=epochs, batch_size=128)
            model, hist = aeviz.train(mc, tc, data)
            path = folder / f"{dataset}-{objective}-{arch}-z{latent_dim}-e{epochs}.safetensors"
            made[key] = aeviz.save(model, path, checkpoint_metrics(model, data, hist, tc), hist.to_dict())
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(make_checkpoint) -> Path:
    """A vanilla MLP autoencoder (64-32-16-2) trained 2 epochs on `digits`, saved with metrics and history."""
    return make_checkpoint()


@pytest.fixture(scope="session")
def tiny_vae_checkpoint(make_checkpoint) -> Path:
    """A variational MLP autoencoder (64-32-16-2) trained 2 epochs on `digits`, saved with metrics and history."""
    return make_checkpoint("variational")


@pytest.fixture
def give_model():
    """give_model(at, name, model) -> id: put a model into an AppTest session as the student's own (as training or
    an upload would)."""
    return _give_model


def _give_model(at, name: str, model) -> str:
    from aeviz.ui import state

    d = state.digest(model)
    model_id = f"mine:{d}"
    mine = dict(at.session_state["mine"]) if "mine" in at.session_state else {}
    mine[model_id] = (state.ModelRef(model_id, name, d, state.MINE), model)
    at.session_state["mine"] = mine
    return model_id
