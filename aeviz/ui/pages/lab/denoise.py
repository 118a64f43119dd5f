"""Denoising tab: corrupt a digit (test set, upload or drawing), compare a denoiser, a vanilla AE and a filter."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from aeviz import images, plots
from aeviz.config import NOISES
from aeviz.data import corrupt
from aeviz.models import objective_class
from aeviz.ui import state
from aeviz.ui.components import latent
from aeviz.ui.pages import lab
from aeviz.ui.widgets import draw_digit, show_images
from aeviz.uses import regularizers as R

IMAGE_PX = 140  # each digit shown 5x, crisp
CURVE_IMAGES = 200  # test images behind the PSNR curve: smooth enough, a second or two per model
SOURCES = ("Test image", "Upload", "Draw")
FILTER_NAMES = {"median": "Median filter (3x3)", "gaussian": "Gaussian blur (σ = 1 px)"}
NOISE_NAMES = {"gaussian": "Gaussian (σ = level)", "salt-pepper": "Salt and pepper (fraction = level)",
               "masking": "Masking (fraction of pixels set to 0)"}
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]


def render(keys: list[str]) -> None:
    """The denoising tab."""
    state.explain("A denoising autoencoder sees a corrupted digit x̃ and is trained to give back the clean x, so it "
                   "must learn what digits look like rather than copy pixels. Compare it with a plain autoencoder of "
                   "the same size and a classical filter. PSNR (higher is better) and SSIM (1 = same structure) "
                   "measure each result against the clean digit.",
                   r"\mathcal{L} = \ell\big(x,\ g(f(\tilde x))\big),\ \ \tilde x \sim q(\tilde x \mid x)"
                   r"\qquad \mathrm{PSNR} = 10 \log_{10} \frac{1}{\mathrm{MSE}}\ \mathrm{dB}")
    c1, c2, c3 = st.columns(3)
    denoiser = lab.pick("Denoiser", keys, "lab_dn_model", ["dae-mlp-z16"], "denoising", container=c1,
                        help="An autoencoder trained on corrupted inputs (or any model, to see how it copes).")
    vanilla = lab.pick("Vanilla autoencoder", keys, "lab_dn_vanilla", ["ae-mlp-z16"], "vanilla", container=c2,
                       help="The same size of network trained on clean digits only.")
    filter_kind = c3.selectbox("Classical filter", list(FILTER_NAMES), format_func=FILTER_NAMES.get,
                               key="lab_dn_filter",
                               help="A fixed image filter from scipy, with no learning at all.")
    _workbench(denoiser, vanilla, filter_kind)


def _on_upload() -> None:
    """Convert an upload at once; a bad file leaves the last good digit in place and says why in one sentence."""
    upload = st.session_state.get("lab_dn_upload")
    st.session_state["lab_dn_upload_error"] = None
    if upload is None:
        return
    try:
        st.session_state["lab_dn_uploaded"] = images.from_bytes(upload.getvalue(), upload.name)
    except images.ImageError as err:
        st.session_state["lab_dn_upload_error"] = str(err)


def _clean_digit(source: str) -> tuple[np.ndarray, str]:
    """The clean digit (1, 28, 28) to corrupt and its caption, from the chosen source."""
    if "lab_dn_index" in st.session_state:  # keep the index while its input is hidden (other sources)
        st.session_state["lab_dn_index"] = st.session_state["lab_dn_index"]
    index = int(st.session_state.get("lab_dn_index", 0))
    fallback = lab.test_digits()[index], f"test image #{index}"
    if source == "Upload":
        st.file_uploader(f"A PNG or JPEG of one digit, any size or colour (at most {images.MAX_BYTES // 2**20} MB)",
                         type=UPLOAD_TYPES, key="lab_dn_upload", on_change=_on_upload)
        if st.session_state.get("lab_dn_upload_error"):
            st.error(st.session_state["lab_dn_upload_error"])
        if st.session_state.get("lab_dn_uploaded") is not None:
            return st.session_state["lab_dn_uploaded"][None], "your upload"
        st.caption("Until a picture is uploaded, the test image is shown.")
        return fallback
    if source == "Draw":
        digit = draw_digit("lab_dn_canvas")
        if digit is not None:
            return digit[None], "your drawing"
        st.caption("Until you draw, the test image is shown.")
        return fallback
    st.number_input("Test image #", 0, 999, key="lab_dn_index", help="One of the 1,000 held-out MNIST test digits.")
    index = int(st.session_state["lab_dn_index"])
    return lab.test_digits()[index], f"test image #{index}"


@st.fragment
def _workbench(denoiser: str, vanilla: str, filter_kind: str) -> None:
    """Source, noise and the aligned result columns; reruns alone when a control inside changes."""
    trained = state.config(denoiser)
    matched = objective_class(trained).corrupts_input
    c1, c2, c3, c4 = st.columns([3, 3, 4, 2])
    source = c1.segmented_control("Digit", SOURCES, key="lab_dn_source", default=SOURCES[0], required=True)
    noise = c2.selectbox("Noise", NOISES, format_func=NOISE_NAMES.get, key="lab_dn_noise",
                         index=NOISES.index(trained.noise) if matched else 0)
    start = min(1.0, round(trained.noise_level * 20) / 20) if matched else 0.5  # on the slider's 0.05 grid
    live = _live_models(denoiser, vanilla) if noise == "gaussian" else None
    if live is None:
        level = c3.slider("Noise level", 0.0, 1.0, start, 0.05, key="lab_dn_level",
                          help="σ of the Gaussian noise (then clipped to [0,1]), or the fraction of pixels hit.")
    else:
        c3.caption("Noise level σ: drag it below. The noisy digit and both autoencoders follow in your browser; "
                   "the scores are measured where you let go.")
    seed = c4.number_input("Noise seed", 0, 10_000, 0, key="lab_dn_seed", help="Same seed, same noise.")
    with st.columns([1, 2])[0]:
        x, caption = _clean_digit(source)
    if live is not None:
        level = _live(live, denoiser, vanilla, x, int(seed), start)
        st.caption(f"Measured at σ = {level:.2f}, where you let go: every result against the clean digit.")
    _columns(x, caption, denoiser, vanilla, filter_kind, noise, level, int(seed))
    _curve(denoiser, vanilla, filter_kind, noise, level)


def _live_models(denoiser: str, vanilla: str) -> list | None:
    """Both models with their encoders, as the browser runs them; None if the browser cannot run one of them."""
    webs = [latent.web_model(k, encoder=True) for k in (denoiser, vanilla)]
    return None if None in webs else webs


def _live(webs: list, denoiser: str, vanilla: str, x: np.ndarray, seed: int, start: float) -> float:
    """The σ slider: the browser corrupts x with data.corrupt's own gaussian draw for this seed and runs both models."""
    noise = torch.randn((1, *np.shape(x)), generator=torch.Generator().manual_seed(seed)).numpy()[0]
    return latent.denoise_live(webs, key="lab_dn_live", image=x, noise=noise, level=start, max_level=1.0,
                               titles=[f"Denoiser: {state.name(denoiser)}", f"Vanilla: {state.name(vanilla)}"],
                               image_size=112)


def _columns(x, caption, denoiser, vanilla, filter_kind, noise, level, seed) -> None:
    """Clean, noisy, denoiser, vanilla and filter side by side, each with its PSNR and SSIM."""
    x = np.asarray(x, np.float32)[None]
    x_noisy = corrupt(x, noise, level, seed)
    roles = {f"Denoiser: {state.name(denoiser)}": state.model(denoiser),
             f"Vanilla: {state.name(vanilla)}": state.model(vanilla)}
    results = R.outputs(roles, x_noisy, filter_kind)  # role names keep two columns even for one model picked twice
    scores = R.scores(x, results)
    base = scores["noisy input"][0]
    heads = {"noisy input": "Noisy x̃", f"{filter_kind} filter": FILTER_NAMES[filter_kind]}
    names = list(results)
    show_images([x[0], *(results[k][0] for k in names)], [f"Clean x: {caption}", *(heads.get(k, k) for k in names)],
                width=IMAGE_PX)
    cols = st.columns(5)  # the same grid as the images above, so each score sits under its picture
    cols[0].metric("PSNR", "reference", help="Every other column is measured against this clean digit.")
    cols[0].caption("SSIM 1 (itself)")
    for col, name in zip(cols[1:], names):
        psnr, ssim = scores[name]
        col.metric("PSNR", _db(psnr), None if name == "noisy input" or not np.isfinite(base) else
                   f"{psnr - base:+.1f} dB vs noisy", help="10 log10(1 / MSE) against the clean digit.")
        col.caption(f"SSIM {ssim:.3f}")


def _db(value: float) -> str:
    return "∞ dB (identical)" if not np.isfinite(value) else f"{value:.1f} dB"


def levels(noise: str) -> np.ndarray:
    """The noise levels of the PSNR curve (a fraction of 1 can hit every pixel, so masks stop short of it)."""
    return np.round(np.linspace(0.0, 1.0 if noise == "gaussian" else 0.9, 11 if noise == "gaussian" else 10), 2)


@st.cache_data(show_spinner="Measuring PSNR at every noise level…", max_entries=16)
def baseline_curves(noise: str, filter_kind: str) -> dict[str, list[float]]:
    """PSNR of the noisy input and of the filter over noise levels on the first CURVE_IMAGES test digits."""
    return _finite(R.psnr_curves({}, lab.test_digits(CURVE_IMAGES), noise, levels(noise), filter_kind))


@state.per_model(show_spinner="Measuring PSNR at every noise level…", max_entries=64)
def model_curve(model, noise: str) -> list[float]:
    """PSNR of one model over noise levels, on the same noisy draws as baseline_curves."""
    return _finite(R.psnr_curves({"m": model}, lab.test_digits(CURVE_IMAGES), noise, levels(noise)))["m"]


def psnr_curves(names: list[str], noise: str, filter_kind: str) -> dict[str, list[float]]:
    """Noisy input, each model (by name), then the filter."""
    base = baseline_curves(noise, filter_kind)
    return {"noisy input": base["noisy input"], **{state.name(k): model_curve(k, noise) for k in names},
            **{k: v for k, v in base.items() if k != "noisy input"}}


def _finite(curves: dict) -> dict[str, list[float]]:
    return {k: [v if np.isfinite(v) else None for v in c.tolist()] for k, c in curves.items()}


def _curve(denoiser: str, vanilla: str, filter_kind: str, noise: str, level: float) -> None:
    """PSNR against noise level for every method, with the denoiser's training level marked."""
    st.subheader("PSNR against noise level")
    names = [denoiser] if denoiser == vanilla else [denoiser, vanilla]
    curves = psnr_curves(names, noise, filter_kind)
    series = {{"noisy input": "noisy input (no denoising)"}.get(k, k): np.asarray(v, float) for k, v in curves.items()}
    fig = plots.line_chart(levels(noise), series, f"noise level ({NOISE_NAMES[noise]})",
                           "PSNR in dB (higher is better)")
    fig.add_vline(x=level, line=dict(color="gray", dash="dot"), annotation_text="your level")
    trained = state.config(denoiser)
    if objective_class(trained).corrupts_input and trained.noise == noise:
        fig.add_vline(x=trained.noise_level, line=dict(color="black", dash="dash"),
                      annotation_text="denoiser's training level", annotation_position="bottom right")
    st.plotly_chart(fig, key="lab_dn_curve")
    state.explain(f"Each point is the PSNR over the first {CURVE_IMAGES} test digits, all methods on the same noisy "
                   "draws. " + _training_note(denoiser, trained, noise))


def _training_note(name: str, c, noise: str) -> str:
    if not objective_class(c).corrupts_input:
        return f"{name} was not trained on noise, so there is no training level to mark."
    if c.noise != noise:
        return (f"{name} was trained on {c.noise} noise at level {c.noise_level:g}, not on {noise} noise: "
                "this is a type mismatch, so watch how much of its advantage survives.")
    return (f"{name} was trained at level {c.noise_level:g} (dashed line); away from it, on either side, "
            "see how its advantage over the vanilla model shrinks or grows.")

