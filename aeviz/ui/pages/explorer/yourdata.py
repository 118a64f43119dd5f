"""The Explorer's "Your data" tab: read your own file (a CSV/TSV table or time series, .npy/.npz arrays, a .zip of
images), see what came out, and train the default model on it in the normal training panel.

A dataset is registered (aeviz.userdata, persist=True) only when its training starts: the worker process loads it
by name. It is then also kept in the student's workspace (aeviz.workspace, under the token in the page address) as
the dataset read, with its split, scaler and notes, so it is listed again after a reload. Bad input gets the one
sentence of its DataError; the file, the options and the sidebar's model all stay.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import streamlit as st

from aeviz import userdata as ud
from aeviz import workspace
from aeviz.classroom.store import size_text
from aeviz.config import ModelConfig, TrainConfig
from aeviz.data import Dataset, DatasetUnavailable
from aeviz.ui import classroom, state, training, widgets
from aeviz.ui.pages.explorer import draw

FILE = "ex_data_file"  # upload(): (file name, bytes, sha256) being read; kept across reruns (the box empties itself)
STORED = "ex_data_stored"  # (entry id, name) of a dataset picked from the student's workspace
CLASS = "ex_data_class"  # (name, title) of the dataset the teacher shared with the room, when picked
READS = "ex_data_reads"  # the last few reads: (source, options) -> (Dataset or None, error or None)
NAMES = "ex_data_names"  # 'user:NAME' of the datasets this student trained on or picked, for "Train your own"
TRAIN_KEY = "ex_data_train"  # the training panel's key
UPLOAD_MB = ud.MAX_BYTES // 1_000_000
TYPES = ["csv", "tsv", "txt", "npy", "npz", "zip"]
MISSING = {"refuse": "stop and tell me", "drop": "leave those rows out",
           "fill": "fill them (column mean; a series interpolates)"}
KEEP_READS = 3  # the read shown, its class list (for the anomaly value) and the one before: memory is per student
SMALL_INPUT = 100  # vectors up to this length get a small MLP
MIN_STEPS, MAX_EPOCHS = 400, 300  # the default training takes at least this many optimiser steps, in at most this
NO_LABEL, NO_ANOMALY = "(none)", "(none: the labels are classes)"
CAPS = (f"At most {UPLOAD_MB} MB a file; {ud.MAX_ROWS:,} samples (rows, series, windows or images); "
        f"{ud.MAX_FEATURES:,} numbers a sample (a 64×64 image) and {ud.MAX_VALUES / 1e6:.0f} million in all; a zip "
        f"may unpack to {ud.MAX_UNZIPPED / 1e6:.0f} MB, and its images become grayscale squares of at most "
        f"{ud.MAX_SIDE}×{ud.MAX_SIDE} pixels.")


def render(shared: classroom.RoomDataset | None) -> None:
    """The tab: the student's kept datasets, the upload box, the options, a preview and the Train button. shared: the
    room's dataset (classroom.shared_dataset(), read once by the page), or None."""
    st.caption("Bring your own data: a CSV or TSV table with a header (numeric columns are features, one column may "
               "hold labels), a time series (one per row, or one long series cut into windows), `.npy`/`.npz` "
               "arrays (`x`, optional `y`) or a `.zip` of PNG/JPEG images (subfolders are labels). " + CAPS)
    _kept()
    _class_data(shared)
    st.file_uploader("Your data file", type=TYPES, key=_box(), on_change=_on_upload, max_upload_size=UPLOAD_MB,
                     help="Read here, in memory; nothing is kept until you train on it.")
    if st.session_state.get("ex_data_note"):
        st.warning(st.session_state["ex_data_note"])
    ds, error = _current()
    if error:
        st.error(error)
    if ds is not None:
        _preview(ds)
        _share(ds, shared)
        _train(ds)


# --- the source: an upload, or a dataset kept earlier -----------------------------------------------------

def _box() -> str:
    """The uploader's key changes after every file, so a handled file leaves the box."""
    return f"ex_data_box_{st.session_state.get('ex_data_round', 0)}"


def _on_upload() -> None:
    upload = st.session_state.get(_box())
    st.session_state["ex_data_round"] = st.session_state.get("ex_data_round", 0) + 1
    if upload is not None:
        use_file(upload.name, upload.getvalue())


def upload(name: str, raw: bytes) -> tuple[str, bytes, str]:
    """What FILE holds for a file: its name, bytes and sha256, hashed once rather than on every rerun (tests put
    this into the session as the upload box would: AppTest has no file uploads)."""
    return name, bytes(raw), hashlib.sha256(raw).hexdigest()


def _use(key: str, value) -> None:
    """Show this source from now on (a file, a kept dataset or the class's), and no other."""
    for other in (FILE, STORED, CLASS):
        st.session_state.pop(other, None)
    if value is not None:
        st.session_state[key] = value


def use_file(name: str, raw: bytes) -> None:
    """Read this file from now on."""
    _use(FILE, upload(name, raw))


def _use_kept(entry_id: str, name: str) -> None:
    _use(STORED, (entry_id, name))


def _forget_file() -> None:
    _use(FILE, None)


def _current() -> tuple[Dataset | None, str | None]:
    """(the dataset shown, or None; the sentence that says why not, or None)."""
    if st.session_state.get(FILE):
        name, raw, digest = st.session_state[FILE]
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"Reading **{name}** ({size_text(len(raw))})")
        c2.button("Forget this file", key="ex_data_forget", on_click=_forget_file, icon=":material/close:")
        try:
            options = _options(name, raw, digest)
        except ud.DataError as err:
            return None, str(err)
        return _read(name, raw, digest, options)
    if st.session_state.get(STORED):
        entry_id, name = st.session_state[STORED]
        st.markdown(f"Your kept dataset **{name}**")
        return _cached(("kept", entry_id), lambda: _load_kept(entry_id, name))
    if st.session_state.get(CLASS):
        name, title = st.session_state[CLASS]
        st.markdown(f"The class dataset **{classroom.plain(title)}**")
        return _cached(("class", name), lambda: state.dataset(name))
    return None, None


def _cached(key: tuple, read) -> tuple[Dataset | None, str | None]:
    reads: dict = st.session_state.setdefault(READS, {})
    if key not in reads:
        try:
            with st.spinner("Reading the data…"):
                reads[key] = (read(), None)
        except (ud.DataError, workspace.StoreError, DatasetUnavailable) as err:
            reads[key] = (None, str(err))
        while len(reads) > KEEP_READS:
            reads.pop(next(iter(reads)))
    return reads[key]


def _read(name: str, raw: bytes, digest: str, options: dict) -> tuple[Dataset | None, str | None]:
    """The file read with these options (kept for a few reruns), or the DataError's sentence."""
    key = hashlib.sha256((digest + json.dumps(options, sort_keys=True)).encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem).strip("-._")[:40] or "data"
    short = f"{slug}-{key}"  # same file and options, same name, for every student
    return _cached(("file", key), lambda: ud.read_data(raw, name=short, file_name=name, **options))


# --- options: only those that matter for the kind of file -------------------------------------------------

def _options(name: str, raw: bytes, digest: str) -> dict:
    """ReadOptions fields for this file, from widgets keyed by the file (each file keeps its own choices)."""
    fid = digest[:8]
    k = lambda what: f"ex_data_{what}::{fid}"
    suffix = Path(name).suffix.lower()
    if suffix == ".zip":
        side = st.slider("Image side (pixels)", ud.MIN_SIDE, ud.MAX_SIDE, 28, key=k("side"),
                         help="Every image becomes grayscale and is resized to side × side pixels.")
        return {"side": int(side)}
    c = st.columns(4)
    opts: dict = {}
    if suffix in ud.TEXT_SUFFIXES:
        series = c[0].radio("Each line is", ["a sample (a table)", "a step or a series"], key=k("what"),
                            help="A time series: one series per line, or one long series (a line per step, "
                                 "cut into windows).") != "a sample (a table)"
        columns = ud.columns(raw, name)
        if series:
            opts["kind"] = "series"
            opts.update(_windows(c[1], c[2], k, "0: one series per line"))
        if not opts.get("window"):
            opts.update(_labels((name, raw, digest), columns, c, k, opts, table=not series))
    else:  # arrays
        opts.update(_windows(c[1], c[2], k, "0: the array holds the samples"))
    opts["missing"] = c[3].radio("Gaps (missing values)", list(MISSING), format_func=MISSING.get, key=k("missing"),
                                 help="'stop and tell me' says how many rows have gaps and where the first is.")
    return opts


def _windows(left, right, k, zero: str) -> dict:
    window = left.number_input(f"Window length in steps ({zero})", 0, ud.MAX_FEATURES, 0, key=k("window"),
                               help="Cuts one long series into samples of this many steps.")
    if not window:
        return {}
    stride = right.number_input("Stride (0: the window length)", 0, ud.MAX_FEATURES, 0, key=k("stride"),
                                help="Steps from one window's start to the next; smaller strides overlap.")
    return {"window": int(window), "stride": int(stride)}


def _labels(file: tuple[str, bytes, str], columns: list[str], c, k, opts: dict, table: bool) -> dict:
    """Label column, and for a table the anomaly value and the columns to leave out."""
    if not columns:
        return {}
    out: dict = {}
    label = c[1].selectbox("Label column", [NO_LABEL, *columns], key=k("label"),
                           help="Classes colour the latent map; or pick the value that marks an anomaly.")
    if label != NO_LABEL:
        out["label_column"] = label
    if not table:
        return out
    ignore = [x for x in c[2].multiselect("Leave out", columns, key=k("ignore"),
                                          help="Columns that are not measurements: ids, dates, free text.")
              if x != label]
    if ignore:
        out["ignore"] = ignore
    if label != NO_LABEL:
        classes, _ = _read(*file, {**opts, **out, "missing": st.session_state.get(k("missing"), "refuse")})
        if classes is not None and classes.label_names:
            anomaly = st.selectbox("Anomaly value", [NO_ANOMALY, *classes.label_names], key=k(f"anomaly::{label}"),
                                   help="Rows with this label are anomalies: the model trains on the other rows, "
                                        "and the test set adds every anomaly (for the ROC on the anomaly page).")
            if anomaly != NO_ANOMALY:
                out["anomaly_value"] = anomaly
    return out


# --- what came out ------------------------------------------------------------------------------------------

def _preview(ds: Dataset) -> None:
    about = ds.description
    if st.session_state.get(CLASS):  # read from the teacher's file, not from yours
        about = "The teacher's " + about.removeprefix("Your ") if about.startswith("Your ") else about
    st.markdown(f"**{about}**")
    m = st.columns(4)
    m[0].metric("training samples", f"{len(ds.x_train):,}")
    m[1].metric("test samples", f"{len(ds.x_test):,}")
    m[2].metric("each sample", ud.sample_text(ds))
    m[3].metric("classes", len(ds.label_names) or "—",
                help="Distinct labels (they colour the map); '—' when there are none or they are numbers.")
    for note in ds.extras.get("notes", []):
        st.caption(f"• {note}")
    kind = draw.kind(ds)
    if kind == "image":
        widgets.image(draw.mosaic(ds.x_train[:16].numpy(), 8, size=48),
                      caption="The first 16 training images, as the model sees them")
    elif kind == "signal":
        st.plotly_chart(draw.signal_figure({f"training sample {i}": ds.x_train[i].numpy() for i in range(3)},
                                           columns=draw.series_columns(ds)), key="ex_data_preview")
    else:
        rows = draw.table_values(ds, {f"row {i}": ds.x_train[i].numpy() for i in range(min(5, len(ds.x_train)))})
        st.dataframe(rows, hide_index=True, height=min(300, 35 * (len(rows["feature"]) + 1) + 3),
                     key="ex_data_preview")
        st.caption("The first training rows, in the file's units (features as rows).")


def default_configs(ds: Dataset) -> tuple[ModelConfig, TrainConfig]:
    """The default model for any data: an MLP with a 2-D code and mean squared error; a small net for short vectors
    (tables), a wider one for images and long series. 20 epochs, or as many more (up to MAX_EPOCHS) as a small
    dataset needs for MIN_STEPS optimiser steps: 20 epochs of 96 rows are 40 steps, which learn little more than the
    mean row (test MSE 6.5 times PCA's on a 4-column table; 400 steps: 0.84 times)."""
    d, n = int(np.prod(ds.sample_shape)), len(ds.x_train)
    hidden = (64, 32) if d <= SMALL_INPUT else (256, 128)
    mc = ModelConfig(dataset=ds.name, input_shape=ds.sample_shape, arch="mlp", latent_dim=2, hidden=hidden,
                     recon="mse")
    batch = 32 if n < 5000 else 128
    epochs = int(np.clip(np.ceil(MIN_STEPS / np.ceil(n / batch)), 20, MAX_EPOCHS))
    return mc, TrainConfig(epochs=epochs, batch_size=batch, lr=3e-3, seed=0)


def _train(ds: Dataset) -> None:
    mc, tc = default_configs(ds)
    st.caption(f"**Train on this data** trains the default model: an MLP ({' → '.join(map(str, mc.hidden))} "
               f"units) with a 2-D code, {tc.epochs} epochs of mean squared error"
               + (" (more than 20 because the data are few)" if tc.epochs > 20 else "") + ". It becomes the sidebar's "
               "model; for other settings use the 'Train your own' tab, which lists this data once you trained on it.")
    if not register_on_start(TRAIN_KEY, ds):
        return
    training.train_with_progress(mc, tc, key=TRAIN_KEY, name=f"ae-mlp-z2-{ds.name.removeprefix(ud.PREFIX)}",
                                 label="Train on this data")


def register_on_start(key: str, ds: Dataset) -> bool:
    """When the Train button `key` was pressed on this run, register ds first (the worker loads the data by name);
    False, with one sentence, when it could not be stored."""
    if not st.session_state.get(f"{key}::start"):
        return True
    try:
        register(ds)
    except OSError as err:
        st.error(f"The data could not be stored for training ({err}); try again.")
        return False
    return True


def register(ds: Dataset) -> str:
    """Make ds loadable by name for the worker (persist=True) and keep it in the student's workspace."""
    name = ud.register_user_dataset(ds.name, ds, persist=True)
    names = st.session_state.setdefault(NAMES, [])
    if name not in names:
        names.append(name)
    short = name.removeprefix(ud.PREFIX)
    t = state.token()
    if any(e.name == short for e in workspace.list_entries(t, "dataset")):
        return name
    try:
        workspace.save_dataset(t, f"{short}.safetensors", ud.dataset_bytes(ds))
        st.session_state.pop("ex_data_note", None)
    except workspace.StoreError as err:
        st.session_state["ex_data_note"] = f"“{short}” is in this session only: {err}"
    return name


# --- the class's dataset: the teacher shares it, everyone in the room uses it -------------------------------------

def _class_data(shared: classroom.RoomDataset | None) -> None:
    """The dataset the teacher shared with the room, for everyone in it."""
    if shared is None:
        return
    with st.container(border=True, key="ex_data_class_box"):
        a, b = st.columns([6, 1], vertical_alignment="center")
        a.markdown(f":material/school: **{classroom.CLASS_DATA}{classroom.plain(shared.title)}** · the dataset shared "
                   f"with room {shared.code}: {classroom.dataset_sentence(shared)}")
        b.button("Use", key="ex_data_use_class", on_click=_use, args=(CLASS, (shared.name, shared.title)),
                 help="Look at it and train on it here, or pick it under 'Train your own'.")


def _share(ds: Dataset, shared: classroom.RoomDataset | None) -> None:
    """The teacher's control: share the dataset shown with the room, in place of the one shared before."""
    s = classroom.seat()
    if s is None or not s.teacher:
        return
    source = (ds.extras.get("preprocessing") or {}).get("source") or {}
    title_key = f"ex_data_title::{ds.name}"
    if title_key not in st.session_state:
        st.session_state[title_key] = (shared.title if shared is not None and shared.name == ds.name else
                                       Path(str(source.get("file") or ds.name.removeprefix(ud.PREFIX))).stem[:40])
    with st.container(border=True, key="ex_data_share"):
        if shared is None:
            st.markdown(f":material/school: **Room {s.code}** has no class dataset yet.")
        elif shared.name == ds.name:
            st.markdown(f":material/school: **Room {s.code}** has this dataset as "
                        f"“{classroom.CLASS_DATA}{classroom.plain(shared.title)}”.")
        else:
            st.markdown(f":material/school: **Room {s.code}** has “{classroom.CLASS_DATA}"
                        f"{classroom.plain(shared.title)}”; sharing this one replaces it.")
        a, b = st.columns([3, 2], vertical_alignment="bottom")
        a.text_input("Its name for the class", key=title_key, max_chars=40)
        b.button("Share this dataset with the class", key="ex_data_share_btn", on_click=_on_share, args=(ds, title_key),
                 icon=":material/group_add:", type="primary",
                 help="Every student of the room finds it where data are chosen and can train on it; the board "
                      "compares their entries on its test samples.")
        st.caption(f"The split and scaled arrays are shared, not your file: at most "
                   f"{size_text(classroom.store().limits.bytes_per_dataset)}. Only you, with the room's teacher "
                   "secret, can replace it (share another) or remove it (on the Class board).")
        out = st.session_state.pop("ex_data_share_out", None)
        if out:
            (st.success if out[0] == "success" else st.error)(out[1])


def _on_share(ds: Dataset, title_key: str) -> None:
    st.session_state["ex_data_share_out"] = classroom.share_dataset(ds, st.session_state.get(title_key, ""))


# --- the student's kept datasets ------------------------------------------------------------------------------

def _load_kept(entry_id: str, name: str) -> Dataset:
    return ud.dataset_from_bytes(workspace.load_bytes(state.token(), "dataset", entry_id), name)


def _kept() -> None:
    entries = [e for e in workspace.list_entries(state.token(), "dataset") if ud.NAME.match(e.name)]
    if not entries:
        return
    with st.expander(f"Your datasets ({len(entries)})", expanded=not st.session_state.get(FILE)):
        st.caption(f"Data you trained on, kept with your models for {workspace.max_age_days():.0f} days after their "
                   "last use (your page address finds them again). Pick one to look at it and train again.")
        for e in entries:
            c1, c2, c3 = st.columns([6, 1, 1])
            c1.markdown(f"**{e.name}** · {size_text(e.size)} · {time.strftime('%d %b %H:%M', time.localtime(e.saved))}")
            c2.button("Use", key=f"ex_data_use::{e.id}", on_click=_use_kept, args=(e.id, e.name))
            c3.button("Delete", key=f"ex_data_del::{e.id}", on_click=_delete_kept, args=(e.id,),
                      icon=":material/delete:")


def _delete_kept(entry_id: str) -> None:
    workspace.delete(state.token(), "dataset", entry_id)
    if (st.session_state.get(STORED) or ("",))[0] == entry_id:
        st.session_state.pop(STORED, None)


def names() -> list[str]:
    """'user:NAME' of the data this student trained on or picked in this session."""
    return list(st.session_state.get(NAMES, []))
