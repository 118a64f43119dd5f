"""The Explorer: pick, upload or train a model; see its latent map; select, slide, interpolate, sample."""
from __future__ import annotations

import importlib
import logging
import re
import sys
import threading
import time

import numpy as np
import streamlit as st

import aeviz
from aeviz import config, data, io, workspace
from aeviz.data import DatasetUnavailable
from aeviz.ui import classroom, state, training, widgets
from aeviz.ui.components import latent
from aeviz.ui.pages.explorer import generate, latent_map, link, views, yourdata
from aeviz.ui.pages.explorer.latent_map import PROJECTIONS, Ctx

VIEWS = ("Reconstructions", "Traversal", "Interpolation", "Sampling (VAE)", "Latent history")
BACKGROUNDS = {"decoded images": "decoded", "prior density": "prior", "nothing": "none"}
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0, 10.0)
CHOOSER = "ex_chooser"  # the chooser's open state
FORM = re.compile(r"ex_t_[a-z]+|ex_data_(ignore|label|missing|side|stride|what|window)::[0-9a-f]+")  # kept closed


def render() -> None:
    """Draw the page."""
    st.title("Explorer")
    st.caption("An autoencoder squeezes each input through a small code z and rebuilds it. Here you see where "
               "every test sample lands in that code space, and what the decoder makes of any point in it.")
    chooser = st.container()  # filled last: the map is what a class waits for, the chooser can follow
    shared = classroom.shared_dataset()  # read from the room store once per run: the header and two tabs show it
    key = state.current_id()
    if key is None:
        with chooser:
            _chooser(shared)
        st.info("There is no model yet: train one above.")
        return
    try:
        ctx = _context(key)
    except DatasetUnavailable as err:
        st.error(str(err))
        with chooser:
            _chooser(shared)
        return
    _header(ctx, shared)
    link.load(ctx, views.code_range(ctx))
    idx = _selection(ctx)
    left, right = st.columns([3, 2], gap="large")
    with left:
        _map(ctx, idx)
    with right:
        st.subheader("Selected sample")
        views.selected_panel(ctx, idx)
        views.render_sliders(ctx, idx)
    _views(ctx, idx)
    link.save(ctx, idx)
    with chooser:
        _chooser(shared)
    warm_zoo()  # once per server: the other zoo models' first visits


def _context(model_id: str) -> Ctx:
    r = state.ref(model_id)
    model = state.model(r)
    d = state.dataset(model.config.dataset)
    return Ctx(r, model, d, state.codes(r), d.y_test.numpy())


def _header(ctx: Ctx, shared: classroom.RoomDataset | None) -> None:
    c = ctx.model.config
    metrics = getattr(ctx.model, "metrics", {}) or {}
    where = "trained or uploaded in this session" if not ctx.pretrained else "from the pretrained zoo"
    shown = classroom.data_label(c.dataset, shared)
    st.markdown(f"#### `{ctx.ref.name}` · {c.objective} objective, {c.arch} nets, "
                f"{classroom.plain(shown)} data · {where}")
    mse, ratio, nelbo = metrics.get("test_mse"), metrics.get("mse_ratio"), metrics.get("nelbo")
    with st.container(horizontal=True):  # a row of one block (five columns were ten messages on every run)
        st.metric("latent size", c.latent_dim)
        st.metric("parameters", f"{ctx.model.n_params:,}")
        st.metric("test MSE", f"{mse:.4f}" if mse is not None else "—",
                  help="Mean squared error per value on the held-out test samples.")
        st.metric("MSE ÷ PCA's", f"{ratio:.2f}" if ratio is not None else "—",
                  help="Test MSE divided by that of PCA with as many components: below 1 beats the linear baseline.")
        st.metric("−ELBO (nats)", f"{nelbo:.1f}" if nelbo is not None else "—",
                  help="Variational models only: the negative evidence lower bound per test sample.")
    _take_home(ctx)


def _take_home(ctx: Ctx) -> None:
    """The model's file and a notebook that trains it again, side by side."""
    if ctx.pretrained:
        path = state.cards()[ctx.ref.id].path
        checkpoint, data = path.name, path.read_bytes
    else:
        m = ctx.model
        checkpoint, data = f"{ctx.ref.name}.safetensors", lambda: io.to_bytes(m, m.metrics, m.history)
    with st.container(horizontal=True):
        st.download_button("Download the model (.safetensors)", key="ex_download", icon=":material/download:",
                           data=data, file_name=workspace.sanitize(checkpoint, ".safetensors") + ".safetensors",
                           mime="application/octet-stream",
                           help="The weights, config and metrics in one file: the sidebar's upload box loads it again.")
        training.notebook_button(ctx.model, checkpoint, key="ex_notebook")


# --- choosing a model ----------------------------------------------------------------------------------

def _chooser(shared: classroom.RoomDataset | None) -> None:
    """shared: the room's dataset (classroom.shared_dataset()), or None.

    Its content runs only while it is open (or a training in it runs, so that its progress keeps coming): closed, as
    it is on every student's page most of the time, it cost a fifth of every Explorer run (the zoo table, the
    training form, the Your data tab). The form's choices are kept while it is closed (FORM)."""
    busy = any(j is not None and j.running for j in (training.job("ex_train"), training.job(yourdata.TRAIN_KEY)))
    with widgets.lazy_expander("Choose a model: the pretrained zoo, your own training run, or an upload", CHOOSER,
                               FORM, expanded=not state.ids(), busy=busy) as box:
        if box is None:
            return
        zoo, train, mine, upload = st.tabs(["Pretrained zoo", "Train your own", "Your data", "Upload a checkpoint"])
        with zoo:
            _zoo()
        with train:
            _train_form(shared)
        with mine:
            yourdata.render(shared)
        with upload:
            st.markdown("Use **Upload a checkpoint** in the sidebar: an aeviz `.safetensors` file (for example one "
                        "you downloaded after training here). A wrong or broken file gets one sentence and the "
                        "current model stays.")


def _zoo() -> None:
    cards = state.cards()
    if not cards:
        st.info("The pretrained zoo is empty on this server: train a model in the next tab.")
        return
    rows = sorted(cards.values(), key=lambda c: (config.OBJECTIVES.index(c.config.objective), c.name))
    st.caption("Grouped by variant. Click a row to explore that model. 'MSE ÷ PCA's' compares the test error with "
               "PCA using as many components as the latent size: below 1 means the network beats the linear baseline.")
    number = st.column_config.NumberColumn
    st.dataframe(_zoo_table(tuple(c.name for c in rows)), hide_index=True, on_select=_on_zoo_pick,
                 selection_mode="single-row", key="ex_zoo", height=35 * (len(rows) + 1) + 3,
                 column_config={"parameters": number(format="localized"), "test MSE": number(format="%.4f"),
                                "MSE ÷ PCA's": number(format="%.2f"), "−ELBO": number(format="%.1f"),
                                "train s": number(format="%.1f")})
    st.session_state["ex_zoo_names"] = [c.name for c in rows]


@st.cache_resource(max_entries=4)
def _zoo_table(names: tuple[str, ...]):
    """The zoo's cards as one Arrow table, built once per server (st.dataframe then only serialises it)."""
    import pyarrow as pa

    cards = state.cards()
    rows = [cards[n] for n in names]
    return pa.table({
        "variant": [c.config.objective for c in rows], "model": [c.name for c in rows],
        "architecture": [c.config.arch for c in rows], "latent": [c.config.latent_dim for c in rows],
        "dataset": [c.config.dataset for c in rows], "parameters": [c.metrics.get("params") for c in rows],
        "test MSE": [c.metrics.get("test_mse") for c in rows], "MSE ÷ PCA's": [c.metrics.get("mse_ratio") for c in rows],
        "−ELBO": [c.metrics.get("nelbo") for c in rows], "epochs": [c.metrics.get("epochs") for c in rows],
        "train s": [c.metrics.get("train_seconds") for c in rows]})


def _on_zoo_pick() -> None:
    rows = st.session_state["ex_zoo"]["selection"]["rows"]
    names = st.session_state.get("ex_zoo_names", [])
    if rows and rows[0] < len(names):
        state.select(names[rows[0]])


def _train_form(shared: classroom.RoomDataset | None) -> None:
    st.caption("The defaults (an MLP with a 2-D code, 10 epochs) train in well under a minute. Training runs in "
               "the background: keep exploring, and press Stop at any time to keep the weights so far.")
    shared = _class_dataset(shared)
    room = [shared.name] if shared is not None else []
    offline = room + [n for n, e in data.REGISTRY.items() if e.offline] + [n for n in yourdata.names() if n not in room]
    c = st.columns(4)
    if st.session_state.get("ex_t_data") not in offline:
        st.session_state.pop("ex_t_data", None)
    picked = st.session_state.get("ex_t_data", offline[0])
    dataset = c[0].selectbox("Dataset", offline, key="ex_t_data", format_func=lambda n: classroom.data_label(n, shared),
                             help=data.REGISTRY[picked].description if picked in data.REGISTRY else
                             classroom.dataset_sentence(shared) if picked in room else state.dataset(picked).description)
    objective = c[1].selectbox("Objective", config.OBJECTIVES, key="ex_t_obj")
    arch = c[2].selectbox("Architecture", config.ARCHS, key="ex_t_arch",
                          help="mlp for anything; conv for images; rnn reads rows or time steps as a sequence.")
    latent = c[3].number_input("Latent size", 1, 128, 2, key="ex_t_latent", help="2 lets you see the code directly.")
    c = st.columns(4)
    epochs = c[0].number_input("Epochs", 1, 500, 10, key="ex_t_epochs")
    lr = c[1].select_slider("Learning rate", LEARNING_RATES, 1e-3, key="ex_t_lr", format_func=lambda v: f"{v:g}")
    batch = c[2].select_slider("Batch size", (16, 32, 64, 128, 256, 512), 128, key="ex_t_batch")
    seed = c[3].number_input("Seed", 0, 10_000, 0, key="ex_t_seed")
    knobs = _objective_knobs(objective)
    try:
        mc = aeviz.config_for(dataset, objective=objective, arch=arch, latent_dim=int(latent), **knobs)
        tc = aeviz.TrainConfig(epochs=int(epochs), batch_size=int(batch), lr=float(lr), seed=int(seed))
    except (aeviz.ConfigError, aeviz.DatasetUnavailable) as err:
        st.error(str(err))
        return
    if dataset in room and not yourdata.register_on_start("ex_train", state.dataset(dataset)):
        return  # kept with the student's models, it outlives the room; it could not be stored: one sentence
    training.train_with_progress(mc, tc, key="ex_train", name=f"{objective}-{arch}-z{latent}-{dataset}")


def _class_dataset(shared: classroom.RoomDataset | None) -> classroom.RoomDataset | None:
    """The dataset the teacher shared with this student's room (`shared`), made loadable by name here (the training
    worker loads it so); None outside a room, when none is shared, or with one sentence when it cannot be read."""
    if shared is None:
        return None
    try:
        state.dataset(shared.name)
    except DatasetUnavailable as err:
        st.warning(str(err))
        return None
    return shared


def _objective_knobs(objective: str) -> dict:
    """The chosen objective's own hyper-parameters (the others keep their defaults)."""
    c = st.columns(3)
    if objective == "variational":
        return {"beta": c[0].slider("β (weight of the KL term)", 0.0, 10.0, 1.0, 0.1, key="ex_t_beta")}
    if objective == "denoising":
        return {"noise": c[0].selectbox("Noise", config.NOISES, key="ex_t_noise"),
                "noise_level": c[1].slider("Noise level", 0.0, 1.0, 0.5, 0.05, key="ex_t_level",
                                           help="σ for gaussian noise, the fraction of values hit otherwise.")}
    if objective == "sparse":
        kind = c[0].selectbox("Penalty", config.SPARSITIES, key="ex_t_sparsity",
                              help="l1 pushes codes to exactly zero; kl pushes each unit's mean activation to ρ.")
        knobs = {"sparsity": kind, "sparsity_weight": c[1].select_slider(
            "Sparsity weight", (1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0), 1e-3, key="ex_t_sw", format_func=lambda v: f"{v:g}")}
        if kind == "kl":
            knobs["sparsity_target"] = c[2].slider("Target activation ρ", 0.01, 0.5, 0.05, 0.01, key="ex_t_rho")
        return knobs
    if objective == "contractive":
        return {"contractive_weight": c[0].select_slider(
            "Contractive weight λ", (1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0), 1e-3, key="ex_t_cw", format_func=lambda v: f"{v:g}")}
    return {}


# --- the map and the selection -------------------------------------------------------------------------

def _selection(ctx: Ctx) -> int:
    """The selected test index: a click on the map wins, then the index box (both stay in sync)."""
    n = len(ctx.z)
    clicked = latent_map.clicked("ex_map")
    if clicked is not None:
        st.session_state["ex_idx"] = clicked
    st.session_state["ex_idx"] = int(np.clip(st.session_state.get("ex_idx", 0), 0, n - 1))
    return st.session_state["ex_idx"]


def _map(ctx: Ctx, idx: int) -> None:
    st.subheader("Latent map")
    two_d = ctx.z.shape[1] <= 2
    c1, c2 = st.columns([3, 2])
    if two_d:
        options = _backgrounds(ctx)
        background = BACKGROUNDS[c1.radio("Beneath the points", options, horizontal=True, key="ex_bg",
                                          disabled=state.frozen(),
                                          help="The decoded plane shows what the decoder draws at every point; "
                                               "the prior is where a VAE expects its codes.")]
        method, titles = "z", ("z₁", "z₂")
    else:
        label = c1.radio("Projection of the codes", list(PROJECTIONS), horizontal=True, key="ex_proj",
                         disabled=state.frozen(),
                         help="PCA is linear and instant; UMAP and t-SNE keep neighbours together but take seconds.")
        (method, titles), background = _projected(label), "none"
    c2.number_input("Selected test sample #", 0, len(ctx.z) - 1, key="ex_idx", disabled=state.frozen(),
                    help="Or click a point on the map.")
    xy = latent_map.projection(ctx, method)
    if xy is None:
        return
    if latent_map.on_canvas(ctx):
        latent_map.show(ctx, xy, titles, background, idx, frozen=state.frozen())
    else:
        fig = latent_map.figure(ctx, xy, titles, background, selected=None if _pad_marks(ctx) else idx)
        st.plotly_chart(fig, on_select="ignore" if state.frozen() else "rerun", selection_mode="points",
                        key="ex_map", config={"scrollZoom": True})
    _map_note(ctx, two_d, background)


def _projected(label: str) -> tuple[str, tuple[str, str]]:
    """(method, axis titles) of a map of longer codes drawn by the projection with this label."""
    return PROJECTIONS[label], (f"{label} 1", f"{label} 2")


def _backgrounds(ctx: Ctx) -> list[str]:
    """What a 2-D map can show beneath its points, the default first."""
    return list(BACKGROUNDS) if ctx.kind == "image" else ["nothing", "prior density"]


def _pad_marks(ctx: Ctx) -> bool:
    """Whether a latent pad beside the map shows the selected code (else the map marks it itself)."""
    return ctx.z.shape[1] <= 2 and ctx.kind != "points" and latent.web_model(ctx.ref) is not None


def warm(model_id: str) -> None:
    """Compute, for every session, what the first visit of a shared model's Explorer needs with its default
    settings: the map (with its decoded plane), the reconstruction pairs and their histogram, the weights for the
    browser. No widget is drawn and no session is touched (warm_zoo runs it in a thread of its own)."""
    ctx = _context(model_id)
    if ctx.z.shape[1] <= 2:
        xy, titles, background = latent_map.projection(ctx, "z"), ("z₁", "z₂"), BACKGROUNDS[_backgrounds(ctx)[0]]
    else:
        method, titles = _projected(next(iter(PROJECTIONS)))  # the radio's default
        xy, background = latent_map.projection(ctx, method), "none"
    if xy is not None and latent_map.on_canvas(ctx):
        latent_map.canvas_box(ctx, xy, latent_map.shown_background(ctx, background))  # the plane, made once
    elif xy is not None:
        latent_map.figure(ctx, xy, titles, background)  # the cached map; a selection mark is added per run
    if ctx.kind != "points":
        latent.web_model(ctx.ref)
    views.code_range(ctx)
    views.warm_reconstructions(ctx)


_WARMING = threading.Lock()
WARM_THREAD = "aeviz-warm-zoo"
_warmed: list[str] = []


def warm_zoo() -> bool:
    """Warm (warm()) every zoo model in a background thread, once per server: a class's model switches then find
    their maps and pictures made (a first visit cost its student ~50 ms of the server's CPU, and each replica pays
    it for each model). Started by the first Explorer run; whether this call started it."""
    if not _WARMING.acquire(blocking=False):
        return False
    names = list(state.cards())

    def run() -> None:
        t = time.perf_counter()
        for name in names:
            try:
                warm(name)
                _warmed.append(name)
            except Exception as err:  # a model that cannot be warmed is computed on its first visit, as before
                print(f"aeviz: could not prepare {name} in advance ({type(err).__name__}: {err})", file=sys.stderr)
        print(f"aeviz: prepared {len(_warmed)} zoo models for the Explorer in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
        t = time.perf_counter()
        try:  # then Compare's presets (imported here, not with the Explorer: the first screen does not need it)
            done = importlib.import_module("aeviz.ui.pages.compare").warm_presets()
            print(f"aeviz: prepared {len(done)} Compare presets in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        except Exception as err:  # computed on their first visits, as before
            print(f"aeviz: could not prepare Compare's presets in advance ({type(err).__name__}: {err})",
                  file=sys.stderr)

    # the thread belongs to no session; Streamlit would log that once for every cached call it makes
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: record.threadName != WARM_THREAD)
    # not a daemon: the interpreter waits for it (half a second) at exit, where a daemon thread still inside torch
    # aborted the process ("terminate called without an active exception") instead of exiting 0
    threading.Thread(target=run, name=WARM_THREAD, daemon=False).start()
    return True


def _map_note(ctx: Ctx, two_d: bool, background: str) -> None:
    coloured = _colour(ctx)
    how = _map_how(ctx)
    if not two_d:
        state.explain(f"The {ctx.z.shape[1]}-dimensional codes are drawn in 2-D by a projection; nearby points "
                       f"have similar codes. The decoded plane needs a 2-D latent. {how}")
    elif background == "decoded":
        state.explain(f"Each test sample sits at its code z = (z₁, z₂), {coloured}. Beneath: the image the decoder "
                       "draws at each point of a 15 × 15 grid, aligned with the axes. The latent pad beside the "
                       f"map, on the same axes, starts at the selected sample's code. {how}")
    elif background == "prior":
        state.explain(f"Each test sample sits at its code, {coloured}. The blue shading and circles (1, 2 and 3 σ) "
                       "are the standard normal prior a VAE is trained to fill; a plain autoencoder leaves holes in "
                       f"it, and decoding a code from a hole gives nonsense. {how}", r"p(z) = \mathcal{N}(0, I)")
    else:
        state.explain(f"Each test sample sits at its code z = (z₁, z₂), {coloured}. The latent pad beside the map, "
                       f"on the same axes, starts at the selected sample's code. {how}")


def _map_how(ctx: Ctx) -> str:
    """How the map answers the pointer, in a sentence or two."""
    if not latent_map.on_canvas(ctx):
        return "Click a point to select it (the black cross where no latent pad shares the axes)."
    pick = ("The teacher leads: the ringed point is their selection." if state.frozen() else
            "Click a point to select it (it is ringed).")
    legend = " A legend entry hides or shows its class." if ctx.data.label_names else ""
    return f"{pick} Drag to pan, scroll to zoom, double-click empty space to see it all again.{legend}"


def _colour(ctx: Ctx) -> str:
    """What the map's colour means, in a few words."""
    if ctx.data.label_names:
        return "coloured by its class (the model never saw the labels)"
    pre = ctx.data.extras.get("preprocessing")
    if not pre:
        return "coloured by its position along the sheet"
    if str((pre.get("split") or {}).get("how", "")).startswith("time"):
        return "coloured by the step where its window starts"
    title = (pre.get("label") or {}).get("title")
    return f"coloured by its {title}" if title else "in one colour (the data have no labels)"


def _views(ctx: Ctx, idx: int) -> None:
    renderers = (lambda: views.render_reconstructions(ctx), lambda: views.render_traversal(ctx, idx),
                 lambda: generate.render_interpolation(ctx, idx), lambda: generate.render_sampling(ctx, idx),
                 lambda: latent_map.render_history(ctx))
    draws = dict(zip(VIEWS, renderers))
    ss = st.session_state
    current = ss.get(link.TAB_KEY) if ss.get(link.TAB_KEY) in VIEWS else VIEWS[0]
    # Frozen, the bar holds the teacher's tab only (tabs cannot be disabled). Its labels are part of the widget's
    # identity, so the open tab is handed over by its key whenever the bar changes.
    labels = [current] if state.frozen() else list(VIEWS)
    ss[link.TAB_KEY] = current
    for tab, label in zip(st.tabs(labels, key=link.TAB_KEY, on_change="rerun"), labels):
        if tab.open:  # only the open tab runs: the others cost nothing
            with tab:
                draws[label]()
