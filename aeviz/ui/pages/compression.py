"""Compression: bytes per image against reconstruction error for autoencoder codes, PCA and JPEG."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from aeviz import plots
from aeviz.ui import state, widgets
from aeviz.uses import compression, sweep

DATASET = "mnist"
BITS = compression.BITS
BYTE_TICKS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 784)


def render() -> None:
    """Draw the page."""
    st.title("Compression")
    st.caption("An autoencoder is a learned compressor: the sender keeps only the code z, the receiver runs the "
               "decoder. Here each method's bytes per image (the rate) meet its reconstruction error (the distortion) "
               "on the 1,000 test digits. A raw digit is 784 bytes.")
    state.explain("Codes are stored as float32 (4 bytes a value) or quantised to 8 or 4 bits: each dimension is cut "
                   "into 256 or 16 even steps between its smallest and largest value on the training set. The decoder, the PCA "
                   "basis and JPEG's tables are shared once, not sent with each image; JPEG is shown both as a real "
                   "file (with its tables) and without them.",
                   r"\text{bytes per image} = \frac{k \times b}{8}, \qquad \text{PSNR} = 10 \log_{10} \frac{1}{\text{MSE}}")
    _applies()
    sizes = [k for k in sweep.LATENT_SIZES if state.sweep_model(k, DATASET, train=False)[0] is not None]
    points, recon = _all_points(sizes)
    table = pd.DataFrame(points)
    metric = st.radio("Error axis", ("PSNR", "MSE"), horizontal=True, key="comp_metric")
    st.plotly_chart(_figure(table, metric), key="comp_fig")
    sources = [f"z={k}: {state.sweep_model(k, DATASET, train=False)[1]}" for k in sizes]
    st.caption("Autoencoders: " + "; ".join(sources) + "." + (
        " Sizes without a model are left out: train them on the Feature extraction page."
        if len(sizes) < len(sweep.LATENT_SIZES) else ""))
    _side_by_side(table, recon, sizes)
    with st.expander("All rate–distortion points"):
        st.dataframe(table, hide_index=True, column_config={"mse": st.column_config.NumberColumn(format="%.5f"),
                                                            "psnr": st.column_config.NumberColumn(format="%.2f")})


def _applies() -> None:
    """One sentence when the sidebar's model is not an image model: compression is measured against JPEG."""
    r = state.current()
    if r is not None and len(state.config(r).input_shape) != 3:
        st.info(f"Compression applies to images only (the codes are measured against JPEG files), and the sidebar's "
                f"model {r.name} reads {state.config(r).dataset.removeprefix('user:')}, which is not images; the "
                "digits below show how it works.")


def _all_points(sizes) -> tuple[list[dict], dict]:
    points, recon = [], {}
    for k in sizes:
        r_k, _ = state.sweep_model(k, DATASET, train=False)
        p, r = _ae_points(r_k)
        points += p
        recon.update({("autoencoder", k, b): v for b, v in r.items()})
    for k in sweep.LATENT_SIZES:
        p, r = _pca_points(k)
        points += p
        recon.update({("PCA", k, b): v for b, v in r.items()})
    p, r = _jpeg_points()
    points += p
    recon.update({("JPEG", q): v for q, v in r.items()})
    return points, recon


@state.per_model(show_spinner="Encoding the test digits with the autoencoder…", max_entries=16)
def _ae_points(model):
    d = state.dataset(DATASET)
    return compression.autoencoder_points(model, d.x_train.numpy(), d.x_test.numpy(), BITS)


@st.cache_data(show_spinner=False)
def _pca_points(k: int):
    d = state.dataset(DATASET)
    return compression.pca_points(d.x_train.numpy(), d.x_test.numpy(), k, BITS)


@st.cache_data(show_spinner="Encoding 1,000 digits as JPEG at each quality…")
def _jpeg_points():
    return compression.jpeg_points(state.dataset(DATASET).x_test.numpy())


def _figure(table: pd.DataFrame, metric: str):
    y = metric.lower()
    series = {}
    for method in ("autoencoder", "PCA"):
        for b in BITS:
            g = table[(table["method"] == method) & (table["bits"] == b)].sort_values("bytes")
            label = f"{method}, {'float32' if b == compression.FLOAT_BITS else f'{b}-bit'} code"
            series[label] = (g["bytes"], g[y], [f"k={k}: {n:g} B, MSE {m:.4f}, {p:.1f} dB"
                                                for k, n, m, p in zip(g["k"], g["bytes"], g["mse"], g["psnr"])])
    jpeg = table[table["method"] == "JPEG"].sort_values("quality")
    hover = [f"quality {q:.0f}: {n:.0f} B, MSE {m:.4f}, {p:.1f} dB" for q, n, m, p in
             zip(jpeg["quality"], jpeg["bytes"], jpeg["mse"], jpeg["psnr"])]
    series["JPEG file (with tables)"] = (jpeg["bytes"], jpeg[y], hover)
    series["JPEG without tables"] = (jpeg["bytes_without_tables"], jpeg[y], hover)
    title = "Rate–distortion on 1,000 test digits" + (" (lower is better)" if y == "mse" else " (higher is better)")
    fig = plots.xy_series(series, "bytes per image (log scale)", "mean squared error (log scale)" if y == "mse"
                          else "PSNR (dB)", title, log_x=True, log_y=y == "mse", height=460)
    fig.update_xaxes(tickvals=BYTE_TICKS)
    for trace in fig.data:  # one colour per method, one dash per bit depth: the legend reads as a 3 x 3 grid
        method = trace.name.split(",")[0].split(" ")[0]
        trace.line.color = {"autoencoder": "#1f77b4", "PCA": "#ff7f0e"}.get(method, "#2ca02c")
        trace.marker.color = trace.line.color
        trace.line.dash = "dash" if "8-bit" in trace.name or "without" in trace.name else "dot" if "4-bit" in trace.name else "solid"
        trace.marker.size = 5
    fig.update_layout(legend_itemwidth=60)  # long enough a sample to tell solid, dashed and dotted apart
    return plots.powers_of_ten(fig) if y == "mse" else fig


@st.fragment
def _side_by_side(table: pd.DataFrame, recon: dict, sizes) -> None:
    st.subheader("The images at one rate")
    choices = [(k, b) for k in (sizes or sweep.LATENT_SIZES) for b in BITS]
    left, right = st.columns(2)
    k, b = left.selectbox("Code", choices, index=choices.index((8, 8)) if (8, 8) in choices else 0, key="comp_rate",
                          format_func=lambda kb: f"k={kb[0]}, {'float32' if kb[1] == 32 else f'{kb[1]}-bit'}: "
                                                 f"{compression.code_bytes(*kb):g} bytes")
    idx = right.slider("Test digit", 0, 999, 0, key="comp_idx")
    nbytes = compression.code_bytes(k, b)
    jpeg = compression.nearest_at_or_below(table[table["method"] == "JPEG"].to_dict("records"), nbytes, "bytes_without_tables")
    x = state.dataset(DATASET).x_test.numpy()[idx]
    images, captions = [x], ["original · 784 B"]
    for method in ("autoencoder", "PCA"):
        if (method, k, b) in recon:
            err = float(((recon[(method, k, b)][idx] - x) ** 2).mean())
            images.append(recon[(method, k, b)][idx])
            captions.append(f"{method} · {nbytes:g} B · MSE {err:.4f}")
    quality = int(jpeg["quality"])
    j = recon[("JPEG", quality)][idx]
    images.append(j)
    captions.append(f"JPEG q={quality} · {jpeg['bytes_without_tables']:.0f} B w/o tables "
                    f"({jpeg['bytes']:.0f} B file) · MSE {float(((j - x) ** 2).mean()):.4f}")
    widgets.show_images(images, captions, width=168)
    state.explain("JPEG is the closest quality whose stream without tables fits the same number of bytes "
                   "(or its smallest, when none fits). Byte counts are test-set means; each digit's own JPEG size varies.")
