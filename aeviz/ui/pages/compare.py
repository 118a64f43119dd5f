"""Compare variants: 2 to 4 models on the same images and noise, linked latent maps, and a link that shares it all."""
from __future__ import annotations

import functools
from dataclasses import replace
from urllib.parse import urlencode, urlsplit

import numpy as np
import pandas as pd
import streamlit as st
from streamlit import config as st_config
from streamlit import net_util

from aeviz import analysis, plots, zoo
from aeviz.config import NOISES
from aeviz.data import corrupt
from aeviz.ui import state as ui
from aeviz.ui import widgets
from aeviz.ui.components import latent
from aeviz.ui.pages.explorer.latent_map import span
from aeviz.uses import compare

N_IMAGES = 6  # test images in the reconstruction columns
N_SAMPLES = 10  # prior samples per VAE
PAD_CODES = 1500  # test codes drawn on a latent pad for orientation
MAX_SLIDERS = 8  # latent sliders shown for codes with more dimensions
CUSTOM = "Custom comparison"
ZOOM = 4  # pixels per image pixel: browsers blur small images when they scale them up
W = {"models": "cmp_models", "noise": "cmp_noise", "level": "cmp_level", "seed": "cmp_seed",
     "steps": "cmp_steps", "interp": "cmp_interp", "cls": "cmp_cls", "proj": "cmp_proj"}  # widget key of each State field
PAIR = ("cmp_pair_a", "cmp_pair_b")
BEST = "★"  # after the best value of each row of the metrics table
PROJ_NAMES = {"pca": "PCA", "umap": "UMAP"}
SHARE, MAPS, INTERP = "cmp_share_box", "cmp_maps_box", "cmp_interp_box"  # fragment keys, for st.rerun
THIS_COMPUTER = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}  # hosts that no one else can open


# --- state: widgets <-> State <-> URL ---------------------------------------------------------------------------

def _seed(state: compare.State, force: bool = False) -> None:
    """Put a state into the widgets' session keys (only the missing ones unless forced)."""
    values = {W["models"]: list(state.models), W["noise"]: state.noise, W["level"]: state.level,
              W["seed"]: state.seed, W["steps"]: state.steps, W["interp"]: state.interp, W["cls"]: state.cls,
              W["proj"]: state.proj, PAIR[0]: state.pair[0], PAIR[1]: state.pair[1]}
    for key, value in values.items():
        if force or key not in st.session_state:
            st.session_state[key] = value


def _state() -> compare.State:
    """The state the widgets hold now."""
    ss = st.session_state
    return compare.State(models=tuple(ss[W["models"]]), noise=ss[W["noise"]], level=float(ss[W["level"]]),
                         seed=int(ss[W["seed"]]), pair=(int(ss[PAIR[0]]), int(ss[PAIR[1]])),
                         steps=int(ss[W["steps"]]), interp=ss[W["interp"]], cls=ss[W["cls"]], proj=ss[W["proj"]])


def _note(notes: list[str]) -> None:
    """Show notes until the user changes the comparison they were about (notes of one run add up)."""
    ss = st.session_state
    fresh = ss.get("cmp_notes") if ss.get("cmp_notes") and ss.get("cmp_notes_for") is None else []
    ss["cmp_notes"] = fresh + notes
    ss["cmp_notes_for"] = None


def _load_link(available: list[str]) -> None:
    """Seed the widgets from a link that was just opened or edited, else from this session's last state."""
    url = {k: v for k, v in st.query_params.to_dict().items() if k in compare.KEYS}
    if url and url != st.session_state.get("cmp_url"):
        parsed = compare.from_params(url, available)
        _seed(parsed.state, force=True)
        _note(parsed.notes)
        return
    _seed(st.session_state.get("cmp_state") or compare.default_state(available))


def _params(state: compare.State) -> dict[str, str]:
    """The link's query parameters: the state without the student's own models, which no one else can open."""
    return compare.to_params(replace(state, models=tuple(m for m in state.models if not ui.ref(m).mine)))


def _save(state: compare.State) -> dict[str, str]:
    """Remember the state and mirror it in the URL (with this student's own parameters, which links leave out)."""
    params = _params(state)
    if st.query_params.to_dict() != {**params, **ui.private_params()}:
        st.query_params.from_dict({**params, **ui.private_params()})
    st.session_state["cmp_url"] = params
    st.session_state["cmp_state"] = state
    return params


def _on_preset() -> None:
    preset = next((p for p in compare.PRESETS if p.title == st.session_state["cmp_preset"]), None)
    if preset is None:
        return
    base = st.session_state.get("cmp_state") or compare.State()  # fragment widgets may be gone, this is not
    state, missing = compare.apply_preset(preset, base, ui.ids())
    _seed(state, force=True)
    st.session_state["cmp_points"] = None
    _note([f"This preset also needs {', '.join(missing)}, which is not among the models here; "
           "showing the others."] if missing else [])


def _show_notes(state: compare.State) -> None:
    ss = st.session_state
    if ss.get("cmp_notes") and ss.get("cmp_notes_for") in (None, state):
        ss["cmp_notes_for"] = state
        for note in ss["cmp_notes"]:
            st.warning(note)


# --- per-model arrays, cached ----------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False, max_entries=32)
def _noisy_test(ds: str, noise: str, level: float, seed: int) -> np.ndarray:
    """The noisy test set, made once for every session and handed out read-only (as cache_data it was copied,
    15 MB for MNIST, on every call)."""
    return ui.read_only(corrupt(ui.dataset(ds).x_test, noise, level, seed).numpy())


@st.cache_data(show_spinner=False, max_entries=32)
def _noisy_psnr(ds: str, noise: str, level: float, seed: int) -> float:
    """What the noisy images themselves score against the clean ones."""
    return analysis.psnr(ui.dataset(ds).x_test.numpy(), _noisy_test(ds, noise, level, seed))


@ui.per_model(max_entries=128, copy=False)
def _summary(model, ds):
    """The model card's figures: the ones saved with the model when it is compared on its own data (zoo models and
    trainings here store model_card's result; tests/core/test_zoo checks they match a recomputation), else
    measured now."""
    stored = getattr(model, "metrics", None) or {}  # a model built here and never saved has none
    own = ds == model.config.dataset and {"params", "test_mse"} <= set(stored)
    return compare.summary(model, stored if own else zoo.model_card(model, ui.dataset(ds)))


@ui.per_model(max_entries=128, copy=False)
def _denoise(model, ds, noise, level, seed):
    return compare.denoising_psnr(model, ui.dataset(ds).x_test, _noisy_test(ds, noise, level, seed))


@ui.per_model(max_entries=128, copy=False)
def _recon(model, ds, noise, level, seed):
    data = ui.dataset(ds)
    idx = compare.picks(len(data.x_test), N_IMAGES, seed)
    return analysis.reconstruct(model, _noisy_test(ds, noise, level, seed)[idx]).reshape(len(idx), *data.sample_shape)


@ui.per_model(max_entries=64, copy=False)
def _map(model, ds, title, zoo_name, proj):
    """(map as a plain figure dict, projection used): built once, as plotly objects cost ~100 ms per map per run.

    Pretrained models (zoo_name) use the zoo's precomputed maps (the Explorer's); others get PCA.
    """
    data, z = ui.dataset(ds), model.config.latent_dim
    views = ui.views(zoo_name) if z > 2 and zoo_name else {}
    method = proj if proj in views else "pca"
    xy = views[method] if method in views else analysis.map_2d(analysis.embed(model, data.x_test))
    title = title if z <= 2 else f"{title}<br><sub>{PROJ_NAMES[method]} of the {z}-D codes</sub>"
    axes = ("z₁", "z₂") if z <= 2 else tuple(f"{PROJ_NAMES[method]} {i}" for i in (1, 2))
    # WebGL: a seed or a setting reruns the page, and as SVG four maps are ~4,000 elements to restyle each time
    fig = plots.latent_scatter_spec(xy, data.y_test.numpy(), data.label_names, title, height=420, axis_titles=axes,
                                    webgl=True)
    for trace in fig["data"]:  # packed as base64 (plots.typed); _dim_others needs the numbers
        trace["customdata"] = plots.untyped(trace["customdata"])
    fig["layout"]["template"] = {"layout": fig["layout"]["template"]["layout"]}  # trace defaults cost, add nothing
    # A click selects only outside box and lasso mode (Streamlit turns it off there): start panning, as the Explorer
    fig["layout"].update(dragmode="pan", clickmode="event+select", margin={"l": 10, "r": 10, "t": 60, "b": 10},
                         showlegend=False, legend={"title": {"text": "class"}})
    return fig, method


@ui.per_model(max_entries=128, copy=False)
def _interp(model, ds, pair, steps, method):
    return compare.interpolation(model, ui.dataset(ds), pair, steps, method)


@ui.per_model(max_entries=128, copy=False)
def _prior(model, ds, seed):
    return compare.prior_samples(model, N_SAMPLES, seed, ui.dataset(ds).sample_shape)




# --- views ----------------------------------------------------------------------------------------------------

def _big(images, ncols: int) -> str:
    """A mosaic scaled up with sharp pixels (a PNG data: URL, made once per content)."""
    return widgets.mosaic_url(images, ncols, ZOOM)


def _drawable(data) -> bool:
    """Whether samples can be drawn as images (MNIST rows are; signals and 3-D points are not)."""
    shape = data.sample_shape
    return data.kind == "image" or (len(shape) == 2 and min(shape) > 1)


def _resolve(keys: list[str]) -> tuple[list[str], str]:
    """The models that share the first model's test samples, and that dataset's name; says which are left out."""
    ds = ui.model(keys[0]).config.dataset
    ref = ui.dataset(ds)
    kept, out = [], []
    for key in keys:
        other = ui.model(key).config.dataset
        (kept if compare.comparable(ref, ui.dataset(other)) else out).append(key)
    if out:
        st.info(f"{', '.join(ui.name(k) for k in out)} {'was' if len(out) == 1 else 'were'} trained on other data than the {ds} samples "
                f"the first model uses, so {'it is' if len(out) == 1 else 'they are'} left out of this comparison.")
    return kept, ds


def _controls(available: list[str]) -> None:
    ss = st.session_state
    match = compare.matching_preset(_state())
    ss["cmp_preset"] = match.title if match else CUSTOM
    left, right = st.columns([2, 3])
    left.selectbox("Preset", [CUSTOM, *(p.title for p in compare.PRESETS)], key="cmp_preset", on_change=_on_preset,
                   disabled=ui.frozen(),
                   help="Classic comparisons: each picks its models and the noise that makes its point.")
    if match:
        left.caption(match.why)
        reading = _ladder_reading(match.models)
        if reading:
            left.caption(reading)
    right.multiselect("Models (2 to 4)", available, key=W["models"], max_selections=compare.MAX_MODELS,
                      format_func=ui.name, disabled=ui.frozen(),
                      help="Pretrained models, or ones you trained or uploaded in this session.")


def _ladder_reading(models) -> str | None:
    """What the numbers say when the models are pretrained and differ only in β (the β ladder preset)."""
    cards = ui.cards()
    if not all(m in cards for m in models):
        return None
    configs = [cards[m].config for m in models]
    if len({c.beta for c in configs}) < 2 or len({replace(c, beta=1.0) for c in configs}) > 1:
        return None
    return compare.beta_reading([compare.ladder_rung(cards[m].config, cards[m].metrics,
                                                     ui.model(m).history) for m in models])


def _settings() -> None:
    a, b, c = st.columns(3)
    a.selectbox("Noise on the inputs", NOISES, key=W["noise"], disabled=ui.frozen())
    b.slider("Noise level (σ or fraction of pixels)", 0.0, 1.0, step=0.05, key=W["level"], disabled=ui.frozen(),
             help="0 shows clean images; every model gets exactly the same noisy images.")
    c.number_input("Seed (which images, which noise, which prior samples)", 0, 10**6, step=1, key=W["seed"],
                   disabled=ui.frozen())


def _page_address() -> tuple[str, str | None]:
    """(the address of this page that others can open, a note when it differs from the browser's).

    The browser's address (st.context.url), unless it names this computer only ("localhost", as a teacher opens
    the app on the projector's laptop): then the address Streamlit prints as its URL (browser.serverAddress or
    server.address when set, else the network address), if the server listens beyond this computer.
    """
    url = urlsplit(st.context.url or f"http://{st.context.headers.get('host', 'localhost')}/compare")
    if (url.hostname or "localhost") not in THIS_COMPUTER:
        return url.geturl(), None
    host = next((st_config.get_option(o) for o in ("browser.serverAddress", "server.address")
                 if st_config.is_manually_set(o) and st_config.get_option(o) not in THIS_COMPUTER), None)
    bound = st_config.get_option("server.address")
    if host is None and (not bound or bound in ("0.0.0.0", "::")):  # listens on every interface
        host = net_util.get_internal_ip()
    if host is None or host in THIS_COMPUTER:
        return url.geturl(), (f"Your browser opened the app as {url.hostname}, and this server answers this computer "
                              "only, so no one else can open the link. Start it with `--server.address 0.0.0.0`, "
                              "or share the address the class uses.")
    netloc = f"[{host}]" if ":" in host else host
    shared = url._replace(netloc=f"{netloc}:{url.port}" if url.port else netloc).geturl()
    return shared, (f"Your browser opened the app as {url.hostname}, which names this computer only; the link uses "
                    f"its network address, {host}, instead.")


@st.fragment(key=SHARE)
def _share(keys: list[str]) -> None:
    """The link to this comparison; the fragments whose widgets change it rerun this box too (_with_share)."""
    address, note = _page_address()
    link = f"{address}?{urlencode(_params(_state()), safe=',')}"
    with st.expander("Share this comparison", icon=":material/link:"):
        st.code(link, language=None)
        st.caption("Send this link: it opens the same models and settings for anyone who can reach this server.")
        if note:
            st.caption(note)
        yours = [ui.name(k) for k in keys if ui.ref(k).mine]
        if yours:
            st.caption(f"Your own models cannot be shared by link, so it leaves out {', '.join(yours)}: "
                       "only you can see them.")


def _reconstructions(keys: list[str], ds: str, state: compare.State) -> None:
    st.subheader("Reconstructions")
    data = ui.dataset(ds)
    idx = compare.picks(len(data.x_test), N_IMAGES, state.seed)
    noisy = state.level > 0
    ui.explain("Each row is one test image; each column is what a model makes of it. "
                   + ("Every model gets the same noisy input, so this also shows which ones clean it up."
                      if noisy else "Blur means the code kept too little about the image."))
    columns = {"original": data.x_test[idx].numpy()}
    if noisy:
        columns["noisy input"] = _noisy_test(ds, state.noise, state.level, state.seed)[idx]
    for key in keys:
        columns[ui.name(key)] = _recon(key, ds, state.noise, state.level, state.seed)
    slots = st.columns(2 + compare.MAX_MODELS)  # the same column width for 2 or 4 models
    for col, (title, images) in zip(slots, columns.items()):
        col.markdown(f"**{title}**")
        widgets.image(_big(images, 1), where=col)


def _with_share(fragment: str, then=None):
    """A callback for a widget inside `fragment` whose value is in the link: after `then`, rerun that fragment and
    the share box (a fragment's own rerun would leave the box above it showing the old link)."""
    def callback() -> None:
        if then is not None:
            then()
        st.rerun([fragment, SHARE])
    return callback


def _on_select(key: str) -> None:
    """A box, lasso or click selection in one map becomes the highlight in all of them."""
    event = st.session_state.get(key)
    points = event["selection"]["points"] if event else []
    ids = {p["customdata"][0] if isinstance(p["customdata"], list) else p["customdata"]
           for p in points if "customdata" in p}
    st.session_state["cmp_points"] = sorted(int(i) for i in ids) or None
    st.session_state[W["cls"]] = None


def _on_class() -> None:
    st.session_state["cmp_points"] = None


def _on_clear() -> None:
    st.session_state.update({"cmp_points": None, W["cls"]: None})


def _highlighted(data, cls: int | None) -> np.ndarray | None:
    """Test indices highlighted in every map: the chosen class, else the last selection, else none."""
    if cls is not None:
        return np.flatnonzero(data.y_test.numpy() == cls)
    points = st.session_state.get("cmp_points")
    return None if points is None else np.asarray(points)


def _dim_others(fig: dict, idx: np.ndarray | None) -> dict:
    """Plotly's own selection look: chosen points stay, the others fade."""
    if idx is not None:
        fig["data"] = [{**t, "selectedpoints": np.flatnonzero(np.isin(t["customdata"], idx)).tolist(),
                        "selected": {"marker": {"opacity": 1.0, "size": 7}}, "unselected": {"marker": {"opacity": 0.07}}}
                       if "customdata" in t else t for t in fig["data"]]
    return fig


@st.fragment(key=MAPS)
def _maps(keys: list[str], ds: str) -> None:
    st.subheader("Latent maps, linked")
    data = ui.dataset(ds)
    ui.explain("Each dot is a test image placed at its code. Click a dot, or pick the box or lasso tool above a map "
               "and draw around dots, or pick a class: the same images light up in every map, so you can see where "
               "each model puts them.")
    if data.label_names:
        a, b = st.columns([3, 1])
        a.selectbox("Highlight a class", range(len(data.label_names)), key=W["cls"],
                    on_change=_with_share(MAPS, _on_class), format_func=lambda c: data.label_names[c],
                    placeholder="none: pick a class to highlight it", disabled=ui.frozen())
        b.button("Clear the selection", on_click=_with_share(MAPS, _on_clear), disabled=ui.frozen())
    wide = [k for k in keys if ui.model(k).config.latent_dim > 2]
    if wide:
        st.radio("Map of codes with more than 2 dimensions", compare.PROJS, key=W["proj"], horizontal=True,
                 on_change=_with_share(MAPS), format_func=PROJ_NAMES.get, disabled=ui.frozen(),
                 help="PCA keeps the two directions of largest spread; UMAP keeps neighbours together (precomputed "
                      "for pretrained models).")
    idx = _highlighted(data, st.session_state[W["cls"]] if data.label_names else None)
    proj, fallback = st.session_state[W["proj"]], []
    for col, key in zip(st.columns(len(keys)), keys):
        fig, method = _map(key, ds, ui.name(key), key if ui.ref(key).zoo else "", proj)
        if key in wide and method != proj:
            fallback.append(ui.name(key))
        fig = _dim_others({**fig, "layout": {**fig["layout"], "showlegend": key == keys[-1]}}, idx)  # a copy: the
        # cached figure is every session's; one legend for all maps, the last map gives up some width
        select = "ignore" if ui.frozen() else _with_share(MAPS, functools.partial(_on_select, f"cmp_map::{key}"))
        col.plotly_chart(plots.checked(fig), key=f"cmp_map::{key}", on_select=select,
                         selection_mode=("points", "box", "lasso"), config={"displaylogo": False})
    if fallback:
        st.caption(f"{', '.join(fallback)} {'has' if len(fallback) == 1 else 'have'} no precomputed {PROJ_NAMES[proj]} "
                   "map (only pretrained models do), so PCA is shown.")
    if idx is not None:
        st.caption(f"Test image #{idx[0]} is highlighted in every map." if len(idx) == 1 else
                   f"{len(idx)} test images highlighted in every map" + (" (the first 16 below)." if len(idx) > 16 else "."))
        if _drawable(data) and len(idx):
            widgets.image(_big(data.x_test[idx[:16]].numpy(), 16))
    _save(_state())


@st.fragment(key=INTERP)
def _interpolation(keys: list[str], ds: str) -> None:
    st.subheader("Interpolation between the same two images")
    data = ui.dataset(ds)
    ui.explain("Both images are encoded, the path between their codes is cut into equal steps, and every step "
                   "is decoded. A smooth morph means the space between the codes is filled with sensible images.",
                   r"z_t = (1-t)\,z_a + t\,z_b \quad\text{or, spherical,}\quad "
                   r"z_t = \frac{\sin((1-t)\Omega)}{\sin\Omega}z_a + \frac{\sin(t\Omega)}{\sin\Omega}z_b")
    a, b, c, d = st.columns(4)
    n = len(data.x_test) - 1
    a.number_input("First test image", 0, n, key=PAIR[0], on_change=_with_share(INTERP), disabled=ui.frozen())
    b.number_input("Second test image", 0, n, key=PAIR[1], on_change=_with_share(INTERP), disabled=ui.frozen())
    c.slider("Steps", *compare.STEPS, key=W["steps"], on_change=_with_share(INTERP), disabled=ui.frozen())
    d.radio("Path", compare.INTERPS, key=W["interp"], horizontal=True, on_change=_with_share(INTERP),
            disabled=ui.frozen())
    state = _state()
    if state.pair[0] == state.pair[1]:
        st.info("Pick two different test images to interpolate between.")
    else:
        ends = data.x_test[list(state.pair)].numpy()
        _row("the two images", _big(ends, 2))
        for key in keys:
            _row(ui.name(key), _big(_interp(key, ds, state.pair, state.steps, state.interp), state.steps))
    _save(state)


def _same_code(keys: list[str], ds: str) -> None:
    """One pad (or one set of sliders) per latent size: every model of that size decodes the point, in the browser.
    The weights are mounted here, outside the views' fragment: a release reruns the views alone and does not hash
    and resend every model's weights."""
    webs = {k: w for k in keys if (w := latent.web_model(k)) is not None}
    groups: dict[int, list[str]] = {}
    for key in webs:
        groups.setdefault(ui.model(key).config.latent_dim, []).append(key)
    groups = {d: g for d, g in groups.items() if len(g) > 1}
    st.subheader("The same code in every model")
    ui.explain("Drag the point (or a slider): every model with a code of that size decodes the same z, in your "
               "browser, while you drag. Their latent spaces are laid out differently, so one z means different "
               "images; VAEs, pulled towards the same prior, tend to agree more.")
    if not groups:
        st.info("No two of the chosen models have codes of the same size, so no code can be shared between them.")
        return
    for d, group in sorted(groups.items()):
        latent.carry([webs[k] for k in group], "cmp_pad::2" if d == 2 else f"cmp_zs::{d}")
    _same_code_views(groups, webs, ds)


@st.fragment
def _same_code_views(groups: dict[int, list[str]], webs: dict, ds: str) -> None:
    for d, group in sorted(groups.items()):
        codes = [ui.codes(k) for k in group]
        models, titles = [webs[k] for k in group], [ui.name(k) for k in group]
        if d == 2:
            spans = [span(z, ui.config(k).objective == "variational") for k, z in zip(group, codes)]
            lo, hi = np.min([a for a, _ in spans], axis=0), np.max([b for _, b in spans], axis=0)
            every = max(1, len(codes[0]) // PAD_CODES)
            labels = ui.dataset(ds).y_test.numpy()[::every] if ui.dataset(ds).label_names else None
            z = latent.latent_pad(models, key="cmp_pad::2", x_range=(lo[0], hi[0]), y_range=(lo[1], hi[1]),
                                  z=codes[0][0], codes=codes[0][::every], labels=labels, titles=titles, size=260,
                                  image_size=112, carried=True)
            where = f"the dots are {titles[0]}'s test codes"
        else:
            lo = np.min([np.percentile(z, 0.5, axis=0) for z in codes], axis=0)
            hi = np.max([np.percentile(z, 99.5, axis=0) for z in codes], axis=0)
            z = latent.latent_sliders(models, key=f"cmp_zs::{d}", z=codes[0][0], lo=lo, hi=hi,
                                      dims=range(min(d, MAX_SLIDERS)), titles=titles, image_size=112, carried=True)
            where = f"the first {min(d, MAX_SLIDERS)} of {d} dimensions, each over the range of the models' test codes"
        st.caption(f"{d}-D code z = ({', '.join(f'{v:.2f}' for v in z[:16])}{', …' if d > 16 else ''}), decoded by "
                   f"{', '.join(titles)}; it starts at {titles[0]}'s code of test image #0 ({where}).")


def _row(title: str, image: str) -> None:
    left, right = st.columns([1, 6], vertical_alignment="center")
    left.markdown(f"**{title}**")
    widgets.image(image, where=right)


def _prior_samples(keys: list[str], ds: str, seed: int) -> None:
    st.subheader("Samples from the prior")
    vaes = [k for k in keys if ui.model(k).has_prior]
    ui.explain("Codes drawn at random from N(0, I) with the same seed, decoded by each VAE. Only a VAE is "
                   "trained so that such random codes land where its decoder makes sense.", r"z \sim \mathcal{N}(0, I)")
    if not vaes:
        st.info("None of the chosen models is a VAE, and only VAEs have a prior to sample from.")
    for key in vaes:
        _row(ui.name(key), _big(_prior(key, ds, seed), N_SAMPLES))


def _rows(keys: list[str], ds: str, state: compare.State) -> dict:
    """The metrics table's values: metric -> {model name: value}."""
    rows = {k: {} for k in compare.METRICS}
    for key in keys:
        for metric, value in _summary(key, ds).items():
            rows[metric][ui.name(key)] = value
        rows["denoise_psnr"][ui.name(key)] = (_denoise(key, ds, state.noise, state.level, state.seed)
                                              if state.level > 0 else None)
    return rows


def _metrics(keys: list[str], ds: str, state: compare.State) -> None:
    st.subheader("Metrics on the same test set")
    with st.spinner("Measuring each model on the test set…"):
        rows = _rows(keys, ds, state)
    st.dataframe(_formatted(rows), width="stretch")
    baseline = _noisy_psnr(ds, state.noise, state.level, state.seed) if state.level > 0 else None
    ui.explain(f"↓ lower is better, ↑ higher is better; the best value in each row is starred ({BEST}) and named "
                   "in the last column. k-NN accuracy: how often the 5 nearest training codes share a test image's class. "
                   + (f"Denoising PSNR scores each model's output for the same noisy images against the clean ones; "
                      f"the noisy images themselves score {baseline:.2f} dB." if baseline is not None else
                      "Raise the noise level to add a denoising row."),
                   r"\mathrm{PSNR} = 10\log_{10}\frac{1}{\mathrm{MSE}}, \qquad "
                   r"-\mathrm{ELBO} = -\mathbb{E}_{q(z|x)}\log p(x|z) + \mathrm{KL}(q(z|x)\,\|\,\mathcal{N}(0,I))")


@st.cache_resource(max_entries=256)
def _formatted(rows: dict) -> pd.DataFrame:
    """The table as text, each row in its own number format and the best values starred (st.dataframe shows missing
    numbers as 'None'); built once per set of values for every session and handed out as it is. It used to shade the
    best cells through a pandas Styler: Streamlit applies a Styler's formats and styles cell by cell on every run,
    the largest single cost of a Compare run (10 of 34 ms)."""
    df = compare.table(rows)
    models = [c for c in df.columns if c != "best"]
    shown = df.astype(object)
    for metric, values in rows.items():
        label = compare.row_label(metric)
        if label in df.index:
            m = compare.METRICS[metric]
            winners = compare.best(values, m.better)
            shown.loc[label, models] = [(m.fmt.format(v) if v == v else "—") + (f" {BEST}" if c in winners else "")
                                        for c, v in zip(models, df.loc[label, models])]
    return shown


# --- prepared in advance ----------------------------------------------------------------------------------------

def warm_presets() -> list[str]:
    """Compute, for every session, what each preset's first visit draws with the default settings: the pictures
    (reconstructions, interpolation, prior samples, as their data: URLs), the maps, the metrics table, the weights
    and codes for the browser. In a class, a teacher's "open the β ladder" sends thirty first visits at once, and a
    preset's first visit cost 130-170 ms of the server's CPU (`aeviz bench class`); the Explorer's warm-up thread
    calls this after the zoo (no session, no widget). The presets prepared."""
    cards, done = ui.cards(), []
    for preset in compare.PRESETS:
        state, _ = compare.apply_preset(preset, compare.State(), list(cards))
        if len(state.models) < 2:
            continue
        ds = ui.model(state.models[0]).config.dataset
        keys = [k for k in state.models if compare.comparable(ui.dataset(ds), ui.dataset(ui.model(k).config.dataset))]
        data = ui.dataset(ds)
        if len(keys) < 2:
            continue
        if _drawable(data):
            idx = compare.picks(len(data.x_test), N_IMAGES, state.seed)
            _big(data.x_test[idx].numpy(), 1)
            if state.level > 0:
                _big(_noisy_test(ds, state.noise, state.level, state.seed)[idx], 1)
                _noisy_psnr(ds, state.noise, state.level, state.seed)
            _big(data.x_test[list(state.pair)].numpy(), 2)
        for key in keys:
            if _drawable(data):
                _big(_recon(key, ds, state.noise, state.level, state.seed), 1)
                _big(_interp(key, ds, state.pair, state.steps, state.interp), state.steps)
                if ui.model(key).has_prior:
                    _big(_prior(key, ds, state.seed), N_SAMPLES)
            _map(key, ds, ui.name(key), key, state.proj)
            latent.web_model(key)
            ui.codes(key)
        _formatted(_rows(keys, ds, state))
        done.append(preset.title)
    return done


# --- the page -------------------------------------------------------------------------------------------------

def render() -> None:
    """Draw the page."""
    st.title("Compare variants")
    st.caption("Two to four autoencoders side by side on the same images, the same noise and the same questions: "
               "what does a VAE do that a plain autoencoder doesn't, what does β change, MLP or convolutional?")
    available = ui.ids()
    if not available:
        st.warning("There are no models to compare yet: pretrained/ is empty, so train some on the Explorer page.")
        return
    _load_link(available)
    _controls(available)
    keys = list(st.session_state[W["models"]])
    if keys:
        keys, ds = _resolve(keys)
        data = ui.dataset(ds)
        fitted, notes = compare.fit(_state(), len(data.x_test), len(data.label_names))
        if notes:  # only what fit() changes: the models widget is already drawn
            st.session_state[PAIR[0]], st.session_state[PAIR[1]] = fitted.pair
            st.session_state[W["cls"]] = fitted.cls
            _note(notes)
        _settings()
    state = _state()
    _show_notes(state)
    _save(state)
    if len(keys) < 2:
        st.info("Pick at least two models (of the same data) to compare them.")
        return
    _share(keys)
    if _drawable(data):
        _reconstructions(keys, ds, state)
    else:
        st.info(f"The {ds} samples are not images, so the picture rows are left out; the maps and the metrics below "
                "still compare the models.")
    _maps(keys, ds)
    if _drawable(data):
        _same_code(keys, ds)
        _interpolation(keys, ds)
        _prior_samples(keys, ds, state.seed)
    _metrics(keys, ds, state)
