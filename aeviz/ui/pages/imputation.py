"""Imputation: fill missing pixels by iterated reconstruction and compare with the mean image."""
from __future__ import annotations

import numpy as np
import streamlit as st

from aeviz import plots
from aeviz.ui import state, widgets
from aeviz.uses import imputation

MISSING_GREY = 0.5  # how a missing pixel is drawn


N_TEST = 500  # test images behind the test-set figures
SNAPSHOTS = {"fit the code": (0, 1, 5, 10, 25, 50, 100, 200, 300), "iterated reconstruction": (0, 1, 2, 3, 5, 10, 20, 50)}


def render() -> None:
    """Draw the page."""
    st.title("Imputation")
    st.caption("Hide part of an image and let the autoencoder guess it. Two ways: **fit the code** searches the "
               "latent space for the code whose decoding matches the pixels you can see, then reads the missing ones "
               "off the decoder; **iterated reconstruction** starts from the mean image in the gap, reconstructs, "
               "copies the reconstruction into the gap only, and repeats.")
    state.explain("Error counts the missing pixels only (m = 1 where a pixel is missing). The baseline fills each "
                   "missing pixel with its mean over the training images.",
                   # one line per idea: on one line the equation ran past the right edge of a laptop screen
                   r"\begin{aligned} \text{fit the code:}\quad & z^\star = \arg\min_z \big\|(1-m) \odot "
                   r"(x - \hat{x}(z))\big\|^2 + \lambda \|z\|^2 \\ "
                   r"\text{iterated reconstruction:}\quad & x^{(t+1)} = m \odot \hat{x}\big(x^{(t)}\big) + (1 - m) "
                   r"\odot x \\ "
                   r"\text{error:}\quad & \text{MSE}_{\text{missing}} = \frac{\sum m \,(x - \tilde{x})^2}{\sum m} "
                   r"\end{aligned}")
    r = state.image_model()
    if r is None:
        return
    _panel(r)


@st.fragment
def _panel(r: state.ModelRef) -> None:
    model = state.model(r)
    d = state.dataset(model.config.dataset)
    h, w = d.sample_shape[-2:]
    missing, method, steps, idx = _controls(h, w, len(d.x_test))
    unit = "steps" if method == "fit the code" else "iterations"
    mean_image = _mean_image(model.config.dataset)
    x = d.x_test.numpy()
    errors, changes = _curve(r, method, missing, steps)
    states = np.stack(list(imputation.fill_states(method, model, x[idx: idx + 1], missing, mean_image, steps)))[:, 0]
    mine = [float(imputation.missing_mse(x[idx: idx + 1], s[None], missing)[0]) for s in states]
    c = st.columns(4)
    c[0].metric("test set · mean-image fill", f"{errors[0]:.4f}",
                help=f"MSE on the missing pixels of the first {N_TEST} test images.")
    c[1].metric(f"test set · autoencoder, {steps} {unit}", f"{errors[-1]:.4f}",
                f"{errors[-1] - errors[0]:+.4f}", delta_color="inverse")
    c[2].metric("this image · mean-image fill", f"{mine[0]:.4f}")
    c[3].metric("this image · autoencoder", f"{mine[-1]:.4f}", f"{mine[-1] - mine[0]:+.4f}", delta_color="inverse")
    shown = np.where(missing, MISSING_GREY, x[idx])
    widgets.show_images([x[idx], shown, states[0], states[-1]],
                           ["original", "what the model sees (grey = missing)", "mean-image fill",
                            f"autoencoder after {steps} {unit}"], width=168)
    _snapshots(states, method, steps, unit)
    _curves(errors, changes, mine, method, unit)


def _controls(h: int, w: int, n: int) -> tuple[np.ndarray, str, int, int]:
    c = st.columns(4)
    method = c[0].selectbox("Method", imputation.METHODS, key="imp_method",
                            help="Fitting the code usually wins on large gaps; iterated reconstruction can drift "
                                 "towards whatever digit the autoencoder likes best.")
    kind = c[1].selectbox("Missing part", imputation.MASKS, key="imp_mask")
    rate, box = 0.5, (h // 4, w // 4, h // 2)
    if kind == "random pixels":
        rate = c[1].slider("Fraction missing", 0.05, 0.95, 0.5, 0.05, key="imp_rate")
    elif kind == "box":
        side = c[1].slider("Box side (pixels)", 1, h, h // 2, key="imp_side")
        top = c[1].slider("Box top row", 0, h - 1, h // 4, key="imp_top")
        left = c[1].slider("Box left column", 0, w - 1, w // 4, key="imp_left")
        box = (top, left, side)
    if method == "fit the code":
        steps = c[2].slider("Adam steps on the code", 0, 300, 100, 10, key="imp_steps")
    else:
        steps = c[2].slider("Iterations", 0, 50, 10, key="imp_iters")
    idx = c[3].number_input("Test image", 0, n - 1, 0, key="imp_idx")
    return imputation.make_mask(h, w, kind, rate, box, seed=0), method, steps, int(idx)


@st.cache_data(show_spinner=False)
def _mean_image(dataset: str) -> np.ndarray:
    return state.dataset(dataset).x_train.numpy().mean(0)


@state.per_model(show_spinner=f"Filling {N_TEST} test images…", max_entries=32)
def _curve(model, method: str, missing, steps: int) -> tuple[list[float], list[float]]:
    """Mean missing-pixel MSE over the test images after each step, and the mean change per step."""
    d = state.dataset(model.config.dataset)
    x = d.x_test.numpy()[:N_TEST]
    errors, changes, last = [], [], None
    for s in imputation.fill_states(method, model, x, missing, _mean_image(model.config.dataset), steps):
        errors.append(float(imputation.missing_mse(x, s, missing).mean()))
        if last is not None:
            changes.append(float(imputation.missing_mse(last, s, missing).mean()))
        last = s
    return errors, changes


def _snapshots(states, method: str, steps: int, unit: str) -> None:
    shown = sorted(set(SNAPSHOTS[method]) & set(range(steps + 1)) | {steps})
    widgets.show_grid(states[shown], ncols=len(shown), width=900,
                         caption=f"The guess after {', '.join(map(str, shown))} {unit}")


def _curves(errors, changes, mine, method: str, unit: str) -> None:
    t = np.arange(len(errors))
    axis = "Adam step" if method == "fit the code" else "iteration"
    left, right = st.columns(2)
    fig = plots.line_chart(t, {f"test set ({N_TEST} images)": errors, "this image": mine,
                               "mean-image fill (test set)": [errors[0]] * len(t)},
                           axis, "MSE on the missing pixels", "Error on the missing pixels")
    left.plotly_chart(fig, key="imp_err")
    if changes:
        fig = plots.line_chart(t[1:], {"test set": changes}, axis,
                               "mean squared change of the missing pixels", "Does it converge?")
        plots.powers_of_ten(fig)
        right.plotly_chart(fig, key="imp_change")
    best = int(np.argmin(errors))
    verdict = (f"On the test set the autoencoder's fill ends {'below' if errors[-1] < errors[0] else 'above'} the "
               f"mean-image baseline ({errors[-1]:.4f} vs {errors[0]:.4f}); its lowest error, {errors[best]:.4f}, "
               f"is after {best} {unit}. ")
    how = ("Step 0 is the mean-image fill. Each Adam step moves the code so that its decoding fits the known pixels "
           "better; when the change per step falls towards zero the code has settled. A model with many code units "
           "can fit the known pixels with an odd code and get worse on the gap: watch the curve turn up."
           if method == "fit the code" else
           "Iteration 0 is the mean-image fill. When the change per iteration falls towards zero the guess has "
           "settled on a fixed point of the autoencoder. On large gaps it often settles on a digit that fits the "
           "known half poorly: compare with fitting the code.")
    state.explain(verdict + how + " The known pixels never change.")
