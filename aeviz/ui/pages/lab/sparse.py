"""Sparse tab: how many code units fire per image, sparse vs vanilla, and what the units have learned."""
from __future__ import annotations

import numpy as np
import streamlit as st

import aeviz
from aeviz import analysis, plots
from aeviz.config import TrainConfig
from aeviz.ui import state, training
from aeviz.ui.pages import lab
from aeviz.ui.widgets import show_grid
from aeviz.uses import regularizers as R

WEIGHTS = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)  # lambda: a log scale spans what matters
TRAIN_KEY = "lab_sp_train"
TILES_PX = 470  # 8 tiles of 29 px, doubled
PENALTIES = {"l1": "L1 on the code (ReLU units)", "kl": "KL to a target rate ρ (sigmoid units)"}


def render(keys: list[str]) -> None:
    """The sparse tab."""
    state.explain("A sparse autoencoder pays for every unit of its code that fires, so each digit is described by "
                   "a few active units out of many. Compare how many units fire per image, and what the units "
                   "look for, with a plain autoencoder of the same shape.",
                   r"\mathcal{L}_{L_1} = \ell(x,\hat x) + \lambda \sum_j |z_j| \qquad "
                   r"\mathcal{L}_{KL} = \ell(x,\hat x) + \lambda \sum_j \mathrm{KL}\big(\rho \,\|\, \hat\rho_j\big),"
                   r"\ \ \hat\rho_j = \text{mean activation of unit } j")
    _train_panel()
    keys = lab.digit_keys()  # a model trained just now joins the lists
    c1, c2 = st.columns(2)
    sparse = lab.pick("Sparse model", keys, "lab_sp_model", ["sparse-mlp-z64"], "sparse", container=c1)
    vanilla = lab.pick("Compare with", keys, "lab_sp_vanilla", ["ae-mlp-shallow-z64", "ae-mlp-z16"], "vanilla",
                       container=c2,
                       help="Best a plain model of the same shape: ae-mlp-shallow-z64 for sparse-mlp-z64.")
    names = [sparse, vanilla]
    stats = {k: activity(k) for k in dict.fromkeys(names)}
    _metrics(names, stats)
    _histograms(names, stats)
    _features(names, stats)


def _train_panel() -> None:
    """Knobs for a shallow sparse model trained live (784 -> units -> 784 on MNIST: seconds)."""
    with st.expander("Train a sparse model yourself (a few seconds)", expanded=training.job(TRAIN_KEY) is not None):
        c1, c2, c3, c4 = st.columns(4)
        penalty = c1.selectbox("Penalty", ("l1", "kl"), key="lab_sp_penalty", format_func=PENALTIES.get)
        weight = c2.select_slider("Sparsity weight λ", WEIGHTS, value=0.1, key="lab_sp_weight",
                                  help="0 gives a plain autoencoder; larger values silence more units.")
        rho = c3.slider("Target activation ρ", 0.01, 0.5, 0.05, 0.01, key="lab_sp_rho", disabled=penalty != "kl",
                        help="The mean activation each unit should have (KL penalty only).")
        epochs = c4.slider("Epochs", 1, 20, 5, key="lab_sp_epochs")
        units = st.select_slider("Code units", (16, 32, 64, 128), value=64, key="lab_sp_units",
                                 help="Sparse codes are usually overcomplete-ish: many units, few used per image.")
        mc = aeviz.config_for("mnist", objective="sparse", hidden=(), latent_dim=units, sparsity=penalty,
                              sparsity_weight=weight, sparsity_target=rho)
        name = f"sparse-{penalty}-z{units}-λ{weight:g}" + (f"-ρ{rho:g}" if penalty == "kl" else "")
        training.train_with_progress(mc, TrainConfig(epochs=epochs, lr=2e-3), key=TRAIN_KEY, name=name,
                                     label="Train", select=False, live_map=False)
    job = training.job(TRAIN_KEY)
    if job is not None and job.model_key and st.session_state.get("lab_sp_shown") != job.model_key:
        st.session_state["lab_sp_shown"] = job.model_key
        st.session_state["lab_sp_model"] = job.model_key  # show the new model at once (its picker comes below)


@state.per_model(show_spinner="Measuring code activity on the test set…", max_entries=32)
def activity(model) -> dict[str, np.ndarray]:
    """Activations, active fractions and test PSNR of one model on the 1,000 test digits."""
    x = lab.test_digits()
    a = R.activity(model, x)
    return {"z": a.z, "per_image": a.per_image, "per_unit": a.per_unit,
            "psnr": analysis.psnr(x, analysis.reconstruct(model, x).reshape(x.shape))}


def _metrics(names: list[str], stats: dict) -> None:
    for col, k in zip(st.columns(len(names)), names):
        s = stats[k]
        n_units = s["z"].shape[1]
        with col.container(border=True):
            st.markdown(f"**{state.name(k)}**")
            a, b, c = st.columns(3)
            a.metric("Active per image", f"{s['per_image'].mean():.0%}",
                     help=f"Mean share of its {n_units} code units above {R.ACTIVE:.0%} of their own peak.")
            b.metric("Never active", f"{int((s['per_unit'] == 0).sum())} of {n_units}",
                     help="Units that stay silent on every test digit.")
            c.metric("Test PSNR", f"{s['psnr']:.1f} dB", help="Reconstruction quality on clean test digits.")


def _histograms(names: list[str], stats: dict) -> None:
    left, right = st.columns(2)
    values = {state.name(k): _sample(stats[k]["z"]) for k in names}
    fig = plots.histogram(values, "Code activations", "activation value", bins=80)
    fig.update_yaxes(type="log", title="count (log scale)")
    left.plotly_chart(fig, key="lab_sp_hist_values")
    fig = plots.histogram({state.name(k): stats[k]["per_image"] for k in names}, "Units active per image",
                          "fraction of code units active on one image", bins=40)
    right.plotly_chart(fig, key="lab_sp_hist_active")
    state.explain(f"Left: every activation of every unit over the test digits; a sparse code piles up at zero. "
                   f"Right: for each test digit, the share of units above {R.ACTIVE:.0%} of their own largest value "
                   "(a scale-free test, so a model cannot look sparse just by making its codes small).")


def _sample(z: np.ndarray, n: int = 20_000) -> np.ndarray:
    """At most n activations, evenly spread: enough for a histogram, light for the browser."""
    flat = z.ravel()
    return flat[:: max(1, len(flat) // n)]


def _features(names: list[str], stats: dict) -> None:
    st.subheader("What the units have learned")
    which = st.radio("Show", ("encoder", "decoder"), horizontal=True, key="lab_sp_which",
                     format_func={"encoder": "what each unit looks for (first encoder layer)",
                                  "decoder": "what each unit draws (decoder columns)"}.get)
    for col, k in zip(st.columns(len(names)), names):
        busiest = np.argsort(-stats[k]["per_unit"], kind="stable")  # most often active first
        try:
            tiles = R.features(state.model(k), which, n=64, units=busiest)
        except ValueError as err:
            col.info(str(err))
            continue
        with col:
            show_grid(tiles, ncols=8, width=TILES_PX, caption=f"{state.name(k)}: {len(tiles)} units, most often active first")
    state.explain("Grey is a weight of zero, white positive, black negative. Sparse units tend to become local "
                   "strokes and blobs; a plain model's units are spread-out mixtures. Units that never fire get "
                   "no gradient, so they keep their random start and look like static (they come last).")
