"""Rooms in the app: open or join a class in the sidebar, follow the teacher, the task at the top of every page.

A session holds a Seat: the room's code, the member's name and student token, and, for the teacher only, the
room's secret. The secret lives in the session and the server console, never in an address; the room code and the
student token ride in the page address (?room=ABCD&seat=…, beside ?me=…) so a reload takes the seat again, and
state.private_params() keeps them out of every link built for sharing.

Students follow through `follow()`, called on every run before the page is drawn, and a small fragment that polls
room_state() every POLL_S seconds and reruns the app when the teacher pushed, froze or set a task.
"""
from __future__ import annotations

import hmac
import os
import re
from dataclasses import dataclass

import streamlit as st

import aeviz
from aeviz import userdata
from aeviz.classroom import LimitError, NotFound, RoomDataset, RoomStore, StoreError, View, open_store
from aeviz.data import Dataset
from aeviz.ui import state, widgets

ROOM_PARAM, SEAT_PARAM = "room", "seat"  # query parameters: the room's code (shareable), the student's token (not)
POLL_S = 0.5  # how often a student's page asks the store whether the teacher did something
TEACHER_NAME = "Teacher"  # the teacher's own seat on the board (a student typing it gets "Teacher (2)")
ROOM_BOX = "room_box"  # the open state of the "Class room: join or teach" box
OUTSIDE_KEPT = re.compile(r"room_(join_code|join_name|claim_code)")  # what that box keeps while closed (no secrets)
ENTRY = "entry:"  # a board entry in a pushed view: entry:<id>, resolved by each student in their own room
NO_SIDEBAR_MODEL = {"compare", "board"}  # pages that show their own choice of models, not the sidebar's


@dataclass(frozen=True)
class Seat:
    """This session's place in a room."""

    code: str
    name: str  # the display name the store gave (cleaned, maybe with a suffix)
    token: str  # the student token: rejoins after a reload, submits and withdraws this member's entries
    member_id: int
    secret: str | None = None  # the teacher's secret: only the teacher's session has it

    @property
    def teacher(self) -> bool:
        return self.secret is not None


@st.cache_resource(show_spinner=False)
def store() -> RoomStore:
    """The room store of this server (AEVIZ_STORE, else SQLite under the data folder); StoreError if unusable."""
    return open_store()


def seat() -> Seat | None:
    """This session's seat, or None outside a room."""
    return st.session_state.get("room_seat")


def _note(kind: str, sentence: str) -> None:
    st.session_state["room_note"] = (kind, sentence)


def _take(s: Seat | None) -> None:
    """Sit down in (or, with None, leave) a room: the session and the address both remember it."""
    ss = st.session_state
    ss["room_seat"] = s
    ss["room_params"] = {ROOM_PARAM: s.code, SEAT_PARAM: s.token} if s else {}
    for key in ("room_applied", "room_frozen", "room_task", "room_version"):
        ss.pop(key, None)
    if s is None:
        for key in (ROOM_PARAM, SEAT_PARAM):
            if key in st.query_params:
                del st.query_params[key]


# --- plain text and safe markdown -----------------------------------------------------------------------------

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:>])")


def plain(text: str) -> str:
    """User text (a name) for st.markdown: shown as typed, never as markup, links, colours or HTML."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("<", "&lt;")


def safe_task(text: str) -> str:
    """The teacher's task as markdown without HTML (shown as text) and without images (nothing loads from
    elsewhere); rendered by st.markdown, which never allows HTML here."""
    return str(text).replace("<", "&lt;").replace("![", "!\\[")


# --- following the teacher: on every run, before the page -----------------------------------------------------

def page_id(page) -> str:
    """A page's id in pushed views: its url_path ("/" for the default page, whose url_path is empty)."""
    return page.url_path or "/"


def run(pages: dict, sidebar=None) -> None:
    """Run the app in the order a room needs: navigation (hidden while the class is frozen), a view the teacher
    pushed applied before anything is drawn, the sidebar and the room panel, the page, and last the teacher's
    pending push (after the page has written its state in the address)."""
    page = st.navigation(pages, position=nav_position())
    follow(page, pages)
    if sidebar is not None:
        sidebar()
    panel()
    page.run()
    push_pending()


def nav_position() -> str:
    """Where st.navigation draws the page links: nowhere while the teacher has frozen this student's class (the
    teacher's pushes still change the page). Read before follow(): the poll, or follow() with one more run, keeps
    room_frozen up to date for it."""
    frozen = bool(st.session_state.get("room_frozen"))
    st.session_state["room_nav_frozen"] = frozen
    return "hidden" if frozen else "sidebar"


def follow(page, pages: dict) -> None:
    """Take the seat back after a reload, keep the room in the address, and for a student apply what the teacher
    did since the last run: a pushed view (the page, its model, its query parameters), the freeze and the task."""
    ss = st.session_state
    ss["room_page"] = page_id(page)
    ss["room_pages"] = {page_id(p): p for section in pages.values() for p in section}
    invite = st.query_params.get(ROOM_PARAM)
    if invite and seat() is None:
        if ss.get("room_invite") != invite:
            ss[ROOM_BOX] = True  # a room's link opens the join box (once: the student may close it)
        ss["room_invite"] = invite
        _rejoin(invite, st.query_params.get(SEAT_PARAM))
    s = seat()
    ss["room_frozen"] = False
    if s is None:
        return
    for key, value in ss["room_params"].items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    try:
        rs = store().room_state(s.code)
    except (NotFound, StoreError) as err:
        _take(None)
        _note("warning", f"You left room {s.code}: {err}" if isinstance(err, StoreError) else
              f"Room {s.code} is closed (the teacher closed it, or it expired).")
        return
    ss["room_task"], ss["room_version"], ss["room_has_view"] = rs.task, rs.version, rs.view is not None
    if s.teacher:
        ss["room_freeze"] = rs.frozen  # the toggle shows the room as it is, whoever changed it last
        return
    ss["room_frozen"] = rs.frozen
    if rs.frozen != ss.get("room_nav_frozen", False):
        st.rerun()  # the page links were drawn for the other state (a reload, or a freeze the poll did not see)
    if rs.frozen or "room_follow" not in ss:
        ss["room_follow"] = True
    go = ss.pop("room_go", False)  # "Go there": one view, with following off
    wanted = ss["room_follow"] or go
    if wanted and rs.view is not None and rs.version > ss.get("room_applied", 0):
        _apply(rs.view, rs.version, page)


def _rejoin(code: str, token: str | None) -> None:
    if not token:
        return
    try:
        member = store().rejoin(code, token)
    except (NotFound, PermissionError, StoreError):
        _note("warning", "Your seat in that room is gone (the room closed or expired); join again with the code.")
        for key in (SEAT_PARAM,):
            if key in st.query_params:
                del st.query_params[key]
        return
    _take(Seat(member.code, member.name, token, member.id))


def _apply(view: View, version: int, page) -> None:
    """Show the pushed view: its model in the sidebar, its page with its query parameters."""
    ss = st.session_state
    ss["room_applied"] = version
    s = seat()
    notes: list[str] = []
    params = dict(view.params)
    if "models" in params:
        ids = [_resolve(s.code, m, notes) for m in params["models"].split(",") if m]
        params["models"] = ",".join(i for i in ids if i)
    if view.model:
        model_id = _resolve(s.code, view.model, notes)
        if model_id:
            state.select(model_id)
    ss["room_follow_notes"] = notes
    params = {**params, **state.private_params()}
    target = ss["room_pages"].get(view.page)
    if target is None:
        ss["room_follow_notes"] = [*notes, "The teacher's page does not exist in this app."]
    elif page_id(target) != page_id(page):
        st.switch_page(target, query_params=params)
    elif st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def _resolve(code: str, model_id: str, notes: list[str]) -> str | None:
    """The id this session knows a pushed model by: zoo ids as they are, board entries opened as shared models."""
    if model_id.startswith(ENTRY):
        try:
            return open_entry(code, int(model_id.removeprefix(ENTRY))).id
        except (ValueError, NotFound, aeviz.CheckpointError):
            notes.append(f"The teacher's board entry {model_id.removeprefix(ENTRY)} is gone from the board.")
            return None
    try:
        return state.ref(model_id).id
    except KeyError:
        notes.append(f"The teacher's model {model_id} is not on this server.")
        return None


# --- board entries as models -----------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False, max_entries=256)
def _entry_model(sha256: str, _code: str, _entry_id: int, _name: str):
    """An entry's model, loaded once per server by the hash of its bytes, through the checkpoint checks uploads
    pass (aeviz.load on bytes: nothing is unpickled)."""
    import hashlib

    blob = store().entry_blob(_code, _entry_id)
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise NotFound(f"Entry {_entry_id} changed while it was read.")
    return aeviz.load(blob, name=_name).eval()


def entry_model(code: str, entry):
    """The model of a board entry (read-only, shared by every session)."""
    return _entry_model(entry.sha256, code, entry.id, f"{entry.name}.safetensors")


def entry_title(entry) -> str:
    """How people read an entry: its student and model names."""
    return f"{entry.author} · {entry.name}"


def open_entry(code: str, entry_or_id) -> state.ModelRef:
    """Make a board entry one of this session's models (shared, read-only; keyed by its weights' digest)."""
    entry = entry_or_id
    if not hasattr(entry, "sha256"):
        entry = next((e for e in store().entries(code, include_hidden=True) if e.id == entry_or_id), None)
        if entry is None:
            raise NotFound(f"Room {code} has no entry {entry_or_id}.")
    r = state.add_shared(entry_model(code, entry), entry_title(entry))
    state.offer(r)
    st.session_state.setdefault("board_refs", {})[r.id] = entry.id
    return r


def remember_entry(model_id: str, entry_id: int) -> None:
    """This session's model is on the board as entry_id: the teacher's pushes then name the entry."""
    st.session_state.setdefault("board_refs", {})[model_id] = entry_id


# --- the dataset the teacher shared with the room ------------------------------------------------------------------

CLASS_DATA = "class: "  # how the class dataset is named wherever data are chosen


def shared_dataset() -> RoomDataset | None:
    """The dataset the teacher shared with this session's room, without its bytes (None outside a room, when none
    is shared, or when the store cannot be read: pages then go on without it)."""
    s = seat()
    if s is None:
        return None
    try:
        return store().room_dataset(s.code)
    except (NotFound, StoreError):
        return None


def data_label(name: str, shared: RoomDataset | None) -> str:
    """A dataset's name in a data chooser: the class dataset as "class: <title>", the others as they are."""
    return f"{CLASS_DATA}{shared.title}" if shared is not None and shared.name == name else name


def room_data(name: str) -> Dataset | None:
    """The room's shared dataset if `name` is it (None otherwise), read from the store for any member of the room,
    with the checks a read file passes: safetensors only (nothing is unpickled), the caps, values in [0, 1]."""
    s = seat()
    shared = shared_dataset()
    if s is None or shared is None or shared.name != name:
        return None
    import hashlib

    try:
        shared, blob = store().dataset_blob(s.code)
        if shared.name != name or hashlib.sha256(blob).hexdigest() != shared.sha256:
            return None  # replaced meanwhile
        return userdata.check_dataset(userdata.dataset_from_bytes(blob, name))
    except (NotFound, StoreError, userdata.DataError) as err:
        raise aeviz.DatasetUnavailable(f"The class dataset '{shared.title}' cannot be read: {err}") from err


def dataset_info(ds: Dataset) -> dict:
    """What the board shows about a shared dataset without reading its bytes."""
    source = (ds.extras.get("preprocessing") or {}).get("source") or {}
    return {"rows": len(ds.x_train) + len(ds.x_test), "train": len(ds.x_train), "test": len(ds.x_test),
            "shape": list(ds.sample_shape), "each": userdata.sample_text(ds), "classes": len(ds.label_names),
            "file": str(source.get("file") or "")[:100]}


def _count(meta: dict, key: str) -> int:
    """A count from a shared dataset's metadata (0 when another tool wrote something else there)."""
    value = meta.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def dataset_headline(shared: RoomDataset) -> str:
    """The class dataset in a line of markdown: its title, samples, shape and classes."""
    m, classes = shared.meta, _count(shared.meta, "classes")
    return (f"**Class dataset: {plain(shared.title)}** · {_count(m, 'rows'):,} samples · each "
            f"{plain(m.get('each', '?'))}" + (f" · {classes} classes" if classes else ""))


def dataset_sentence(shared: RoomDataset) -> str:
    """One sentence about the class dataset, for everyone in the room (markdown: the file's name is text)."""
    m, classes = shared.meta, _count(shared.meta, "classes")
    source = f" from the file {plain(m['file'])}" if m.get("file") else ""
    return (f"{_count(m, 'rows'):,} samples{source}, each {plain(m.get('each', '?'))}"
            + (f", {classes} classes" if classes else "")
            + f"; everyone trains on the same {_count(m, 'train'):,} samples and every entry is measured on the same "
              f"{_count(m, 'test'):,} test samples.")


def share_dataset(ds: Dataset, title: str) -> tuple[str, str]:
    """Share ds with this session's room (teacher only), in place of the dataset shared before; ("success" or
    "error", the sentence to show)."""
    s = seat()
    if s is None:
        return "error", "Open a room first: a dataset is shared with a class."
    try:
        userdata.check_dataset(ds)
        shared = store().share_dataset(s.code, s.secret, ds.name, title, dataset_info(ds), userdata.dataset_bytes(ds))
        userdata.register_user_dataset(ds.name, ds, persist=True)  # the teacher's own trainings find it too
    except (PermissionError, NotFound, LimitError, ValueError, StoreError, OSError) as err:
        return "error", str(err)  # DataError is a ValueError
    title = plain(shared.title)
    return "success", (f"Room {s.code} has the dataset “{title}” now: every student finds it as "
                       f"“{CLASS_DATA}{title}” where data are chosen, and the board compares their entries on "
                       f"its test samples.")


def unshare_dataset() -> tuple[str, str]:
    """Take the room's dataset away (teacher only); ("success" or "error", the sentence)."""
    s = seat()
    try:
        store().unshare_dataset(s.code, s.secret)
    except (PermissionError, NotFound, StoreError) as err:
        return "error", str(err)
    return "success", (f"Room {s.code} has no class dataset now; models trained on it stay on the board and in "
                       f"each student's models.")


# --- the teacher's powers ----------------------------------------------------------------------------------------

def _teacher_call(fn, *args, done: str = "") -> bool:
    """Call a store power with this session's secret; a refusal becomes the panel's one sentence."""
    s = seat()
    try:
        fn(s.code, s.secret, *args)
    except (PermissionError, NotFound, LimitError, ValueError, StoreError) as err:
        _note("error", str(err))
        return False
    if done:
        _note("success", done)
    return True


def _shareable(model_id: str | None, notes: list[str]) -> str:
    """A model id every student of the room can open: a zoo name, or the board entry it came from."""
    if not model_id:
        return ""
    entry = st.session_state.get("board_refs", {}).get(model_id)
    if entry is not None:
        return f"{ENTRY}{entry}"
    try:
        r = state.ref(model_id)
    except KeyError:
        return ""
    if r.zoo:
        return r.id
    notes.append(f"{r.name} is {'your own model' if r.mine else 'a model trained here'}, which the class cannot "
                 "open: submit it to the board first. The view went out without it.")
    return ""


def pushed_view() -> tuple[View, list[str]]:
    """The teacher's view now: the page, its model, and the page's shareable query parameters."""
    ss = st.session_state
    notes: list[str] = []
    private = set(state.private_params())
    params = {k: v for k, v in st.query_params.to_dict().items() if k not in private}
    if "models" in params:
        params["models"] = ",".join(i for i in (_shareable(m, notes) for m in params["models"].split(",")) if i)
    page = ss.get("room_page", "/")
    silent: list[str] = []  # the sidebar's model on a page that does not show it: no note if it cannot go
    model = _shareable(state.current_id(), silent if page in NO_SIDEBAR_MODEL else notes)
    return View(page, model, params), notes


def _push_view() -> View | None:
    """Push the teacher's view now; the sentence about it goes to the panel. The view pushed, or None if refused."""
    ss = st.session_state
    s = seat()
    view, notes = pushed_view()
    try:
        version = store().push_view(s.code, s.secret, view)
    except (PermissionError, NotFound, LimitError, ValueError, StoreError) as err:
        _note("error", str(err))
        return None
    title = ss["room_pages"].get(view.page)
    _note("warning" if notes else "success",
          " ".join([f"View {version} ({title.title if title else view.page}) went out to room {s.code}.", *notes]))
    return view


def _ask_push() -> None:
    """The Push button: the view goes out at once, from the address as the page last wrote it."""
    s = seat()
    if s is not None and s.teacher:
        st.session_state["room_pushed"] = _push_view()


def push_pending() -> None:
    """After the page is drawn: if the page's state moved in this very run (a control changed together with the
    click on Push), push again, so the class gets the view the teacher now sees."""
    ss = st.session_state
    s = seat()
    if "room_pushed" not in ss:
        return
    pushed = ss.pop("room_pushed")
    if s is None or not s.teacher or pushed is None or pushed_view()[0] == pushed:
        return
    _push_view()
    slot = ss.get("room_note_slot")
    if slot is not None:
        with slot.container():
            _show_note()


def _open_room() -> None:
    env = os.environ.get("AEVIZ_TEACHER_TOKEN")
    typed = st.session_state.get("room_env_secret", "")
    if env and not hmac.compare_digest(typed.encode(), env.encode()):
        _note("error", "This server has a teacher secret (AEVIZ_TEACHER_TOKEN): type it to open a room.")
        return
    try:
        room, secret = store().open_room(env or None)
        member, token = store().join(room.code, TEACHER_NAME)
    except (LimitError, ValueError, StoreError) as err:
        _note("error", str(err))
        return
    if not env:  # once, where only the person who started the server reads it
        print(f"aeviz: room {room.code} is open. Its teacher secret (paste it in the sidebar to take the room back "
              f"after a reload, or from another browser): {secret}", flush=True)
    _take(Seat(room.code, member.name, token, member.id, secret))
    _note("success", f"Room {room.code} is open: give your class the link or the code.")


def _claim() -> None:
    """Become the teacher of a room with its secret (after a reload, or from another browser)."""
    ss = st.session_state
    s, secret = seat(), ss.get("room_claim_secret", "").strip()
    code = s.code if s else ss.get("room_claim_code", "").strip().upper()
    try:
        frozen = store().room_state(code).frozen
        store().set_frozen(code, secret, frozen)  # the store's constant-time check of the secret, changing nothing
        if s is None:
            member, token = store().join(code, TEACHER_NAME)
            s = Seat(member.code, member.name, token, member.id)
    except (PermissionError, NotFound, LimitError, ValueError, StoreError) as err:
        _note("error", str(err))
        return
    ss["room_claim_secret"] = ""
    _take(Seat(s.code, s.name, s.token, s.member_id, secret))
    _note("success", f"You teach room {s.code} again.")


def _join() -> None:
    ss = st.session_state
    code = (ss.get("room_join_code") or ss.get("room_invite") or "").strip().upper()
    try:
        member, token = store().join(code, ss.get("room_join_name", ""))
    except (NotFound, LimitError, ValueError, StoreError) as err:
        _note("error", str(err))
        return
    _take(Seat(member.code, member.name, token, member.id))
    _note("success", f"You joined room {member.code} as {plain(member.name)}.")


def _leave() -> None:
    _take(None)
    st.session_state.pop("room_invite", None)


def _close() -> None:
    code = seat().code
    if _teacher_call(store().close_room, done=f"Room {code} is closed; its board is deleted."):
        _take(None)


# --- what the panel draws ------------------------------------------------------------------------------------------

def panel() -> None:
    """The task at the top of the page, and the room's section in the sidebar."""
    s = seat()
    task = st.session_state.get("room_task") if s else ""
    if task:
        with st.container(border=True, key="room_task"):
            st.markdown(f":material/assignment: **Task from the teacher** · {safe_task(task)}")
    with st.sidebar:
        if s is None:
            _outside()
        elif s.teacher:
            _teacher_panel(s)
        else:
            _student_panel(s)
        st.session_state["room_note_slot"] = st.empty()  # push_pending() writes here after the page
        with st.session_state["room_note_slot"].container():
            _show_note()


def _show_note() -> None:
    """The last sentence about the room, shown once (until the next full run)."""
    note = st.session_state.pop("room_note", None)
    if note:
        kind, sentence = note
        {"error": st.error, "warning": st.warning, "success": st.success}[kind](sentence)


def _outside() -> None:
    """The "Class room: join or teach" box: its content runs only while it is open (closed, its dozen widgets were
    an eighth of every run of every page); what was typed into it (not the secrets) is kept while it is closed."""
    ss = st.session_state
    invite = ss.get("room_invite")
    with widgets.lazy_expander("Class room: join or teach", ROOM_BOX, OUTSIDE_KEPT, icon=":material/school:",
                               expanded=bool(invite)) as box:
        if box is None:
            return
        join, teach = st.tabs(["Join a class", "Teach a class"])
        with join:
            if not invite:
                st.text_input("Room code", key="room_join_code", max_chars=6, placeholder="e.g. K7QM")
            else:
                st.markdown(f"Room **{plain(invite)}**")
            st.text_input("Your name, as the class will see it", key="room_join_name", max_chars=40)
            st.button("Join", key="room_join", on_click=_join, icon=":material/login:", type="primary")
            st.caption("No account: your place in the room is kept in this page's address, so keep it to yourself.")
        with teach:
            if os.environ.get("AEVIZ_TEACHER_TOKEN"):
                st.text_input("Teacher secret (AEVIZ_TEACHER_TOKEN)", type="password", key="room_env_secret")
            st.button("Open a room", key="room_open", on_click=_open_room, icon=":material/add:", type="primary")
            st.caption("You get a short code and a link for the class. The teacher secret is printed once in the "
                       "server's console: with it you can push views, freeze the class, set a task and moderate "
                       "the board, and take the room back after a reload.")
            st.text_input("Take a room back: its code", key="room_claim_code", max_chars=6)
            st.text_input("and its teacher secret", type="password", key="room_claim_secret")
            st.button("Take the room back", key="room_claim", on_click=_claim)


def room_link(code: str) -> str:
    """The link students open: the app's address with ?room=CODE (no secret, no token)."""
    url = st.context.url or ""
    base = re.match(r"^[a-z]+://[^/]+/?", url)
    return f"{base.group(0).rstrip('/') if base else ''}/?{ROOM_PARAM}={code}"


def _teacher_panel(s: Seat) -> None:
    ss = st.session_state
    with st.container(border=True, key="room_panel"):
        st.markdown(f":material/school: **Room {s.code}** · you teach it")
        st.code(room_link(s.code), language=None, wrap_lines=True)
        st.caption("Students open this link (or type the code). Use the Network URL that `streamlit run` printed "
                   "if this one says localhost.")
        st.button("Push this view to the class", key="room_push_btn", on_click=_ask_push, icon=":material/cast:",
                  type="primary", help="Every student who follows you sees this page, its model and its settings "
                  "within two seconds.")
        st.toggle("Freeze the class", key="room_freeze",
                  on_change=lambda: _teacher_call(store().set_frozen, ss["room_freeze"]),
                  help="Students follow you and cannot change the view, for a demonstration.")
        with st.expander("Task for the class", icon=":material/assignment:", expanded=not ss.get("room_task")):
            st.text_area("One paragraph of markdown, shown at the top of every student's page", key="room_task_in",
                         max_chars=2000, height=100)
            a, b = st.columns(2)
            a.button("Set the task", key="room_task_set", on_click=lambda: _teacher_call(
                store().set_task, ss.get("room_task_in", ""), done="The class sees the new task."))
            b.button("Clear it", key="room_task_clear", on_click=lambda: _teacher_call(
                store().set_task, "", done="The task is cleared."))
        with st.popover("Close the room", icon=":material/logout:"):
            st.caption("Closing deletes the room's board; students are left outside.")
            st.button(f"Close room {s.code}", key="room_close", on_click=_close, type="primary")


def _student_panel(s: Seat) -> None:
    ss = st.session_state
    with st.container(border=True, key="room_panel"):
        st.markdown(f":material/school: **Room {s.code}** · you are {plain(s.name)}")
        frozen = ss.get("room_frozen", False)
        st.toggle("Follow the teacher", key="room_follow", disabled=frozen,
                  on_change=_on_follow, help="Off: explore on your own; the teacher's pushes wait until you turn "
                  "it back on.")
        if frozen:
            st.caption(":material/lock: The teacher froze the class for a demonstration.")
        _status(ss.get("room_follow", True) or frozen)
        _poll()
        for note in ss.get("room_follow_notes", []):
            st.caption(note)
        st.button("Leave the room", key="room_leave", on_click=_leave, icon=":material/logout:")
        with st.expander("I am this room's teacher"):
            st.text_input("Teacher secret", type="password", key="room_claim_secret")
            st.button("Teach this room", key="room_claim", on_click=_claim)


def _on_follow() -> None:
    if st.session_state.get("room_follow"):
        st.session_state["room_applied"] = 0  # back on: catch up with the teacher's latest view at once


def _status(following: bool) -> None:
    """Which view this page shows, or the teacher's newer one that waits while the student explores alone."""
    ss = st.session_state
    version, applied = ss.get("room_version", 0), ss.get("room_applied", 0)
    with st.container(key="room_status"):
        if not following and version > applied and ss.get("room_has_view"):
            st.caption(f"The teacher pushed view {version}.")
            st.button("Go there", key="room_go_btn", on_click=lambda: ss.update(room_go=True))
        elif applied:
            st.caption(f":material/cast: Following the teacher: view {applied}")
        else:
            st.caption("The teacher has not pushed a view yet.")


@st.fragment(run_every=POLL_S)
def _poll() -> None:
    """Every POLL_S seconds, one read of the room: when the teacher pushed, froze or set a task since this page was
    drawn, the whole app reruns (follow() applies it). Otherwise the fragment draws nothing, so the browser has
    nothing to redraw either."""
    ss = st.session_state
    s = seat()
    if s is None:
        return
    try:
        rs = store().room_state(s.code)
    except (NotFound, StoreError):
        st.rerun(scope="app")  # follow() says what happened
    if (rs.version, rs.frozen, rs.task) != (ss.get("room_version"), ss.get("room_frozen"), ss.get("room_task")):
        ss["room_frozen"] = rs.frozen  # the next run draws the page links (hidden while frozen) with it
        st.rerun(scope="app")
