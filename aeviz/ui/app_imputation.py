"""Imputation: fill missing pixels by iterated reconstruction and compare with the mean image."""
from __future__ import annotations

import numpy as np
import streamlit as st

from aeviz import imputation, plots
from aeviz.ui import app_shared, common

MISSING_GREY = 0.5  # how a missing pixel is drawn


def render() -> None:
    """Draw the page."""
    st.title("Imputation")
    st.caption("Hide part of an image and let the autoencoder guess it. Start from the training set's mean image in "
               "the gap, reconstruct, copy the reconstruction into the gap only, and repeat: the known pixels pull "
               "the code towards a digit that fits them.")
    common.explain("Error counts the missing pixels only. The baseline fills each missing pixel with its mean over the "
                   "training images.",
                   r"x^{(t+1)} = m \odot \hat{x}\big(x^{(t)}\big) + (1 - m) \odot x, \qquad "
                   r"\text{MSE}_{\text{missing}} = \frac{\sum m \,(x - x^{(t)})^2}{\sum m}")
    picked = app_shared.image_model()
    if picked is None:
        return
    _panel(*picked)


@st.fragment
def _panel(key: str, model) -> None:
    d = common.dataset(model.config.dataset)
    h, w = d.sample_shape[-2:]
    missing, iterations, idx = _controls(h, w, len(d.x_test))
    mean_image = d.x_train.numpy().mean(0)
    x = d.x_test.numpy()
    errors, changes = _test_set_curve(key, model, missing, iterations)
    states = imputation.impute(model, x[idx: idx + 1], missing, mean_image, iterations)[:, 0]
    mine = [float(imputation.missing_mse(x[idx: idx + 1], s[None], missing)[0]) for s in states]
    st.session_state["imp_result"] = {"test_mean_fill": errors[0], "test_autoencoder": errors[-1],
                                      "image_mean_fill": mine[0], "image_autoencoder": mine[-1], "curve": errors}
    c = st.columns(4)
    c[0].metric("test set · mean-image fill", f"{errors[0]:.4f}", help="MSE on the missing pixels of 1,000 test images.")
    c[1].metric(f"test set · autoencoder, {iterations} iterations", f"{errors[-1]:.4f}",
                f"{errors[-1] - errors[0]:+.4f}", delta_color="inverse")
    c[2].metric("this image · mean-image fill", f"{mine[0]:.4f}")
    c[3].metric("this image · autoencoder", f"{mine[-1]:.4f}", f"{mine[-1] - mine[0]:+.4f}", delta_color="inverse")
    shown = np.where(missing, MISSING_GREY, x[idx])
    app_shared.show_images([x[idx], shown, states[0], states[-1]],
                           ["original", "what the model sees (grey = missing)", "mean-image fill",
                            f"autoencoder after {iterations} iterations"], width=168)
    _iterations(states, iterations)
    _curves(errors, changes, mine)


def _controls(h: int, w: int, n: int) -> tuple[np.ndarray, int, int]:
    c = st.columns(4)
    kind = c[0].selectbox("Missing part", imputation.MASKS, key="imp_mask")
    rate, box = 0.5, (h // 4, w // 4, h // 2)
    if kind == "random pixels":
        rate = c[1].slider("Fraction missing", 0.05, 0.95, 0.5, 0.05, key="imp_rate")
    elif kind == "box":
        side = c[1].slider("Box side (pixels)", 1, h, h // 2, key="imp_side")
        top = c[1].slider("Box top row", 0, h - 1, h // 4, key="imp_top")
        left = c[1].slider("Box left column", 0, w - 1, w // 4, key="imp_left")
        box = (top, left, side)
    iterations = c[2].slider("Iterations", 0, 50, 10, key="imp_iters")
    idx = c[3].number_input("Test image", 0, n - 1, 0, key="imp_idx")
    return imputation.make_mask(h, w, kind, rate, box, seed=0), iterations, int(idx)


def _test_set_curve(key: str, model, missing, iterations: int) -> tuple[list[float], list[float]]:
    if key.startswith(common.SESSION):
        return _curve(model, missing, iterations)
    return _cached_curve(key, missing, iterations)


@st.cache_data(show_spinner="Filling the 1,000 test images…", max_entries=32)
def _cached_curve(key: str, missing, iterations: int):
    return _curve(common.pretrained_model(key), missing, iterations)


def _curve(model, missing, iterations: int) -> tuple[list[float], list[float]]:
    """Mean missing-pixel MSE over the test set after each iteration, and the mean change per iteration."""
    d = common.dataset(model.config.dataset)
    x = d.x_test.numpy()
    states = imputation.impute(model, x, missing, d.x_train.numpy().mean(0), iterations)
    errors = [float(imputation.missing_mse(x, s, missing).mean()) for s in states]
    changes = [float(imputation.missing_mse(a, b, missing).mean()) for a, b in zip(states[:-1], states[1:])]
    return errors, changes


def _iterations(states, iterations: int) -> None:
    steps = sorted({0, 1, 2, 3, 5, 10, 20, 30, 50} & set(range(iterations + 1)) | {iterations})
    app_shared.show_grid(states[steps], ncols=len(steps), width=900,
                         caption="The guess at iterations " + ", ".join(map(str, steps)))


def _curves(errors, changes, mine) -> None:
    t = np.arange(len(errors))
    left, right = st.columns(2)
    fig = plots.line_chart(t, {"test set (1,000 images)": errors, "this image": mine,
                               "mean-image fill (test set)": [errors[0]] * len(t)},
                           "iteration", "MSE on the missing pixels", "Error on the missing pixels")
    left.plotly_chart(fig, key="imp_err")
    if changes:
        fig = plots.line_chart(t[1:], {"test set": changes}, "iteration",
                               "mean squared change of the missing pixels", "Does it converge?")
        app_shared.powers_of_ten(fig)
        right.plotly_chart(fig, key="imp_change")
    best = int(np.argmin(errors))
    verdict = (f"On the test set the autoencoder's fill ends {'below' if errors[-1] < errors[0] else 'above'} the "
               f"mean-image baseline ({errors[-1]:.4f} vs {errors[0]:.4f}); its lowest error, {errors[best]:.4f}, "
               f"is at iteration {best}. ")
    common.explain(verdict + "Iteration 0 is the mean-image fill. When the change per iteration falls towards zero the "
                   "guess has settled on a fixed point of the autoencoder; the known pixels never change.")
