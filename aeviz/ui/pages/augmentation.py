"""Data augmentation: new variants of an image from the code space, and whether they help a small classifier."""
from __future__ import annotations

import numpy as np
import streamlit as st

from aeviz import analysis
from aeviz.ui import state, widgets
from aeviz.uses import augmentation

MODES = {"posterior": "Sample the VAE posterior", "code": "Move the code by Gaussian noise"}
SEEDS = (0, 1, 2, 3, 4)


def render() -> None:
    """Draw the page."""
    st.title("Data augmentation")
    st.caption("A trained autoencoder knows what digits look like. Encode one image, nudge its code a little, decode: "
               "you get new images that resemble it. Below you can also measure whether such variants help a "
               "classifier that has only a few labelled images.")
    r = state.image_model()
    if r is None:
        return
    model = state.model(r)
    variational = model.has_prior
    if variational:
        mode = st.radio("How to make variants", list(MODES), format_func=MODES.get, horizontal=True, key="aug_mode")
    else:
        mode = "code"
        st.caption(f"The sidebar model '{r.name}' is a plain autoencoder, so its variants move the code; pick a VAE "
                   "(for example vae-mlp-z16) to sample its posterior instead.")
    state.explain(*_equation(mode))
    _variants(r, mode)
    _experiment(r, mode)


def _equation(mode: str) -> tuple[str, str]:
    if mode == "posterior":
        return ("The encoder gives a mean μ and a spread σ for each code dimension; each variant decodes one draw. "
                "The scale stretches σ: 0 gives the plain reconstruction.",
                r"z = \mu(x) + s \cdot \sigma(x) \odot \varepsilon, \quad \varepsilon \sim \mathcal{N}(0, I)")
    return ("Each variant decodes the code plus Gaussian noise; the noise of each dimension is measured in that "
            "dimension's spread over the training codes, so the scale means the same for every model.",
            r"z = \mathrm{enc}(x) + s \cdot \mathrm{std}_{\text{train}}(z) \odot \varepsilon, \quad \varepsilon \sim \mathcal{N}(0, I)")


@state.per_model
def _spread(model) -> np.ndarray:
    return augmentation.code_spread(model, state.dataset(model.config.dataset).x_train)


@st.fragment
def _variants(r: state.ModelRef, mode: str) -> None:
    model, spread = state.model(r), _spread(r)
    d = state.dataset(model.config.dataset)
    c = st.columns(4)
    idx = c[0].number_input("Test image", 0, len(d.x_test) - 1, 0, key="aug_idx")
    scale = c[1].slider("How far (scale s)", 0.0, 3.0, 0.5, 0.1, key="aug_scale")
    n = c[2].select_slider("Variants", (8, 16, 32, 64), 16, key="aug_n")
    seed = c[3].number_input("Seed", 0, 10_000, 0, key="aug_seed")
    x = d.x_test.numpy()[idx: idx + 1]
    out = augmentation.augment(model, x, n, scale, seed, spread, mode)
    left, right = st.columns([1.4, 4])
    with left:
        widgets.show_images([x[0], analysis.reconstruct(model, x)[0]], ["original", "decoded"], width=84)
    with right:
        widgets.show_grid(out, ncols=8, width=900,
                             caption=f"{n} variants at s = {scale:.1f}, mean change per pixel "
                                     f"{float(np.abs(out - x).mean()):.3f}")
    label = int(d.y_test[idx])
    name = f"{r.name}-test{idx}-s{scale:.1f}"
    a, b = st.columns(2)
    a.download_button("Download as .npz (x, y)", augmentation.to_npz(out, np.full(n, label)), f"{name}.npz",
                      "application/octet-stream", key="aug_npz")
    b.download_button("Download as a zip of PNGs", augmentation.to_png_zip(out, name), f"{name}.zip",
                      "application/zip", key="aug_zip")


@st.fragment
def _experiment(r: state.ModelRef, mode: str) -> None:
    st.subheader("Does it help a classifier with few labels?")
    state.explain("A logistic regression on raw pixels learns from a few labelled training images per digit, then "
                   "from the same images plus variants of each (labelled like their source). Both are scored on the "
                   f"1,000 test digits, for {len(SEEDS)} random draws of the few images. The autoencoder itself was "
                   "trained on all 4,000 training images without labels.")
    data = state.dataset(state.config(r).dataset)
    counts = np.unique(data.y_train.numpy(), return_counts=True)[1]
    sizes = tuple(k for k in (5, 10, 20, 50) if k <= counts.min())
    if len(data.label_names) < 2 or len(counts) < 2 or not sizes:
        why = ("no class labels" if len(data.label_names) < 2 or len(counts) < 2 else
               f"only {counts.min()} training images of one class")
        st.info(f"The classifier experiment needs two classes or more with at least 5 labelled training images each; "
                f"the data of {r.name} ({data.name.removeprefix('user:')}) have {why}, so only the variants above apply.")
        return
    if st.session_state.get("aug_pc") not in sizes:
        st.session_state.pop("aug_pc", None)
    c = st.columns(3)
    per_class = c[0].select_slider("Real images per digit", sizes, 10 if 10 in sizes else sizes[-1], key="aug_pc")
    n_aug = c[1].slider("Variants per real image", 1, 20, 5, key="aug_k")
    scale = c[2].slider("Scale s for the variants", 0.1, 3.0, 0.5, 0.1, key="aug_exp_scale")
    params = (r.id, mode, per_class, n_aug, scale)
    if st.button("Run the experiment", key="aug_run", help="Fits 10 logistic regressions: a few seconds."):
        st.session_state["aug_result"] = (params, _gain(r, mode, per_class, n_aug, scale))
    result = st.session_state.get("aug_result")
    if result and result[0] == params:
        _report(result[1], per_class, n_aug)


@state.per_model(show_spinner=f"Training the classifiers ({2 * len(SEEDS)} logistic regressions)…")
def _gain(model, mode, per_class, n_aug, scale):
    spread = augmentation.code_spread(model, state.dataset(model.config.dataset).x_train)
    return augmentation.few_shot_gain(model, state.dataset(model.config.dataset), per_class, n_aug, scale, SEEDS,
                                      spread, mode)


def _report(result: dict, per_class: int, n_aug: int) -> None:
    real, aug = np.array(result["real only"]), np.array(result["real + augmented"])
    gain = aug - real
    c = st.columns(3)
    c[0].metric(f"{per_class} real per digit", f"{real.mean():.1%} ± {real.std():.1%}")
    c[1].metric(f"+ {n_aug} variants each", f"{aug.mean():.1%} ± {aug.std():.1%}", f"{gain.mean() * 100:+.1f} points")
    c[2].metric("change (same draws)", f"{gain.mean() * 100:+.1f} ± {gain.std() * 100:.1f} points")
    st.dataframe({"seed": list(SEEDS), "real only": real, "real + augmented": aug, "change": gain}, hide_index=True)
    st.markdown(_verdict(gain))


def _verdict(gain: np.ndarray) -> str:
    mean, std, ups = gain.mean() * 100, gain.std() * 100, int((gain > 0).sum())
    if abs(mean) <= std or 0 < ups < len(gain):
        return (f"**No clear effect:** the change is {mean:+.1f} ± {std:.1f} points and it went up in {ups} of "
                f"{len(gain)} draws.")
    word = "helped" if mean > 0 else "hurt"
    return f"**Augmentation {word}:** {mean:+.1f} ± {std:.1f} points, in the same direction in all {len(gain)} draws."
