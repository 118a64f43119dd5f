"""Drag in the browser: latent pads, sliders, paths, temperature grids and a live denoiser that run the model
in JavaScript while the user drags, and tell Python only the value let go of (one rerun per release).

Every function renders, inside one container keyed ``f"{key}-box"``, one weights carrier per model (data =
the model's blob) and the view itself (data = JSON naming the models by hash). The page's JavaScript module keeps
every model it was sent by hash for as long as the page lives, and the session remembers which hashes it sent
(``SENT``), so a model's carrier is mounted once per page, not in every run: Streamlit hashes an element's data
twice whenever it is drawn, about 2 ms per megabyte each. A view that waits too long for a model it was never
given (a run cut short before its carrier reached the page) tells Python, which mounts that carrier again beside
the view in the run this causes. The view's state lives in ``st.session_state[key]``,
a dict with one entry (``STATE[mode]``): ``{"z": [...]}``, ``{"t": 0.4}``, ``{"temperature": 1.2}`` or
``{"level": 0.3}``. To move a view from Python, call ``move(key, mode, value)`` before the view renders: the
browser keeps sending the value it last committed with every rerun, and move() makes that older value count no
more (until the user lets go somewhere new). Without JavaScript (AppTest) each function returns the committed
value, or the default.
A release reruns the whole script; call the view inside an ``@st.fragment`` to rerun only that fragment, and
mount the weights before the fragment with ``carry(models, key)`` (then pass ``carried=True``): the release's rerun
then leaves the weights in the page instead of hashing and resending them.
Pages get a model's blob with ``web_model(ref)`` (exported once per model through ``state.per_model``); it is
None for a model the browser cannot run, and the page then keeps its server-side widgets.

The JS and CSS are package assets (aeviz/pyproject.toml declares the component ``aeviz.latent`` and its
asset_dir), so they are served as files and cached by the browser, not resent with every element.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st

from aeviz import webmodel
from aeviz.ui import state as ui_state
from aeviz.ui.widgets import ContentMemo
from aeviz.webmodel import WebExportError, WebModel

NAME = "aeviz.latent"
SENT = "latent::sent"  # session key: hashes of the models this page's JavaScript holds
MISSING = "missing"  # the view's trigger: hashes it waited for in vain
STATE = {"pad": "z", "sliders": "z", "path": "t", "temperature": "temperature", "denoise": "level"}

Models = WebModel | Sequence[WebModel]


@functools.cache
def _component():
    """Registered on first use, inside a script run: the runtime has scanned the package manifests by then."""
    return st.components.v2.component(NAME, js="latent.js", css="latent.css")


@ui_state.per_model(max_entries=32, copy=False)
def _web(model, encoder: bool) -> WebModel:
    return webmodel.exported(model, encoder)


def web_model(ref, encoder: bool = False) -> WebModel | None:
    """A model (ref or id) as the browser runs it, exported once per model (per_model: for every session when
    the model is shared); None for a model whose layers the browser decoder does not know."""
    try:
        return _web(ref, encoder)
    except WebExportError:
        return None


def _noop() -> None:
    pass


def _floats(a, digits: int | None = None) -> list[float]:
    a = np.asarray(a, dtype=np.float64).ravel()
    return (np.round(a, digits) if digits is not None else a).tolist()


_JSON = ContentMemo(256)  # an array's content -> its numbers as a JSON list


def _json_numbers(a, digits: int | None = None, integers: bool = False) -> str:
    """An array's numbers as one JSON list in a string (the page parses it). The pad's 1,500 test codes and their
    labels travel with every release of the pad: as lists, Streamlit checked each one for being a dataframe and
    encoded 4,500 numbers on every run (3.5 of a release's 10 ms); as a string made once per content, nothing."""
    return _JSON.get(a, lambda a: json.dumps(np.asarray(a, int).ravel().tolist() if integers else _floats(a, digits),
                                             separators=(",", ":")), digits, integers)


def _as_list(models: Models) -> list[WebModel]:
    out = [models] if isinstance(models, WebModel) else list(models)
    if not out:
        raise ValueError("no model to show")
    return out


def _same(models: list[WebModel], what: str) -> None:
    values = {getattr(m, what) for m in models}
    if len(values) > 1:
        raise ValueError(f"these models differ in {what} ({sorted(values)}); one view shows models that agree")


def move(key: str, mode: str, value) -> None:
    """Move the view `key` (of kind `mode`: "pad", "sliders", ...) to `value` from Python, before it renders.

    The browser's widget state keeps the value the user last let go of, and every rerun brings it back, so a plain
    ``st.session_state[key] = {...}`` would hold for one run only. The value the browser holds now is remembered
    as stale: while the browser sends it, the view shows `value`; a new release wins as usual."""
    name = STATE[mode]
    value = _floats(value) if isinstance(value, (list, tuple, np.ndarray)) else float(value)
    st.session_state[f"{key}::moved"] = {"stale": _committed(key, name), "value": value}
    st.session_state[key] = {name: value}


def _moved(key: str, got):
    """`got` (what the browser committed), or the value Python moved the view to while `got` is the browser's
    older value; a new value from the browser ends the move."""
    moved = st.session_state.get(f"{key}::moved")
    if moved is None or got is None:
        return got
    if got == moved["stale"] or got == moved["value"]:
        return moved["value"]
    del st.session_state[f"{key}::moved"]
    return got


def _committed(key: str, name: str):
    """The value the browser last committed (from the previous run), or None."""
    try:
        state = st.session_state[key]
    except KeyError:
        return None
    return state.get(name) if isinstance(state, dict) else None


def carry(models: Models, key: str) -> None:
    """Mount the models' weights for the view with this key here, outside it: call it before an `@st.fragment` that
    shows the view with carried=True. A release then reruns the view alone, and the weights (a megabyte that
    Streamlit hashes twice whenever it is drawn) stay in the page untouched. A model whose weights this page
    holds already (SENT) is not mounted again."""
    mount = _component()
    sent = st.session_state.setdefault(SENT, set())
    with st.container(gap=None, key=f"{key}-weights"):
        for wm in {m.hash: m for m in _as_list(models)}.values():
            if wm.hash not in sent:
                mount(key=f"{key}-{wm.hash}", data=wm.blob)
                sent.add(wm.hash)


def _resend(missing, models: list[WebModel], key: str) -> None:
    """The view waited in vain for these of its models (a run cut short before their carriers reached the page):
    mount them again here, beside the view (inside its fragment, if it has one: the page keeps them all the same)."""
    mount = _component()
    lost = set(missing) if isinstance(missing, list) else set()
    for wm in {m.hash: m for m in models if m.hash in lost}.values():
        mount(key=f"{key}-{wm.hash}-again", data=wm.blob)
        st.session_state.setdefault(SENT, set()).add(wm.hash)


def _view(mode: str, models: Models, key: str, default, titles: Sequence[str] | None,
          on_change: Callable[[], None] | None, carried: bool = False, **data):
    models = _as_list(models)
    _same(models, "input_shape")
    name = STATE[mode]
    titles = list(titles) if titles is not None else [m.spec["label"] for m in models]
    if len(titles) != len(models):
        raise ValueError(f"{len(titles)} titles for {len(models)} models")
    committed = _moved(key, _committed(key, name))
    value = committed if committed is not None else default
    mount = _component()
    with st.container(gap=None, key=f"{key}-box"):
        if not carried:
            carry(models, key)
        result = mount(key=key, default={name: default},
                       **{f"on_{name}_change": on_change or _noop, f"on_{MISSING}_change": _noop},
                       data={"mode": mode, "state": name, "value": value, "models": [m.hash for m in models],
                             "titles": titles, "sample_shape": list(models[0].input_shape), **data})
        _resend(result.get(MISSING) if result is not None else None, models, key)
    got = _moved(key, result.get(name) if result is not None else None)
    return got if got is not None else value


def latent_pad(models: Models, *, key: str, x_range: tuple[float, float], y_range: tuple[float, float],
               z: Sequence[float] = (0.0, 0.0), codes=None, labels=None, titles: Sequence[str] | None = None,
               size: int = 320, image_size: int = 160, on_change: Callable[[], None] | None = None,
               carried: bool = False) -> list[float]:
    """A 2-D latent pad: drag the point (or use the arrow keys) and every model decodes it live beside the pad.

    codes: (N, 2) test codes drawn as small dots (coloured by the integer `labels`, if given) for orientation.
    Returns the committed z (2 floats): `z` until the user releases the point somewhere.
    """
    models = _as_list(models)
    if any(m.latent_dim != 2 for m in models):
        raise ValueError("the latent pad needs models with a 2-D latent space; use latent_sliders for more")
    data = {"x_range": _floats(x_range), "y_range": _floats(y_range), "size": int(size), "image_size": int(image_size),
            "codes": _json_numbers(codes, 3) if codes is not None else "[]",
            "labels": _json_numbers(labels, integers=True) if labels is not None else "[]"}
    return _view("pad", models, key, _floats(z), titles, on_change, carried, **data)


def latent_sliders(models: Models, *, key: str, z: Sequence[float] | None = None, lo=-3.0, hi=3.0,
                   dims: Sequence[int] | None = None, titles: Sequence[str] | None = None, image_size: int = 160,
                   on_change: Callable[[], None] | None = None, carried: bool = False) -> list[float]:
    """One slider per latent dimension (or per dimension in `dims`, in that order; the others stay at z); the
    models decode continuously while a slider moves. `lo` and `hi`: one range for all, or one per dimension.

    Returns the committed z (latent_dim floats): `z` (default zeros) until a slider is released.
    """
    models = _as_list(models)
    _same(models, "latent_dim")
    n = models[0].latent_dim
    z = _floats(z if z is not None else np.zeros(n))
    if len(z) != n:
        raise ValueError(f"z has {len(z)} numbers; the models' code has {n}")
    lo, hi = (_floats(np.broadcast_to(np.asarray(v, np.float64), (n,))) for v in (lo, hi))
    dims = [int(d) for d in (dims if dims is not None else range(n))]
    if any(not 0 <= d < n for d in dims):
        raise ValueError(f"dims must lie in 0..{n - 1}")
    return _view("sliders", models, key, z, titles, on_change, carried, lo=lo, hi=hi, dims=dims,
                 image_size=int(image_size))


def latent_path(models: Models, *, key: str, start: Sequence[float], end: Sequence[float], method: str = "linear",
                t: float = 0.5, steps: int = 8, titles: Sequence[str] | None = None, image_size: int = 160,
                thumb_size: int = 48, on_change: Callable[[], None] | None = None) -> float:
    """A scrubber along the path from `start` to `end` ("linear", or "spherical" as analysis.interpolate does),
    with a strip of `steps` decoded stops for orientation. Returns the committed t in [0, 1].
    """
    models = _as_list(models)
    _same(models, "latent_dim")
    if method not in ("linear", "spherical", "slerp"):
        raise ValueError(f"unknown path method {method!r}; choose linear or spherical")
    return _view("path", models, key, float(t), titles, on_change, start=_floats(start), end=_floats(end),
                 method=method, steps=int(steps), image_size=int(image_size), thumb_size=int(thumb_size))


def temperature_grid(models: Models, *, key: str, eps, temperature: float = 1.0, t_max: float = 2.0, cols: int = 8,
                     titles: Sequence[str] | None = None, image_size: int = 56,
                     on_change: Callable[[], None] | None = None) -> float:
    """Fixed prior draws `eps` (n, latent_dim) decoded as z = T * eps while the T slider moves.

    Returns the committed temperature T.
    """
    models = _as_list(models)
    _same(models, "latent_dim")
    eps = np.asarray(eps, dtype=np.float64)
    if eps.ndim != 2 or eps.shape[1] != models[0].latent_dim:
        raise ValueError(f"eps must be (n, {models[0].latent_dim}), not {eps.shape}")
    return _view("temperature", models, key, float(temperature), titles, on_change,
                 eps=np.round(eps, 5).tolist(), t_max=float(t_max), cols=int(cols), image_size=int(image_size))


def denoise_live(models: Models, *, key: str, image, noise, level: float = 0.3, max_level: float = 1.0,
                 titles: Sequence[str] | None = None, image_size: int = 160,
                 on_change: Callable[[], None] | None = None) -> float:
    """A clean sample, its corruption clip(image + level * noise, 0, 1) and every model's reconstruction,
    all computed in the browser while the noise slider moves (the models must be exported with encoder=True).

    `noise` is a fixed standard-normal field of the sample's shape, so Python can compute the same corruption
    with noisy(image, noise, level). Returns the committed level.
    """
    models = _as_list(models)
    if not all(m.has_encoder for m in models):
        raise ValueError("denoise_live runs the encoder too: export the models with encoder=True")
    image, noise = np.asarray(image), np.asarray(noise)
    if image.size != int(np.prod(models[0].input_shape)) or noise.shape != image.shape:
        raise ValueError(f"image and noise must both have the models' sample shape {models[0].input_shape}")
    return _view("denoise", models, key, float(level), titles, on_change, image=_floats(image), noise=_floats(noise),
                 max_level=float(max_level), image_size=int(image_size))


def noisy(image, noise, level: float) -> np.ndarray:
    """The corruption denoise_live shows: data.corrupt's gaussian noise with a given field."""
    return np.clip(np.asarray(image, np.float64) + level * np.asarray(noise, np.float64), 0.0, 1.0)
