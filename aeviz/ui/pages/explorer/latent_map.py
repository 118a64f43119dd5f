"""The latent map: projections (precomputed or computed in the background), the decoded plane, the
VAE prior's contours, click-to-select, and the latent history recorded during training."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st

from aeviz import analysis, plots
from aeviz.data import Dataset
from aeviz.models import Autoencoder
from aeviz.ui import state, training
from aeviz.ui.components import charts
from aeviz.ui.pages.explorer import draw

PROJECTIONS = {"PCA": "pca", "UMAP": "umap", "t-SNE": "tsne"}
NAMES = {v: k for k, v in PROJECTIONS.items()}
PLANE_N = 15  # decoded images per side of the latent plane


@dataclass
class Ctx:
    """What every explorer view needs about the current model."""

    ref: state.ModelRef
    model: Autoencoder
    data: Dataset
    z: np.ndarray  # codes of the test set
    labels: np.ndarray

    @property
    def kind(self) -> str:
        """image, signal or points."""
        return draw.kind(self.data)

    @property
    def is_vae(self) -> bool:
        """The model has a prior to sample from."""
        return self.model.has_prior

    @property
    def key(self) -> str:
        """The model's id (widget keys carry it, so each model keeps its own slider positions)."""
        return self.ref.id

    @property
    def pretrained(self) -> bool:
        """A zoo model (shared, read-only)."""
        return self.ref.zoo


def views(ctx: Ctx) -> dict[str, np.ndarray]:
    """Precomputed views of the current model (pretrained only)."""
    return state.views(ctx.ref)


def span(xy: np.ndarray, vae: bool) -> tuple[np.ndarray, np.ndarray]:
    """A square box that holds nearly all points (and the prior's 2.5-sigma disc for a VAE), padded 5 %.

    Square, so that with equal axis scales the decoded images are not stretched and the prior's circles stay round.
    """
    lo, hi = np.percentile(xy, 0.5, axis=0), np.percentile(xy, 99.5, axis=0)
    if vae:
        lo, hi = np.minimum(lo, -2.5), np.maximum(hi, 2.5)
    half = 0.525 * float((hi - lo).max()) + 1e-6
    mid = (lo + hi) / 2
    return mid - half, mid + half


# --- projections for latents beyond 2-D: precomputed, or computed in a background thread ---------------

@state.per_model(max_entries=32)
def _projection(model: Autoencoder, method: str) -> np.ndarray:
    """A projection of a model's test codes (shared models: computed once for every session)."""
    return analysis.project(analysis.embed(model, state.dataset(model.config.dataset).x_test), method)


def projection(ctx: Ctx, method: str) -> np.ndarray | None:
    """2-D map of the codes by method; None while it is still being computed in the background."""
    if ctx.z.shape[1] <= 2:
        return analysis.map_2d(ctx.z)
    if method in views(ctx):
        return views(ctx)[method]
    if method == "pca":
        return _projection(ctx.ref, "pca")
    done = st.session_state.setdefault("ex_projections", {})
    k = (ctx.ref.digest, method)
    if k in done:
        return done[k]
    _background_projection(ctx, method, k)
    return None


def _background_projection(ctx: Ctx, method: str, k: tuple) -> None:
    """Start (once) a thread that computes the projection; a polling fragment shows progress."""
    jobs = st.session_state.setdefault("ex_projection_jobs", {})
    if k not in jobs:
        out: dict = {"started": time.perf_counter()}
        # a thread has no session: shared models go through the shared cache, a student's own is computed here
        fn = (lambda: _projection(ctx.ref, method)) if ctx.pretrained else (lambda: analysis.project(ctx.z, method))

        def run():
            try:
                out["xy"] = fn()
            except Exception as err:
                out["error"] = f"The {NAMES[method]} projection failed: {err}"
        threading.Thread(target=run, daemon=True, name=f"aeviz-{method}").start()
        jobs[k] = out
    st.fragment(_poll_projection, run_every=0.5)(k, method, len(ctx.z))


def _poll_projection(k: tuple, method: str, n: int) -> None:
    out = st.session_state["ex_projection_jobs"][k]
    if "xy" in out:
        st.session_state["ex_projections"][k] = out["xy"]
        st.rerun()
    if "error" in out:
        st.error(out["error"])
        return
    note = " (the first UMAP in this server compiles numba: up to a minute)" if method == "umap" else ""
    status = st.status(f"Computing the {NAMES[method]} map of {n:,} codes{note}…", state="running", expanded=True)
    status.write(f"{time.perf_counter() - out['started']:.0f} s so far; the rest of the page keeps working.")


# --- the map figure -------------------------------------------------------------------------------------

def shown_background(ctx: Ctx, background: str) -> str:
    """What the map can show beneath its points: the decoded plane for 2-D image codes, the prior for 2-D codes."""
    return background if ctx.z.shape[1] == 2 and (background != "decoded" or ctx.kind == "image") else "none"


def figure(ctx: Ctx, xy: np.ndarray, axis_titles, background: str, height: int = 640, selected: int | None = None):
    """The latent scatter with, for 2-D latents, the decoded plane or the prior's contours beneath it.

    It is built once per model and view (plotly's figure building and the plane's PNG cost tens of ms per run; with
    a class, every click and page switch paid it) and comes back as a dict. The selected sample is not drawn on it:
    the figure then stays the same from one selection to the next, and Streamlit hands the browser the same chart,
    which it keeps instead of drawing 10,000 points again (a changed figure is a new chart to the browser, built
    from scratch: a teacher's push made every student's browser do it). The latent pad beside it shows the
    selected code. Where no pad shares the map's axes (longer codes drawn by a projection, or a model the browser
    cannot run), pass `selected`: the map marks that sample itself, or a student would not see which point they
    picked."""
    background = shown_background(ctx, background)

    def make() -> dict:
        lo, hi = span(ctx.z, ctx.is_vae) if ctx.z.shape[1] == 2 else (None, None)
        return _map_spec(ctx.ref, np.asarray(xy), np.asarray(ctx.labels), tuple(ctx.data.label_names or ()),
                         tuple(axis_titles), background,
                         None if lo is None else (tuple(map(float, lo)), tuple(map(float, hi))), height)

    # the axis titles name the projection (xy): kept per model and view, not hashed from xy on every run
    spec = state.memo(ctx.ref, ("map", tuple(axis_titles), background, height), make)
    if selected is not None:  # no pad on these axes to show it: the map marks it (and becomes a new chart)
        spec = {**spec, "data": [*spec["data"], plots.marker(xy[selected], f"selected #{selected}")]}
    return plots.checked(spec)


@state.per_model(max_entries=64, copy=False)
def _map_spec(model: Autoencoder, xy: np.ndarray, labels: np.ndarray, label_names: tuple, axis_titles: tuple,
              background: str, box: tuple | None, height: int) -> dict:
    """The map as a figure dict (written as a dict: built as plotly objects, it cost ~100 ms on a model's first
    visit; tests/ui/test_explorer.py checks plotly takes it back unchanged)."""
    spec = plots.latent_scatter_spec(xy, labels, label_names, axis_titles=axis_titles, height=height)
    layout = spec["layout"]
    if box is not None:  # the span fixes the axes (the latent pad beside the map uses the same ones)
        lo, hi = box
        if background == "decoded":
            layout["images"] = [plots.image_layer(decoded_plane(model, lo, hi, PLANE_N), lo, hi)]
        elif background == "prior":
            spec["data"].insert(0, plots.prior_contours(lo, hi))
        layout["xaxis"].update(range=[lo[0], hi[0]], constrain="domain")
        layout["yaxis"].update(range=[lo[1], hi[1]], scaleanchor="x", scaleratio=1, constrain="domain")
    # a click selects a point (the page reads it); plotly's own highlight of it would outlive the next selection
    # made elsewhere (the number box, a link, the teacher), so selected and unselected points look the same
    for trace in spec["data"]:
        if trace["type"] in ("scatter", "scattergl") and trace.get("mode") == "markers":
            trace.update(selected={"marker": {"opacity": 0.75}}, unselected={"marker": {"opacity": 0.75}})
    # datarevision: plotly.js then trusts that the data arrays did not change when the page hands it the same chart
    # again (the chart is a new one whenever the figure changes); uirevision keeps the student's zoom and pan
    layout["legend"].update(orientation="h", y=1.02, yanchor="bottom")
    layout.update(dragmode="pan", clickmode="event+select", datarevision=0, uirevision="map")
    return spec


def decoded_plane(model: Autoencoder, lo: tuple, hi: tuple, n: int) -> np.ndarray:
    """The images decoded on an n x n grid over [lo, hi], tiled edge to edge (top row = highest z2)."""
    x_hat = analysis.decode(model, analysis.latent_grid(tuple(lo), tuple(hi), n))
    return plots.tile(plots.as_images(x_hat.reshape(len(x_hat), *x_hat.shape[-2:])), n, pad=0)


def on_canvas(ctx: Ctx) -> bool:
    """Whether the map is drawn by the browser's canvas (charts.latent_map): points coloured by class, or all in
    one colour. A continuous colour (the position along a generated sheet) stays with plotly and its colour bar."""
    return bool(ctx.data.label_names) or (len(ctx.labels) > 0 and np.ptp(ctx.labels) == 0)


def show(ctx: Ctx, xy: np.ndarray, axis_titles, background: str, selected: int, key: str = "ex_map",
         frozen: bool = False) -> None:
    """The latent map on a canvas (see on_canvas), over the decoded plane or the prior, the selected sample ringed.
    A click selects a point: read it with clicked(key) before the page uses the selection."""
    background = shown_background(ctx, background)
    # kept per model and view, as figure() is: a rerun neither takes percentiles of the codes nor looks up the plane
    lo, hi, image = state.memo(ctx.ref, ("canvas map", tuple(axis_titles), background),
                               lambda: canvas_box(ctx, xy, background))
    charts.latent_map(key=key, xy=xy, labels=ctx.labels, label_names=tuple(ctx.data.label_names or ()),
                      x_range=(lo[0], hi[0]), y_range=(lo[1], hi[1]), titles=axis_titles, image=image,
                      prior=background == "prior", ring=selected, height=640, frozen=frozen)


def canvas_box(ctx: Ctx, xy: np.ndarray, background: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(lo, hi, plane) of the canvas map: its square box (the latent pad's for 2-D codes, the projection's
    otherwise) and the decoded plane's data: URL where it shows one (background as shown_background gives it)."""
    lo, hi = span(ctx.z, ctx.is_vae) if ctx.z.shape[1] == 2 else span(xy, False)
    return lo, hi, plane_url(ctx.ref, tuple(lo), tuple(hi)) if background == "decoded" else None


@state.per_model(max_entries=64, copy=False)
def plane_url(model: Autoencoder, lo: tuple, hi: tuple) -> str:
    """The decoded plane over [lo, hi] as a PNG data: URL (dark on white), made once per model and box."""
    return plots.image_layer(decoded_plane(model, lo, hi, PLANE_N), lo, hi)["source"]


def clicked(key: str) -> int | None:
    """The test index of the point a click on the map with this key selected, if that click is new: the canvas
    map's state ({"selected": {"i", "n"}}) or plotly's selection (the map of a continuous colour)."""
    value = st.session_state.get(key) or {}
    if isinstance(value.get(charts.SELECTED), dict):
        return charts.new_click(key, value[charts.SELECTED])
    points = value.get("selection", {}).get("points", [])
    idx = next((p.get("customdata") for p in points if isinstance(p.get("customdata"), (int, float))), None)
    if idx is None:
        return None
    seen = st.session_state.get(f"{key}::seen")
    st.session_state[f"{key}::seen"] = idx
    return None if seen == idx else int(idx)


# --- the latent history --------------------------------------------------------------------------------

def history(ctx: Ctx) -> tuple[list[int], np.ndarray] | None:
    """(epochs, K x N x 2 maps) of the latent space during training, from the zoo or this session."""
    v = views(ctx)
    if "snapshots" in v:
        return [int(e) for e in v.get("snapshot_epochs", np.arange(len(v["snapshots"])))], v["snapshots"]
    return training.snapshots(ctx.ref)


def render_history(ctx: Ctx) -> None:
    """Scrub through the epochs and watch the clusters form."""
    state.explain("Each frame is the test set's latent map saved while the model trained. Early on every digit "
                   "sits in one blob; the reconstruction loss slowly pulls the classes apart, even though the "
                   "model never saw a label. Axes rescale to each frame; beyond 2-D latents the frames are PCA maps.")
    hist = history(ctx)
    if hist is None:
        st.info("This model has no recorded latent history: train one on this page (the snapshots are kept "
                "in your session) or pick a 2-D zoo model such as ae-mlp-z2.")
        return
    st.fragment(_history_frame)(ctx, *hist)


def _history_frame(ctx: Ctx, epochs: list[int], snaps: np.ndarray) -> None:
    if len(epochs) == 1:  # nothing to scrub
        epoch = epochs[0]
    else:
        epoch = st.select_slider("Epoch", options=epochs, value=epochs[-1], key=f"ex_hist::{ctx.key}",
                                 help="0 is the untrained network.")
    k = epochs.index(epoch)
    titles = ("z₁", "z₂") if ctx.z.shape[1] == 2 else ("principal component 1", "principal component 2")
    fig = plots.latent_scatter(snaps[k], ctx.labels[: snaps.shape[1]], ctx.data.label_names, axis_titles=titles,
                               title=f"Latent map after epoch {epoch}" if epoch else "Latent map before training",
                               height=460)
    st.plotly_chart(fig, key="ex_hist_map")
