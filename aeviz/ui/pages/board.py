"""The class board: every model of the room side by side, with the metrics, latent maps, reconstructions and samples
all drawn from the same test images and the same seed."""
from __future__ import annotations

import html
from collections import Counter

import numpy as np
import streamlit as st

import aeviz
from aeviz import io, plots
from aeviz.classroom import LimitError, NotFound, StoreError, board
from aeviz.classroom.store import too_big_message
from aeviz.data import DatasetUnavailable
from aeviz.ui import classroom, state, widgets

ZOOM = 2  # pixels per image pixel in the picture rows
MAP_COLUMNS = 5  # small latent maps per row
LIVE_S = 2.0  # how often the teacher's board looks for new entries
COLUMNS = {  # card key -> (column title, number format): the model card's figures the table shows
    "test_mse": ("test MSE ↓", "%.4f"), "mse_ratio": ("MSE ÷ PCA's ↓", "%.2f"), "knn_acc": ("k-NN accuracy ↑", "%.3f"),
    "nelbo": ("−ELBO (nats) ↓", "%.1f"), "psnr_denoised": ("denoised PSNR (dB) ↑", "%.2f")}


# --- cached per entry, by the hash of its bytes ---------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=512)
def _figures(sha256: str, _code: str, _entry) -> board.Figures:
    model = classroom.entry_model(_code, _entry)
    data = state.dataset(model.config.dataset)
    return board.figures(model, data, images=_images_of(data))


@st.cache_data(show_spinner=False, max_entries=512)
def _card(sha256: str, _code: str, _entry) -> dict:
    """The model card of an entry whose metadata lacks it (one submitted by another tool)."""
    model = classroom.entry_model(_code, _entry)
    return board.entry_meta(model, state.dataset(model.config.dataset))["card"]


@st.cache_resource(show_spinner=False, max_entries=32)
def _maps_figure(key: tuple, _maps: list, label_names: tuple):
    """The small multiples of these entries (key: their hashes and titles), built once: building costs more than
    drawing. Shared read-only, as st.plotly_chart does not change the figure it is given."""
    return plots.small_multiples(_maps, label_names, ncols=MAP_COLUMNS)


def _images_of(data) -> bool:
    shape = data.sample_shape
    return data.kind == "image" or (len(shape) == 2 and min(shape) > 1)


# --- the page ---------------------------------------------------------------------------------------------------

def render() -> None:
    """Draw the page."""
    st.title("Class board")
    st.caption("Every model the class submitted, side by side: the same test images, the same test points on each "
               "latent map, and for VAEs the same random codes, so what differs is what each student chose.")
    s = classroom.seat()
    if s is None:
        st.info("The board belongs to a class: join a room in the sidebar with the code or link your teacher gives "
                "you, or open a room to teach.")
        return
    try:
        every = classroom.store().entries(s.code, include_hidden=True)
    except (NotFound, StoreError) as err:
        st.warning(str(err))
        return
    entries = every if s.teacher else [e for e in every if not e.hidden]  # a student's own hidden ones: below
    mine = [e for e in every if e.member_id == s.member_id]
    _live(s, every)
    shared = classroom.shared_dataset()
    _class_dataset(s, shared)
    out = st.session_state.pop("board_manage_out", None)  # what the last hide, remove or withdraw did
    if out:
        (st.success if out[0] == "success" else st.error)(out[1])
    _submit_box(s, mine)
    if not entries:
        st.info(f"Room {s.code} has no entries yet. Train a model (Explorer → Train your own), then submit it above.")
        if mine:
            _manage(s, entries, mine)
        return
    shown = _filtered(entries, shared)
    if not shown:
        st.info("No entry passes these filters.")
        return
    _table(s, shown)
    _open_in_compare(s, shown)
    drawn = _figures_of(s, shown)  # each entry's figures, once per run for both sections
    _maps(s, shown, drawn)
    _pictures(s, shown, shared, drawn)
    _manage(s, entries, mine)


def _class_dataset(s: classroom.Seat, shared) -> None:
    """The dataset the teacher shared with the room, at the top of the board; the teacher can take it away."""
    out = st.session_state.pop("board_data_out", None)
    if out:
        (st.success if out[0] == "success" else st.error)(out[1])
    if shared is None:
        if s.teacher:
            st.caption(":material/dataset: No class dataset: share one of yours from Explorer → Your data, and "
                       "every student can train on it.")
        return
    with st.container(border=True, key="board_class_data"):
        a, b = st.columns([5, 1], vertical_alignment="center")
        a.markdown(f":material/dataset: {classroom.dataset_headline(shared)}")
        a.caption(classroom.dataset_sentence(shared) + " Train on it in Explorer → Train your own (or Your data), "
                  "then submit the model here.")
        if s.teacher:
            b.button("Remove it", key="board_unshare", icon=":material/delete:", on_click=_unshare,
                     help="Students can no longer pick it; entries trained on it stay on the board.")


def _unshare() -> None:
    st.session_state["board_data_out"] = classroom.unshare_dataset()


def _signature(entries) -> tuple:
    return tuple((e.id, e.hidden) for e in entries)


def _live(s: classroom.Seat, entries) -> None:
    st.session_state["board_seen"] = _signature(entries)
    if s.teacher:
        _watch()


@st.fragment(run_every=LIVE_S)
def _watch() -> None:
    """The teacher's board redraws itself when entries arrive, leave, or are hidden."""
    s = classroom.seat()
    if s is None:
        return
    try:
        now = _signature(classroom.store().entries(s.code, include_hidden=True))
    except (NotFound, StoreError):
        return
    if now != st.session_state.get("board_seen"):
        st.rerun(scope="app")


# --- submitting ----------------------------------------------------------------------------------------------------

def _submit_box(s: classroom.Seat, mine) -> None:
    ss = st.session_state
    limits = classroom.store().limits
    with st.expander("Submit a model to the board", icon=":material/upload:", expanded=not (mine or s.teacher)):
        options = [r.id for r in state.mine()] + list(state.cards())
        labels = {i: _label(i) for i in options}
        current = state.current_id()
        if ss.get("board_model") not in options:
            ss["board_model"] = current if current in options else (options[0] if options else None)
        a, b = st.columns(2)
        a.selectbox("Model", options, key="board_model", format_func=labels.get, on_change=_forget_note,
                    help="One you trained or uploaded (yours), or a pretrained one with your note on why.")
        b.text_input("Name on the board", key="board_name", max_chars=40, placeholder="the model's name",
                     on_change=_forget_note)
        st.text_input("What you chose, in a line (optional)", key="board_note", max_chars=200,
                      placeholder="e.g. β = 4, 30 epochs", on_change=_forget_note)
        if st.button("Submit", key="board_submit", icon=":material/send:", type="primary", disabled=not options):
            with st.spinner("Measuring your model on the test set for the board…"):
                _submit(s)
            if ss["board_note_out"][0] == "success":
                st.rerun()  # the board, drawn above from before the click, then shows the new entry at once
        st.caption(f"Each entry is a .safetensors checkpoint of at most {limits.bytes_per_entry / 1e6:g} MB; a room "
                   f"holds {limits.entries_per_room} entries and each student submits at most "
                   f"{limits.submissions_per_minute} a minute.")
    note = ss.get("board_note_out")  # kept until the form changes: the board's own live reruns must not hide it
    if note:  # below the box, which closes once the student has an entry
        (st.success if note[0] == "success" else st.error)(note[1])


def _forget_note() -> None:
    st.session_state.pop("board_note_out", None)


def _label(model_id: str) -> str:
    r = state.ref(model_id)
    return f"{r.name} · {state.config(r).label} · {'yours' if r.mine else 'pretrained' if r.zoo else 'shared'}"


def _submit(s: classroom.Seat) -> None:
    ss = st.session_state
    r = state.ref(ss["board_model"])
    m = state.model(r)
    blob = state.cards()[r.id].path.read_bytes() if r.zoo else io.to_bytes(
        m, getattr(m, "metrics", None), getattr(m, "history", None))
    name = (ss.get("board_name") or "").strip() or r.name[:40]
    limit = classroom.store().limits.bytes_per_entry
    try:
        if len(blob) > limit:
            raise LimitError(too_big_message(len(blob), limit))
        checked = aeviz.load(blob, name=f"{name}.safetensors")  # the checks every upload passes; never unpickles
        meta = board.entry_meta(checked, state.dataset(checked.config.dataset), (ss.get("board_note") or "").strip())
        entry = classroom.store().submit(s.code, s.token, name, meta, blob)
    except (LimitError, PermissionError, NotFound, ValueError, StoreError, DatasetUnavailable) as err:
        # CheckpointError is a ValueError
        ss["board_note_out"] = ("error", str(err))
        return
    classroom.remember_entry(r.id, entry.id)
    try:  # while the student waits anyway: the board then draws the entry from the cache, for everyone
        _figures(entry.sha256, s.code, entry)
    except (NotFound, ValueError):
        pass  # (withdrawn meanwhile; the board says so when it draws)
    ss["board_note_out"] = ("success", f"“{entry.name}” is on the board of room {s.code} as entry {entry.id}.")
    ss["board_seen"] = None


# --- filters, sort, table ----------------------------------------------------------------------------------------------

def _meta(code: str, entry) -> dict:
    meta = dict(entry.meta)
    if not isinstance(meta.get("card"), dict):
        try:
            meta["card"] = _card(entry.sha256, code, entry)
        except (NotFound, ValueError, DatasetUnavailable):
            meta["card"] = {}
    return meta


def _filtered(entries, shared) -> list:
    """The entries of one dataset (the class dataset's first, if any) that pass the filters, in the chosen order."""
    metas = {e.id: e.meta for e in entries}
    datasets = [d for d, _ in Counter(m.get("dataset", "?") for m in metas.values()).most_common()]
    if shared is not None and shared.name in datasets:
        datasets.remove(shared.name)
        datasets.insert(0, shared.name)
    if st.session_state.get("board_data") not in datasets:
        st.session_state.pop("board_data", None)
    c = st.columns([2, 2, 2, 2, 2])  # the data's name can be "class: <a title of 40 characters>"
    ds = c[0].selectbox("Data", datasets, key="board_data", format_func=lambda d: classroom.data_label(d, shared),
                        help="Entries are compared on the same test images, so one dataset at a time.")
    here = [e for e in entries if metas[e.id].get("dataset", "?") == ds]
    objectives = sorted({metas[e.id].get("objective", "?") for e in here})
    latents = sorted({metas[e.id].get("latent_dim") for e in here if metas[e.id].get("latent_dim") is not None})
    betas = sorted({metas[e.id]["beta"] for e in here if metas[e.id].get("beta") is not None})
    chosen_obj = c[1].multiselect("Objective", objectives, key="board_obj", placeholder="all")
    chosen_lat = c[2].multiselect("Latent size", latents, key="board_lat", placeholder="all")
    beta = None
    if len(betas) > 1:
        beta = c[3].select_slider("β (VAEs)", betas, value=(betas[0], betas[-1]), key="board_beta")
    sort = c[4].selectbox("Sort by", list(board.SORTS), format_func=board.SORTS.get, key="board_sort")
    kept = [e for e in here if board.matches(metas[e.id], chosen_obj, chosen_lat, beta)]
    return [e for e, _ in sorted(((e, metas[e.id]) for e in kept), key=board.sort_key(sort))]


def _title(e) -> str:
    return classroom.entry_title(e) + (" (hidden)" if e.hidden else "")


def _table(s: classroom.Seat, entries) -> None:
    st.subheader(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: the model card of each")
    rows = []
    for e in entries:
        meta = _meta(s.code, e)
        card = meta.get("card", {})
        rows.append({"#": e.id, "student": e.author, "model": e.name, "objective": meta.get("objective"),
                     "nets": meta.get("arch"), "latent": meta.get("latent_dim"), "β": meta.get("beta"),
                     **{title: card.get(k) for k, (title, _) in COLUMNS.items()},
                     "note": meta.get("note", ""), **({"hidden": e.hidden} if s.teacher else {})})
    used = {k for row in rows for k, v in row.items() if v not in (None, "")}
    rows = [{k: v for k, v in row.items() if k in used or k in ("#", "student", "model")} for row in rows]
    number = st.column_config.NumberColumn
    st.dataframe(rows, hide_index=True, key="board_table", column_config={
        title: number(format=fmt) for title, fmt in COLUMNS.values()} | {"β": number(format="%g")})
    state.explain("The figures of the one model card every page uses, measured on the test set when the entry was "
                  "submitted. MSE ÷ PCA's below 1 beats PCA with as many components; k-NN accuracy: how often the 5 "
                  "nearest training codes share a test image's class.")


def _open_in_compare(s: classroom.Seat, entries) -> None:
    ids = [e.id for e in entries]
    titles = {e.id: _title(e) for e in entries}
    a, b = st.columns([4, 1], vertical_alignment="bottom")
    picked = a.multiselect("Open 2 to 4 entries on the Compare page", ids, key="board_pick", max_selections=4,
                           format_func=titles.get)
    if b.button("Compare them", key="board_compare", disabled=not 2 <= len(picked) <= 4, icon=":material/compare:"):
        by_id = {e.id: e for e in entries}
        try:
            refs = [classroom.open_entry(s.code, by_id[i]) for i in picked]
        except (NotFound, ValueError) as err:
            st.error(str(err))
            return
        params = {"models": ",".join(r.id for r in refs), **state.private_params()}
        target = st.session_state.get("room_pages", {}).get("compare")
        if target is None:
            st.query_params.from_dict(params)
            st.info("Open the Compare page: these entries are among its models now.")
            return
        st.switch_page(target, query_params=params)


# --- figures --------------------------------------------------------------------------------------------------------

def _figures_of(s: classroom.Seat, entries) -> list[tuple[object, board.Figures]]:
    out = []
    for e in entries:
        try:
            out.append((e, _figures(e.sha256, s.code, e)))
        except (NotFound, ValueError, DatasetUnavailable) as err:
            st.warning(f"Entry {e.id} cannot be drawn: {err}")
    return out


def _maps(s: classroom.Seat, entries, drawn) -> None:
    st.subheader("Latent maps, on shared axes")
    if not drawn:
        return
    try:
        data = _data(s, entries)
    except DatasetUnavailable as err:
        st.warning(str(err))
        return
    maps = []
    for e, f in drawn:
        z = e.meta.get("latent_dim")
        suffix = "" if z is None or z <= 2 else f" · PCA of {z}-D"
        hidden = " (hidden)" if e.hidden else ""
        maps.append((f"<b>{html.escape(e.author)}</b>{hidden}<br>{html.escape(e.name + suffix)}", f.xy, f.labels))
    fig = _maps_figure(tuple((e.sha256, t) for (e, _), (t, _, _) in zip(drawn, maps)), maps, data.label_names)
    st.plotly_chart(fig, key="board_maps", config={"displaylogo": False, "displayModeBar": False})
    lo, hi = plots.shared_box(maps)
    state.explain(f"The same {len(maps[0][1])} test samples in every map, each at its code (2-D codes as they are, "
                  "longer codes by PCA), on the same axes: a VAE's KL term pulls its cloud towards the origin, a larger "
                  f"β pulls harder. Every map spans the same box, across from {lo[0]:.2f} to {hi[0]:.2f} and up from "
                  f"{lo[1]:.2f} to {hi[1]:.2f}; the light cross is the origin.")


def _data(s: classroom.Seat, entries):
    """The dataset of the entries shown (one dataset at a time; see _filtered)."""
    return state.dataset(entries[0].meta.get("dataset") or classroom.entry_model(s.code, entries[0]).config.dataset)


def _pictures(s: classroom.Seat, entries, shared, drawn) -> None:
    try:
        data = _data(s, entries)
    except DatasetUnavailable:
        return  # _maps said so
    if not _images_of(data):
        st.info(f"The samples of {classroom.plain(classroom.data_label(data.name, shared))} are not images, so the "
                "picture rows are left out.")
        return
    vaes = any(f.samples is not None for _, f in drawn)
    st.subheader("Reconstructions of the same test images" + (", and samples with the same seed" if vaes else ""))
    state.explain("Left: what each model rebuilds from the codes of the same test images (top row). Right, for VAEs: "
                  f"decoded random codes z ~ N(0, I), drawn with seed {board.SEED} for everyone.")
    # One HTML grid of small PNGs (built once per entry) rather than an image element per picture: 30 entries
    # would be 60 elements, 60 downloads and a layout pass for each, which the browser took seconds over.
    cells = ["<div><b>test images</b></div>", _img(_originals(data.name), "the test images")]
    if vaes:
        cells.append(f"<div><b>samples</b> · the same codes z ~ N(0, I), seed {board.SEED}</div>")
    for e, f in drawn:
        who = f"<b>{html.escape(e.author)}</b> · {html.escape(e.name)}"
        cells += [f"<div>{who}</div>", _img(_png(e.sha256, "recon", f.recon), f"{e.author}: reconstructions")]
        if vaes:
            cells.append(_img(_png(e.sha256, "samples", f.samples), f"{e.author}: samples")
                         if f.samples is not None else "<div></div>")
    columns = "minmax(9rem, 1.6fr) 4fr 4fr" if vaes else "minmax(9rem, 1.6fr) 8fr"
    with st.container(key="board_pictures"):
        st.html(f"<style>.aeviz-pics{{display:grid;grid-template-columns:{columns};gap:0.4rem 1rem;"
                "align-items:center;font-size:0.9rem}.aeviz-pics img{image-rendering:pixelated;max-width:100%}"
                f"</style><div class='aeviz-pics'>{''.join(cells)}</div>")


def _img(png: tuple[str, int], alt: str) -> str:
    """An <img> of a (data address, width) pair, ZOOM times its width in the page, its pixels kept sharp."""
    uri, width = png
    return f"<img src='{uri}' alt='{html.escape(alt, quote=True)}' style='width:{ZOOM * width}px'>"


@st.cache_data(show_spinner=False, max_entries=1024)
def _png(sha256: str, what: str, _images: np.ndarray) -> tuple[str, int]:
    """A row of an entry's pictures as a PNG data address (entries never change: keyed by their hash)."""
    return _data_uri(plots.tile(_images, len(_images)))


@st.cache_data(show_spinner=False, max_entries=16)
def _originals(dataset: str) -> tuple[str, int]:
    data = state.dataset(dataset)
    return _data_uri(plots.tile(data.x_test[board.test_images(data)].numpy(), board.N_IMAGES))


def _data_uri(image: np.ndarray) -> tuple[str, int]:
    """A [0, 1] grey image as a PNG data address, and its width in pixels."""
    import base64

    return "data:image/png;base64," + base64.b64encode(widgets.png(image)).decode(), image.shape[1]


# --- moderation and withdrawing ---------------------------------------------------------------------------------

def _call(fn, *args, done: str) -> None:
    try:
        fn(*args)
    except (PermissionError, NotFound, StoreError) as err:
        st.session_state["board_manage_out"] = ("error", str(err))
        return
    st.session_state["board_manage_out"] = ("success", done)


def _manage(s: classroom.Seat, entries, mine) -> None:
    store = classroom.store()
    if s.teacher:
        with st.expander("Moderate the board", icon=":material/gavel:"):
            for e in entries:
                a, b, c = st.columns([4, 1, 1], vertical_alignment="center")
                a.markdown(f"#{e.id} **{classroom.plain(e.author)}** · {classroom.plain(e.name)}"
                           + (" · *hidden*" if e.hidden else ""))
                b.button("Show" if e.hidden else "Hide", key=f"board_hide::{e.id}", on_click=_call,
                         args=(store.hide_entry, s.code, s.secret, e.id, not e.hidden),
                         kwargs={"done": f"Entry {e.id} is {'shown' if e.hidden else 'hidden from the class'}."})
                c.button("Remove", key=f"board_remove::{e.id}", on_click=_call,
                         args=(store.remove_entry, s.code, s.secret, e.id), kwargs={"done": f"Entry {e.id} is removed."})
            with st.popover("Clear the board", icon=":material/delete_sweep:"):
                st.caption("Removes every entry of the room, for everyone.")
                st.button("Clear it", key="board_clear", type="primary", on_click=_call,
                          args=(store.clear_board, s.code, s.secret), kwargs={"done": "The board is cleared."})
    elif mine:
        with st.expander(f"Your entries ({len(mine)})", icon=":material/person:"):
            for e in mine:
                a, b = st.columns([4, 1], vertical_alignment="center")
                a.markdown(f"#{e.id} {classroom.plain(e.name)}" + (" · *hidden by the teacher*" if e.hidden else ""))
                b.button("Withdraw", key=f"board_withdraw::{e.id}", on_click=_call,
                         args=(store.withdraw, s.code, s.token, e.id), kwargs={"done": f"Entry {e.id} is withdrawn."})
