"""Model identity and caches for every page: ModelRef, model(), per_model(), the sidebar's picker.

A model is named everywhere by a ModelRef: the zoo's models by their file name, the ones trained on a page
for everyone by their config, and a student's own (trained or uploaded) by the digest of their weights. Pages
dispatch on `ref.id` (a short string, fit for session_state, widgets and URLs) and show `ref.name`. Anything
computed from a model is cached once, through per_model(): in st.cache_data for shared models (every student
gets the same answer), in the student's session for their own, keyed by the weights digest in both cases, so
two models can never share a cached figure by accident.
"""
from __future__ import annotations

import functools
import hashlib
import re
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import aeviz
from aeviz import analysis, io, userdata, workspace
from aeviz.config import ModelConfig, TrainConfig
from aeviz.data import Dataset, DatasetUnavailable
from aeviz.data import load as load_data
from aeviz.models import Autoencoder
from aeviz.ui import widgets
from aeviz.uses import is_image_model, sweep

DEFAULT_MODEL = "ae-mlp-z2"
ICON = str(Path(__file__).parent / "static" / "icon.png")  # served by the app: no font server needed offline
MAX_UPLOAD_MB = 20
UPLOAD_BOX = "upload_box"  # the sidebar's "Upload a checkpoint" box: open or closed
MINE_CACHE = 64  # per-model results a session keeps for its own models (oldest dropped first)
SHARED, MINE = "shared", "mine"
TOKEN_PARAM = "me"  # the query parameter that carries a student's token


@dataclass(frozen=True)
class ModelRef:
    """One model's identity: what pages dispatch on (id), what people read (name), what caches key on (digest)."""

    id: str  # the zoo's file name, "class:<digest>" for a model trained here for everyone, "mine:<digest>" for yours
    name: str  # shown to people
    digest: str  # sha256 of the weights, 16 hex digits
    scope: str  # SHARED (zoo and page-trained: read-only, one copy for every session) or MINE (this student's)

    @property
    def zoo(self) -> bool:
        """Shipped in pretrained/."""
        return self.scope == SHARED and ":" not in self.id

    @property
    def mine(self) -> bool:
        """Trained or uploaded by this student."""
        return self.scope == MINE


def digest(model: Autoencoder) -> str:
    """sha256 of a model's weights (names and values), 16 hex digits: equal weights, equal identity."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _natural(name: str) -> tuple:
    """Sort key that reads numbers as numbers: vae-mlp-z2-b4 before vae-mlp-z2-b10."""
    return tuple((0, float(t), "") if re.fullmatch(r"\d+(\.\d+)?", t) else (1, 0.0, t)
                 for t in re.findall(r"\d+(?:\.\d+)?|[^\d]+", name))


def cards() -> dict[str, io.Card]:
    """Pretrained model cards by name (metadata only), in natural order."""
    return _ONCE.get("cards", _cards)


def _zoo_refs() -> dict[str, ModelRef]:
    """The zoo's refs; a zoo file's digest is that of its bytes (it never changes while the server runs)."""
    return _ONCE.get("zoo_refs", _zoo_refs_made)


def _class_models() -> dict[str, tuple[ModelRef, Autoencoder]]:
    """Models trained on a page for everyone (seeded, so every student would get the same weights)."""
    return _ONCE.get("class_models", _class_models_made)


# The three above are made once per server by Streamlit's cache and then found by one lookup (_ONCE, emptied by
# clear_caches()): every ref() asks for the zoo, and a Compare run made ~150 such calls, each a trip through
# Streamlit's cache (cProfile: 9 ms of a Compare run's 88 under the profiler).

@st.cache_resource(show_spinner=False)
def _cards() -> dict[str, io.Card]:
    return {c.name: c for c in sorted(io.pretrained(), key=lambda c: _natural(c.name))}


@st.cache_resource(show_spinner=False)
def _zoo_refs_made() -> dict[str, ModelRef]:
    return {name: ModelRef(name, name, hashlib.sha256(c.path.read_bytes()).hexdigest()[:16], SHARED)
            for name, c in cards().items()}


@st.cache_resource(show_spinner=False)
def _class_models_made() -> dict[str, tuple[ModelRef, Autoencoder]]:
    return {}


def token() -> str:
    """This student's unguessable token, kept in the page's address (?me=…) so that a reload, or a restart of the
    server, finds their models again. No link the app builds for sharing carries it (see private_params)."""
    t = st.session_state.get("token")
    if t is None:
        t = st.query_params.get(TOKEN_PARAM)
        t = t if workspace.valid_token(t) else workspace.new_token()
        st.session_state["token"] = t
    if st.query_params.get(TOKEN_PARAM) != t:
        st.query_params[TOKEN_PARAM] = t
    return t


def private_params() -> dict[str, str]:
    """Query parameters that belong to this student only (their token; in a class, the room and their seat in it,
    see ui/classroom.py): pages that rewrite the address keep them, links built for sharing leave them out."""
    return {TOKEN_PARAM: token(), **st.session_state.get("room_params", {})}


def frozen() -> bool:
    """Whether the teacher froze this student's class: pass it as disabled= to controls that change the view."""
    return bool(st.session_state.get("room_frozen"))


def _mine() -> dict[str, tuple[ModelRef, Autoencoder]]:
    """This student's models by id, in the order they arrived (restored from disk on the first run)."""
    if "mine" not in st.session_state:
        st.session_state["mine"] = _restore()
    return st.session_state["mine"]


def _restore() -> dict[str, tuple[ModelRef, Autoencoder]]:
    """The models this student's token saved earlier; a file that no longer loads is left out."""
    t, out, files = token(), {}, st.session_state.setdefault("mine_files", {})
    for e in workspace.list_models(t):
        try:
            m = aeviz.load(workspace.load_model_bytes(t, e.id), name=e.name)
        except (aeviz.CheckpointError, workspace.StoreError):
            continue
        d = digest(m)
        out[f"mine:{d}"] = (ModelRef(f"mine:{d}", e.name.removesuffix(".safetensors"), d, MINE), m)
        files[f"mine:{d}"] = e.id
    return out


@st.cache_resource(show_spinner="Loading the pretrained model…")
def _zoo_model(name: str) -> Autoencoder:
    """A pretrained model shared by every session: read-only, used for inference only."""
    model = aeviz.load(cards()[name].path)
    model.eval()
    return model


@st.cache_resource(show_spinner="Loading data…")
def _dataset(name: str) -> Dataset:
    return load_data(name)


def dataset(name: str) -> Dataset:
    """A dataset shared by every session (tensors are never modified). A user dataset ('user:NAME') that this
    server does not have (a restart cleaned its folder, or another replica read the file) comes back from where it
    is kept: this student's workspace, or the room whose teacher shared it; it is registered again (on disk, so
    the training workers find it) and every session then finds it here."""
    try:
        return _dataset(name)
    except DatasetUnavailable:
        if not name.startswith(userdata.PREFIX):
            raise
        found = _kept_dataset(name)
    if found is None:
        from aeviz.ui import classroom  # imports this module: imported here, where a room is asked

        found = classroom.room_data(name)
    if found is None:
        return _dataset(name)  # raises the DatasetUnavailable sentence again
    try:
        userdata.register_user_dataset(name, found, persist=True)
    except OSError as err:
        raise DatasetUnavailable(f"The data '{name.removeprefix(userdata.PREFIX)}' could not be stored for "
                                 f"training ({err}).") from err
    return _dataset(name)  # a failed call is not cached: this one finds it


def _kept_dataset(name: str) -> Dataset | None:
    """A user dataset from this student's workspace (None if it has none of that name)."""
    short = name.removeprefix(userdata.PREFIX)
    t = token()
    entry = next((e for e in workspace.list_entries(t, "dataset") if e.name == short), None)
    if entry is None:
        return None
    try:
        return userdata.dataset_from_bytes(workspace.load_bytes(t, "dataset", entry.id), short)
    except (userdata.DataError, workspace.StoreError) as err:
        raise DatasetUnavailable(f"The data of this model ('{short}') cannot be read back: {err}") from err


def ref(model_id: str | ModelRef) -> ModelRef:
    """The ref behind an id (KeyError for an id this session cannot see)."""
    if isinstance(model_id, ModelRef):
        return model_id
    if model_id in _zoo_refs():
        return _zoo_refs()[model_id]
    found = _mine().get(model_id) or _class_models().get(model_id)
    if found is None:
        raise KeyError(model_id)
    return found[0]


def model(r: str | ModelRef) -> Autoencoder:
    """The model behind a ref or id."""
    r = ref(r)
    if r.zoo:
        return _zoo_model(r.id)
    return (_mine().get(r.id) or _class_models()[r.id])[1]


def ids() -> list[str]:
    """Every model the picker offers: the zoo first, then shared models offered to this session, then its own."""
    offered = [i for i in st.session_state.get("offered", []) if i in _class_models()]
    return list(_zoo_refs()) + offered + list(_mine())


def offer(r: str | ModelRef) -> None:
    """Show a shared model (a class board entry, say) in this session's picker and on the Compare page."""
    offered = st.session_state.setdefault("offered", [])
    if ref(r).id not in offered:
        offered.append(ref(r).id)


def mine() -> list[ModelRef]:
    """This student's own models."""
    return [r for r, _ in _mine().values()]


def add(name: str, m: Autoencoder) -> ModelRef:
    """Keep a student's model in their session; the same weights again give back the same ref."""
    d = digest(m)
    model_id = f"mine:{d}"
    if model_id not in _mine():
        taken = {r.name for r in mine()} | set(_zoo_refs())
        shown, n = name, 2
        while shown in taken:
            shown, n = f"{name} ({n})", n + 1
        _mine()[model_id] = (ModelRef(model_id, shown, d, MINE), m)
        _save(model_id, shown, m)
    return _mine()[model_id][0]


def _save(model_id: str, shown: str, m: Autoencoder) -> None:
    """Keep a student's model on disk under their token; over the cap they get one sentence, the session keeps it."""
    data = io.to_bytes(m, getattr(m, "metrics", None), getattr(m, "history", None))
    try:
        entry = workspace.save_model(token(), shown, data)
    except workspace.StoreError as err:
        st.session_state["save_note"] = f"“{shown}” is in this session only: {err}"
        return
    st.session_state.setdefault("mine_files", {})[model_id] = entry.id


def forget(r: str | ModelRef) -> None:
    """Delete one of the student's models, from the session and from disk."""
    r = ref(r)
    _mine().pop(r.id, None)
    entry = st.session_state.get("mine_files", {}).pop(r.id, None)
    if entry:
        workspace.delete_model(token(), entry)
    if st.session_state.get("model") == r.id:
        st.session_state.pop("model", None)


def add_shared(m: Autoencoder, name: str) -> ModelRef:
    """Register a model trained on a page for every student (read-only from now on)."""
    d = digest(m)
    model_id = f"class:{d}"
    store = _class_models()
    if model_id not in store:
        m.eval()
        store[model_id] = (ModelRef(model_id, name, d, SHARED), m)
    return store[model_id][0]


def per_model(fn=None, *, show_spinner: bool | str = False, max_entries: int = 64, copy: bool = True):
    """Cache fn(model, *args) once per model: for everyone (st.cache_data) when the model is shared, in the
    student's session when it is their own; keyed by the weights digest and the (hashable) arguments.

    The wrapped function takes a ref or an id in place of the model.

    copy=False: a shared model's value is handed out as it is (st.cache_resource) instead of unpickled afresh on
    every call (a few ms per Explorer run for codes, weights and figures), with its arrays made read-only: for
    values the pages only read, as they already must for a student's own models (kept as they are).
    """
    if fn is None:
        return functools.partial(per_model, show_spinner=show_spinner, max_entries=max_entries, copy=copy)
    fn_id = f"{fn.__module__}.{fn.__qualname__}"

    def shared(fn_id: str, model_id: str, digest: str, args: tuple, kwargs: tuple):
        value = fn(model(model_id), *args, **dict(kwargs))
        return value if copy else read_only(value)

    shared.__module__, shared.__qualname__ = fn.__module__, f"{fn.__qualname__}.per_model"
    cache = st.cache_data if copy else st.cache_resource
    shared = cache(show_spinner=show_spinner, max_entries=max_entries)(shared)
    front = None if copy else _Front(max_entries)

    @functools.wraps(fn)
    def wrapper(r: str | ModelRef, *args, **kwargs):
        r = ref(r)
        kw = tuple(sorted(kwargs.items()))
        if r.scope == SHARED:
            if front is not None:
                key = (r.id, r.digest, args, kw, tuple(map(type, args)), tuple(type(v) for _, v in kw))  # 1 != True
                return front.get(key, lambda: shared(fn_id, r.id, r.digest, args, kw))
            return shared(fn_id, r.id, r.digest, args, kw)
        return _in_session((fn_id, r.digest, _hashable(args), _hashable(kw)), lambda: fn(model(r), *args, **kwargs))

    return wrapper


class _Front(widgets.Memo):
    """A shared value's last `size` keys in a plain dict, in front of st.cache_resource: a hit is one lookup.

    Streamlit's cache hashes every argument of every call with its own hasher (and records the call for replay):
    with fifty per_model calls in an Explorer run and two hundred in a Compare run, that was a tenth of a run's
    CPU (cProfile) for values already made. Keys with arrays in them (unhashable) go to Streamlit's cache, which
    hashes their content. clear_caches() empties these with Streamlit's."""

    def __init__(self, size: int):
        super().__init__(size)
        _FRONTS.add(self)


_FRONTS: weakref.WeakSet[_Front] = weakref.WeakSet()


_ONCE = _Front(8)  # cards(), _zoo_refs(), _class_models()
_MEMO = _Front(256)  # what a page keeps per model and view: the zoo's default views take ~120 entries


def memo(r: str | ModelRef, key: tuple, make):
    """make(), kept per model and `key` (hashable: what the value depends on besides the model), for pages whose
    per_model functions take arrays derived on every run: a hit costs one dict lookup instead of hashing those
    arrays. Shared models' values are kept for every session (the caller reads them, never writes), a student's
    own in their session (up to MINE_CACHE)."""
    r = ref(r)
    if r.scope == SHARED:
        return _MEMO.get((r.id, r.digest, key), make)
    return _in_session(("memo", r.digest, key), make)


def _in_session(key, make):
    """make(), kept in the student's session by key (their own models' values; the MINE_CACHE most recent)."""
    cache: OrderedDict = st.session_state.setdefault("per_model", OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = make()
    while len(cache) > MINE_CACHE:
        cache.popitem(last=False)
    return value


def forget_zoo() -> None:
    """Read pretrained/ again on the next call of cards() (for tests that point io.PRETRAINED elsewhere)."""
    _cards.clear()
    _zoo_refs_made.clear()
    _ONCE.clear()


def clear_caches() -> None:
    """Empty every cache of computed values: Streamlit's (st.cache_data, st.cache_resource) and per_model's."""
    st.cache_data.clear()
    st.cache_resource.clear()
    for front in list(_FRONTS):
        front.clear()


def read_only(value):
    """value, with every numpy array in it (through dicts, lists and tuples) made read-only: for values cached once
    and handed to every session as they are."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, dict):
        for v in value.values():
            read_only(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            read_only(v)
    return value


def _hashable(value):
    """A dict key for per_model's session cache: arrays by their bytes' hash, containers element by element."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, str(value.dtype), hashlib.sha1(value.tobytes()).hexdigest())
    if isinstance(value, (tuple, list)):
        return tuple(_hashable(v) for v in value)
    return value


def codes(r: str | ModelRef) -> np.ndarray:
    """Test-set codes of a model: from its zoo file when it holds them, else computed once (per_model)."""
    z = view(r, "codes")
    return z if z is not None else _codes(r)


@per_model(copy=False)
def _codes(m: Autoencoder) -> np.ndarray:
    return analysis.embed(m, dataset(m.config.dataset).x_test)


def describe(model_id: str) -> str:
    """One-line option label: name, variant and its headline figure."""
    r = ref(model_id)
    if not r.zoo:
        return f"{r.name} · {model(r).config.label} · {'yours' if r.mine else 'shared'}"
    card = cards()[r.id]
    mse = card.metrics.get("test_mse")
    return f"{r.name} · {card.config.label}" + (f" · test MSE {mse:.4f}" if mse is not None else "")


def current() -> ModelRef | None:
    """The model chosen in the sidebar (falls back to the default pretrained model)."""
    all_ids = ids()
    model_id = st.session_state.get("model")
    if model_id not in all_ids:
        model_id = DEFAULT_MODEL if DEFAULT_MODEL in all_ids else (all_ids[0] if all_ids else None)
    return None if model_id is None else ref(model_id)


def select(r: str | ModelRef) -> None:
    """Make r the picked model: at once if the picker is not drawn yet in this run, else from the next run."""
    from streamlit.errors import StreamlitAPIException

    model_id = ref(r).id
    try:
        st.session_state["model"] = model_id
    except StreamlitAPIException:  # the sidebar's selectbox already ran: it takes the id on the next run
        st.session_state["model_next"] = model_id


# --- the sidebar: the model picker and the upload box ----------------------------------------------------

def _upload_key() -> str:
    """The uploader's key changes after every file, so a handled file leaves the box instead of piling up."""
    return f"upload_{st.session_state.get('upload_round', 0)}"


def _on_upload() -> None:
    upload = st.session_state.get(_upload_key())
    st.session_state["upload_round"] = st.session_state.get("upload_round", 0) + 1  # empties the box
    st.session_state["upload_note"] = None
    if upload is None:
        return
    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_MB * 2**20:
        st.session_state["upload_note"] = ("error", f"“{upload.name}” is larger than {MAX_UPLOAD_MB} MB, so it is "
                                           "not an aeviz checkpoint (they are far smaller).", "")
        return
    try:
        m = aeviz.load(data, name=upload.name)
    except aeviz.CheckpointError as err:
        st.session_state["upload_note"] = ("error", f"“{upload.name}” is not an aeviz checkpoint that this app can "
                                           "open; your current model stays.", str(err))
        return
    r = add(upload.name.removesuffix(".safetensors"), m)
    st.session_state["model"] = r.id
    st.session_state["upload_note"] = ("success", f"Loaded “{upload.name}” as {r.name}.", "")


def sidebar() -> None:
    """The shared model picker: pretrained, uploaded or trained in this session."""
    with st.sidebar:
        all_ids = ids()
        if not all_ids:
            st.warning("No models yet: pretrained/ is empty, so train one on the Explorer page.")
            return
        st.session_state["model"] = st.session_state.pop("model_next", None) or current().id  # see select()
        st.selectbox("Model", all_ids, key="model", format_func=describe, disabled=frozen(),
                     help="Pretrained models load at once; models you train or upload are yours: other students "
                          "do not see them.")
        _your_models()
        with widgets.lazy_expander("Upload a checkpoint", UPLOAD_BOX) as box:  # its content runs while it is open
            if box is None:
                return
            st.file_uploader(f"An aeviz .safetensors file (at most {MAX_UPLOAD_MB} MB)", type=["safetensors"],
                             key=_upload_key(), on_change=_on_upload)
            note = st.session_state.get("upload_note")
            if note:
                kind, sentence, details = note
                (st.error if kind == "error" else st.success)(sentence)
                if details:
                    with st.popover("Details"):
                        st.text(details)


def _your_models() -> None:
    """The student's own models: where they are kept, and a way to delete them."""
    if st.session_state.get("save_note"):
        st.warning(st.session_state["save_note"])
    if not _mine():
        return
    with st.expander(f"Your models ({len(_mine())})"):
        st.caption(f"Kept on this server for {workspace.max_age_days():.0f} days after their last use and found again "
                   f"through your page address (keep it private). At most {workspace.student_mb():.0f} MB in all.")
        for r in mine():
            st.button(f"Delete {r.name}", key=f"forget::{r.id}", on_click=forget, args=(r.id,),
                      icon=":material/delete:")


def explain(text: str, latex: str | None = None) -> None:
    """The short 'what am I looking at' note under a view, with an optional equation."""
    st.caption(text)
    if latex:
        st.latex(latex)


# --- models trained on the page for everyone (seeded, so every student gets the same weights) ---

def quick_model(mc: ModelConfig, tc: TrainConfig, label: str = "") -> tuple[ModelRef, float]:
    """(ref, training seconds) for a config, trained once per server with a progress bar, then shared read-only."""
    store = _quick_store()
    if (mc, tc) not in store:
        bar = st.progress(0.0, text=f"Training {label or mc.label} here ({tc.epochs} epochs)…")

        def show(p: aeviz.Progress) -> None:
            if p.epoch_end:
                bar.progress(p.step / p.total_steps, text=f"Training {label or mc.label}: epoch {p.epoch}/{tc.epochs}")

        m, hist = aeviz.train(mc, tc, dataset(mc.dataset), show)
        bar.empty()
        store[(mc, tc)] = (add_shared(m, label or mc.label), hist.seconds)
    return store[(mc, tc)]


@st.cache_resource(show_spinner=False)
def _quick_store() -> dict:
    return {}


def is_trained(mc: ModelConfig, tc: TrainConfig) -> bool:
    """Whether quick_model would answer at once."""
    return (mc, tc) in _quick_store()


def sweep_source(k: int, dataset: str = "mnist") -> str | None:
    """Name of the pretrained vanilla MLP autoencoder with latent size k on dataset, if there is one."""
    return sweep.pretrained_for(k, dataset, cards().values())


def sweep_model(k: int, dataset: str = "mnist", train: bool = True) -> tuple[ModelRef | None, str]:
    """(ref, where it comes from) for latent size k: pretrained if one exists, else trained here (if train)."""
    name = sweep_source(k, dataset)
    if name:
        return ref(name), f"pretrained {name}"
    mc, tc = sweep.quick_configs(dataset, k)
    if not (train or is_trained(mc, tc)):
        return None, "not trained yet"
    r, seconds = quick_model(mc, tc, f"an autoencoder with z={k}")
    return r, f"trained here: {tc.epochs} epochs, {seconds:.0f} s"


def image_model() -> ModelRef | None:
    """The sidebar's model if it is an image model; otherwise one st.info sentence and None."""
    r = current()
    if r is None:
        st.info("There is no model yet: train one on the Explorer page or add checkpoints to pretrained/.")
        return None
    if not is_image_model(model(r)):
        st.info(f"This page works on images; the sidebar model '{r.name}' is for {model(r).config.dataset}. "
                "Pick an image model (for example ae-mlp-z16 or vae-mlp-z16) in the sidebar.")
        return None
    return r


def current_id() -> str | None:
    """The id of the sidebar's model."""
    r = current()
    return None if r is None else r.id


def config(r: str | ModelRef) -> ModelConfig:
    """A model's config; for the zoo read from its card, without loading the weights."""
    r = ref(r)
    return cards()[r.id].config if r.zoo else model(r).config


def name(r: str | ModelRef) -> str:
    """What people read for a model."""
    return ref(r).name


@st.cache_data(show_spinner=False, max_entries=64)
def _zoo_views(name: str, digest: str) -> dict[str, np.ndarray]:
    try:
        return io.load_views(cards()[name])
    except io.CheckpointError:  # the page then computes what it needs, as for a model trained here
        return {}


def views(r: str | ModelRef) -> dict[str, np.ndarray]:
    """The zoo's precomputed views of a model (pca, umap, snapshots); empty for other models or a bad file."""
    r = ref(r)
    return _zoo_views(r.id, r.digest) if r.zoo else {}


@st.cache_data(show_spinner=False, max_entries=256)
def _zoo_view(name: str, digest: str, key: str) -> np.ndarray | None:
    return _zoo_views(name, digest).get(key)


def view(r: str | ModelRef, key: str) -> np.ndarray | None:
    """One of views(r) ("codes", "errors", ...), or None: cache_data hands out copies, and a caller that wants the
    codes should not copy every map and snapshot with them on every run."""
    r = ref(r)
    return _zoo_view(r.id, r.digest, key) if r.zoo else None
