"""Contractive tab: the encoder Jacobian's size over the test set, and how far codes move under small changes."""
from __future__ import annotations

import numpy as np
import streamlit as st

from aeviz import analysis, plots
from aeviz.ui import state
from aeviz.ui.pages import lab
from aeviz.uses import regularizers as R

NOISE_SIZES = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)  # Gaussian sigma added to [0,1] pixels (then clipped)
SHIFT_SIZES = (0, 1, 2, 3, 4)  # pixels moved, each of the four directions
ROBUST_IMAGES = 500  # test digits behind each robustness point


def render(keys: list[str]) -> None:
    """The contractive tab."""
    state.explain("A contractive autoencoder pays for how strongly its code z = f(x) reacts to each input pixel: "
                   "the squared Frobenius norm of the encoder's Jacobian. Its code should barely move when the "
                   "input changes a little, while still telling different digits apart.",
                   r"\mathcal{L} = \ell(x,\hat x) + \lambda \,\|J_f(x)\|_F^2,\qquad "
                   r"\|J_f(x)\|_F^2 = \sum_{j,i} \Big(\frac{\partial z_j}{\partial x_i}\Big)^2")
    c1, c2, c3 = st.columns(3)
    names = [lab.pick("Contractive model", keys, "lab_ct_model", ["cae-mlp-z16"], "contractive", container=c1),
             lab.pick("Vanilla model", keys, "lab_ct_vanilla", ["ae-mlp-z16"], "vanilla", container=c2),
             lab.pick("Denoising model", keys, "lab_ct_denoiser", ["dae-mlp-z16"], "denoising", container=c3)]
    names = list(dict.fromkeys(names))
    _jacobians(names)
    _robustness(names)


@state.per_model(show_spinner="Computing encoder Jacobians on the 1,000 test digits…", max_entries=32)
def jacobians(model) -> dict[str, np.ndarray]:
    """||J_f(x)||_F on every test digit, and the spread of the codes (to compare models fairly)."""
    x = lab.test_digits()
    z = analysis.embed(model, x)
    return {"norms": R.jacobian_norms(model, x), "spread": np.float64(R.code_spread(z))}


def _jacobians(names: list[str]) -> None:
    st.subheader("How sensitive is the code?")
    stats = {state.name(k): jacobians(k) for k in names}
    relative = st.toggle("Divide by the spread of each model's codes", key="lab_ct_relative",
                         help="A model could look insensitive just by making all its codes small; "
                              "dividing by how far codes typically lie from their mean removes that.")
    values = {k: s["norms"] / s["spread"] if relative else s["norms"] for k, s in stats.items()}
    cols = st.columns(len(names))
    for col, (k, v) in zip(cols, values.items()):
        col.metric(rf"Median $\lVert J_f \rVert_F$: {k}", f"{np.median(v):.3g}")  # markdown shows a bare _F as is
    norm = "‖J<sub>f</sub>(x)‖<sub>F</sub>"  # plotly titles take HTML subscripts, not LaTeX's _
    unit = f"{norm} ÷ code spread" if relative else f"{norm} (Frobenius norm of ∂z/∂x)"
    st.plotly_chart(plots.histogram(values, "Encoder Jacobian norm on each test digit", unit, bins=60),
                    key="lab_ct_hist")
    state.explain("One value per test digit: how much the code would move, in total, if each pixel were nudged "
                   "by a tiny amount. Smaller means a code that ignores small input changes.")


@state.per_model(show_spinner="Perturbing test digits and measuring how far the codes move…", max_entries=32)
def robustness(model, kind: str) -> list[float]:
    """Mean code movement / code spread at each perturbation size (noise or shift)."""
    sizes = NOISE_SIZES if kind == "noise" else SHIFT_SIZES
    return R.robustness(model, lab.test_digits(ROBUST_IMAGES), kind, sizes).tolist()


def _robustness(names: list[str]) -> None:
    st.subheader("Robustness: how far the code moves")
    left, right = st.columns(2)
    noise = {state.name(k): robustness(k, "noise") for k in names}
    shift = {state.name(k): robustness(k, "shift") for k in names}
    y = "code movement ÷ code spread"
    left.plotly_chart(plots.line_chart(NOISE_SIZES, noise, "σ of Gaussian noise added to the input", y,
                                       "Small random noise"), key="lab_ct_noise")
    right.plotly_chart(plots.line_chart(SHIFT_SIZES, shift, "pixels the digit is shifted (up, down, left, right)", y,
                                        "Small shifts"), key="lab_ct_shift")
    state.explain(f"Each point: the mean distance between the code of a test digit and the code of its perturbed "
                   f"copy, over {ROBUST_IMAGES} test digits, divided by how far codes typically lie from their mean "
                   "(1 means the perturbation moves a code as far as a typical digit is from the average digit).",
                   r"d(\delta) = \frac{\mathbb{E}_x \|f(x+\delta) - f(x)\|}{\mathbb{E}_x \|f(x) - \bar z\|}")
