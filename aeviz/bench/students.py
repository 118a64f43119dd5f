"""Simulated students: a light client of Streamlit's websocket protocol, one websocket per student, for load benches.

A student does what /work/shared/notes/streamlit-protocol.md says the browser does: GET /_stcore/health (through
a proxy this also picks the replica and sets its affinity cookie), open /_stcore/stream with the subprotocol
"streamlit" and the server's own Origin, rerun the default page (the Explorer), then every 0.5-2 s one action:
- "release": let go of the latent pad (the Explorer's in-browser decoder drew the drag itself; the browser tells the
  server the released code once): a fragment rerun carrying the pad component's state {"z": [...]};
- "map click": click a point of the latent map (a full rerun carrying the canvas map's click);
- "model": pick another model in the sidebar's model box; "page": switch between the Explorer and Compare;
- "preset": on Compare, pick another preset.
Ids, ranges, options and fragments come from the deltas. It keeps the browser's message cache (ref_hash, expired
after maxCachedMessageAge runs) and fetches each new /media/ image, as the browser must before it can draw it.
(Pages with server-side latent sliders, e.g. for a model the browser cannot run, still get "slider" moves.)

Latency of an action: from sending rerun_script to the end of the run it started (its script_finished, matched
by run id) and the end of that run's image fetches. The protocol notes' three traps: a fragment run that
delivered deltas but ends FINISHED_EARLY_FOR_RERUN is done; a lost script_finished is ended by the next run's
start; a fragment rerun that starts no run at all was dropped by the server (superseded: neither a latency nor
an error), and so is an image that a later run of the page replaced before its fetch arrived (a 404 for a
picture the page no longer shows). Errors: no run within the timeout, exceptions shown in the page, failed image fetches.
When the websocket drops (its replica died), the student reconnects through the same URL, as the page's replica
guard makes the browser do, and reloads its page; the time until it is served again is recorded.

Training students (train=True) press the Explorer's Train button once (a full rerun carrying the button's
trigger_value) and then replay the `run_every` fragments as the browser's timer does: each `auto_rerun` message
gives a fragment and an interval, and the student sends fragment reruns with is_auto_rerun at that interval
(action kind "poll") until a full run no longer registers the fragment. On the Compare page a student sometimes
switches the preset (the selectbox's string_value, kind "preset").

Simplifications, on purpose: a change sends the state of the widget it changes (and of server-side sliders) only;
other widgets keep their defaults; polls are sent between actions, never beside one: one request in flight per
student.
Imports Streamlit's protobuf modules (the protocol), never its runtime.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

FINISHED_EARLY = 2  # ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
COMPILE_ERROR = 1  # ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR
MAX_MESSAGE = 256 * 2**20  # Streamlit's own default limit is 200 MB


class Disconnected(Exception):
    """The websocket closed under the student."""


@dataclass
class Stats:
    """What one student saw."""

    actions: list[tuple[float, str, float]] = field(default_factory=list)  # (answered at: monotonic s, kind, latency ms)
    errors: Counter = field(default_factory=Counter)
    superseded: int = 0
    disconnects: int = 0
    recoveries: list[tuple[float, float]] = field(default_factory=list)  # (websocket lost at, served again at)
    auto_reruns: int = 0  # auto_rerun messages received
    polls: int = 0  # run_every fragment reruns sent
    exception_texts: list[str] = field(default_factory=list)  # the first few exceptions shown in the page
    error_texts: list[str] = field(default_factory=list)  # the first few failed fetches, with what came back
    replicas: list[str] = field(default_factory=list)  # X-Aeviz-Replica of each connection, when behind the proxy


@dataclass
class Request:
    kind: str  # load, slider, page
    sent: float
    fragment: str = ""
    run: str = ""  # the run it started
    deltas: int = 0
    fetches: list = field(default_factory=list)
    done: asyncio.Future | None = None


@dataclass
class Pad:
    """The Explorer's latent pad or component sliders (a bidi component): its code, ranges and fragment."""

    id: str
    z: list[float]
    lo: list[float]
    hi: list[float]
    fragment: str


@dataclass
class Slider:
    label: str
    low: float
    high: float
    step: float
    value: float
    fragment: str


class Student:
    """One simulated student on base_url (http://host:port)."""

    def __init__(self, base_url: str, seed: int = 0, think: tuple[float, float] = (0.5, 2.0),
                 switch: float = 0.1, pages: tuple[str, ...] = ("", "compare"), timeout_s: float = 60.0,
                 train: bool = False, preset: float = 0.5, click: float = 0.1, model: float = 0.03):
        import requests

        self.base = base_url.rstrip("/")
        self.rng = random.Random(seed)
        self.think, self.switch, self.page_paths, self.timeout_s = think, switch, pages, timeout_s
        self.http = requests.Session()
        self.http.trust_env = False  # never through an http_proxy
        self.stats = Stats()
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.cache: dict[str, list] = {}  # hash -> [message, last run it was used in]
        self.max_age, self.runs = 2, 0
        self.pages: dict[str, str] = {}  # url_pathname -> page_script_hash
        self.page_hash = ""
        self.sliders: dict[str, Slider] = {}
        self.pad: Pad | None = None  # the latent pad or component sliders, when the page shows one
        self.map_id, self.map_points, self.clicks = "", [], 0  # the Explorer's canvas latent map: its test indices
        self.models: tuple[str, list[str], str] | None = None  # (id, options, current) of the sidebar's model box
        self.fetched: set[str] = set()
        self.request: Request | None = None
        self.run_id = ""
        self.lost: asyncio.Event | None = None  # set when the websocket closes under the student
        self.lost_at = 0.0
        self.want_train, self.preset_p, self.click_p, self.model_p = train, preset, click, model
        self.buttons: dict[str, str] = {}  # widget key -> id (the train button)
        self.presets: tuple[str, list[str], str] | None = None  # (id, options, current) of Compare's preset box
        self.timers: dict[str, list[float]] = {}  # run_every fragment -> [interval s, next due (monotonic)]

    # --- the protocol ---------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Ping the server as the browser does (picks the replica and its cookie), then open the websocket."""
        import websockets

        r = await asyncio.to_thread(self.http.get, f"{self.base}/_stcore/health", timeout=10)
        if r.status_code != 200:
            raise OSError(f"/_stcore/health answered {r.status_code}")
        self.stats.replicas.append(r.headers.get("x-aeviz-replica", ""))
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.get_dict().items())
        self.ws = await websockets.connect(
            "ws" + self.base[4:] + "/_stcore/stream", subprotocols=["streamlit"], origin=self.base,
            additional_headers={"Cookie": cookie} if cookie else None, max_size=MAX_MESSAGE, open_timeout=30)
        self.cache, self.sliders, self.request, self.run_id = {}, {}, None, ""  # a new server knows nothing of us
        self.buttons, self.presets, self.timers = {}, None, {}
        self.pad, self.map_id, self.models, self.chooser = None, "", None, ""
        self.lost = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            self.lost = None  # a close of our own is no loss
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        self.http.close()

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        try:
            async for raw in self.ws:
                self._on_message(ForwardMsg.FromString(raw))
        except Exception:
            pass
        finally:
            self.lost_at = time.monotonic()
            if self.lost is not None:
                self.lost.set()
            if self.request and self.request.done and not self.request.done.done():
                self.request.done.set_exception(Disconnected())

    def _on_message(self, msg) -> None:
        if msg.WhichOneof("type") == "ref_hash":  # a message this client holds: resolve it from the cache
            entry = self.cache.get(msg.ref_hash)
            if entry is None:
                self.stats.errors["cache miss"] += 1
                return
            entry[1] = self.runs
            full = type(msg)()
            full.CopyFrom(entry[0])
            full.metadata.CopyFrom(msg.metadata)
            msg = full
        elif msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = [msg, self.runs]
        run = msg.metadata.run.script_run_id if msg.metadata.HasField("run") else ""
        if run and run != self.run_id:
            self._run_started(run, list(msg.metadata.run.fragment_ids))
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.max_age = msg.new_session.config.max_cached_message_age or self.max_age
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "delta":
            self._on_delta(msg.delta)
        elif kind == "script_finished":
            self._run_finished(run, msg.script_finished)
        elif kind == "auto_rerun":
            self.stats.auto_reruns += 1
            a = msg.auto_rerun
            self.timers[a.fragment_id] = [a.interval, time.monotonic() + a.interval]

    def _run_started(self, run: str, fragments: list[str]) -> None:
        if self.request and self.request.run and self.request.run == self.run_id:
            self._complete()  # trap 2: the previous run's script_finished was lost; this start ends it
        self.run_id = run
        if fragments:  # a fragment run redraws only its fragments' widgets
            self.sliders = {k: s for k, s in self.sliders.items() if s.fragment not in fragments}
        else:  # a full run: every widget and run_every fragment is registered again by its deltas
            self.sliders, self.buttons, self.presets, self.timers = {}, {}, None, {}
            self.pad, self.map_id, self.models, self.chooser = None, "", None, ""
        if self.request and not self.request.run:
            self.request.run = run

    def _on_delta(self, delta) -> None:
        if self.request and self.request.run == self.run_id:
            self.request.deltas += 1
        if delta.WhichOneof("type") == "add_block":
            block = delta.add_block
            if block.WhichOneof("type") == "expandable" and block.expandable.id.endswith("-ex_chooser"):
                self.chooser = block.expandable.id  # "Choose a model", where the Train button is
            return
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        if kind == "exception":
            self.stats.errors["exception in the page"] += 1
            if len(self.stats.exception_texts) < 3:
                self.stats.exception_texts.append(f"{el.exception.type}: {el.exception.message}"[:300])
        elif kind == "slider" and el.slider.label[:1] == "z" and el.slider.label[1:].isdigit():
            s = el.slider
            value = s.value[0] if s.value else (s.default[0] if s.default else s.min)
            self.sliders[s.id] = Slider(s.label, s.min, s.max, s.step, value, delta.fragment_id)
        elif kind == "button" and el.button.id.endswith("-ex_train::start") and not el.button.disabled:
            self.buttons["ex_train::start"] = el.button.id
        elif kind == "selectbox" and el.selectbox.id.endswith("-cmp_preset"):
            box = el.selectbox
            self.presets = (box.id, list(box.options), box.raw_value if box.HasField("raw_value") else "")
        elif kind == "bidi_component" and el.bidi_component.id.endswith(("-ex_pad", "-ex_zs")):
            self._on_pad(el.bidi_component, delta.fragment_id)
        elif kind == "bidi_component" and el.bidi_component.id.endswith("-ex_map"):
            self.map_id = el.bidi_component.id
            self.map_points = _map_points(el.bidi_component.json)
        elif kind == "selectbox" and el.selectbox.id.endswith("-model") and not el.selectbox.disabled:
            box = el.selectbox
            self.models = (box.id, list(box.options), box.raw_value if box.HasField("raw_value") else "")
        elif kind == "imgs":
            for img in el.imgs.imgs:
                self._fetch(img.url)

    def _on_pad(self, el, fragment: str) -> None:
        data = json.loads(el.json or "{}")
        z = [float(v) for v in data.get("value") or []]
        if data.get("mode") == "pad":
            lo, hi = [data["x_range"][0], data["y_range"][0]], [data["x_range"][1], data["y_range"][1]]
        else:
            lo, hi = data.get("lo") or [-3.0] * len(z), data.get("hi") or [3.0] * len(z)
        if z:
            self.pad = Pad(el.id, z, [float(v) for v in lo], [float(v) for v in hi], fragment)

    def _fetch(self, url: str) -> None:
        """Fetch a new /media/ image (the browser cannot draw it before); the action waits for it."""
        if not url or url.startswith("data:") or url in self.fetched:
            return
        self.fetched.add(url)
        full = url if url.startswith("http") else f"{self.base}/{url.lstrip('/')}"
        task = asyncio.ensure_future(asyncio.to_thread(self.http.get, full, timeout=30))
        if self.request and self.request.run == self.run_id:
            self.request.fetches.append(task)
        run = self.run_id
        task.add_done_callback(lambda t: self._fetched(t, run, url))

    def _fetched(self, task, run: str, url: str = "") -> None:
        if task.cancelled() or task.exception() is not None:
            self._fetch_failed(f"{'cancelled' if task.cancelled() else repr(task.exception())[:120]}", url, run)
        elif task.result().status_code == 404 and run != self.run_id:
            self.stats.superseded += 1  # a later run replaced the picture before it arrived: the page shows that one
        elif task.result().status_code != 200:
            self._fetch_failed(f"HTTP {task.result().status_code}", url, run)

    def _fetch_failed(self, what: str, url: str, run: str) -> None:
        self.stats.errors["image fetch"] += 1
        if len(self.stats.error_texts) < 3:
            same = "its run still the latest" if run == self.run_id else "a later run had started"
            self.stats.error_texts.append(f"image fetch: {what} for {url.rsplit('/', 1)[-1]} ({same})")

    def _run_finished(self, run: str, status: int) -> None:
        if not run or run != self.run_id:
            return
        self.runs += 1  # the browser ages its message cache by script runs
        self.cache = {h: e for h, e in self.cache.items() if self.runs - e[1] <= self.max_age}
        req = self.request
        if req is None or req.run != run:
            return
        if status == FINISHED_EARLY and req.deltas == 0:
            req.run = ""  # trap 1 does not apply: it delivered nothing; the next run is the one that counts
            return
        if status == COMPILE_ERROR:
            self.stats.errors["compile error"] += 1
        self._complete()

    def _complete(self) -> None:
        req, self.request = self.request, None
        if req and req.done and not req.done.done():
            req.done.set_result(time.monotonic())

    async def _send(self, kind: str, page_hash: str, fragment: str = "", states=(), auto: bool = False,
                    timeout_s: float | None = None) -> float:
        """Send rerun_script and wait for the end of the run it starts (and its images); the latency in ms,
        or None when the server dropped it (a fragment that no longer exists)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_script_hash = page_hash
        cs.page_name = ""
        cs.fragment_id = fragment
        cs.is_auto_rerun = auto
        cs.widget_states.widgets.extend(states)
        cs.cached_message_hashes.extend(self.cache)
        cs.context_info.timezone = "UTC"
        cs.context_info.locale = "en-US"
        cs.context_info.url = self.base + "/"
        req = Request(kind, time.monotonic(), fragment, done=asyncio.get_running_loop().create_future())
        self.request = req
        try:
            await self.ws.send(msg.SerializeToString())
        except Exception as err:
            raise Disconnected() from err
        try:
            end = await asyncio.wait_for(asyncio.shield(req.done), timeout_s or self.timeout_s)
        except TimeoutError:
            self.request = None
            if fragment and not req.run:
                self.stats.superseded += 1  # trap 3: a fragment the last full run removed; silently dropped
                return None
            self.stats.errors["no answer"] += 1
            return None
        if req.fetches:
            await asyncio.gather(*req.fetches, return_exceptions=True)
            end = max(end, time.monotonic())
        return (end - req.sent) * 1000

    # --- what a student does ------------------------------------------------------------------------------

    def _slider_states(self):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        states = []
        for wid, s in self.sliders.items():
            state = WidgetState(id=wid)
            state.double_array_value.data.append(s.value)
            states.append(state)
        return states

    async def load(self, kind: str = "load") -> float | None:
        """(Re)load the current page (the default one at first), as a page load or reload does."""
        return await self._send(kind, self.page_hash)

    async def release(self) -> float | None:
        """Let go of the latent pad somewhere near the current code (the browser decoded the drag itself and sends
        the released code once: a fragment rerun carrying the component's new state)."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        p = self.pad
        d = self.rng.randrange(len(p.z))
        step = (p.hi[d] - p.lo[d]) * self.rng.uniform(-0.15, 0.15)
        p.z[d] = min(p.hi[d], max(p.lo[d], p.z[d] + step))
        state = WidgetState(id=p.id, json_value=json.dumps({"z": p.z}))
        return await self._send("release", self.page_hash, p.fragment, [state])

    async def click_map(self) -> float | None:
        """Click one point of the Explorer's canvas latent map: a full rerun carrying its click {"i", "n"}."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        self.clicks += 1
        click = {"selected": {"i": self.rng.choice(self.map_points), "n": self.clicks}}
        return await self._send("map click", self.page_hash, "", [WidgetState(id=self.map_id, json_value=json.dumps(click))])

    async def switch_model(self) -> float | None:
        """Pick another model in the sidebar's model box (a full rerun)."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        wid, options, current = self.models
        choice = self.rng.choice([o for o in options if o != current] or options)
        return await self._send("model", self.page_hash, "", [WidgetState(id=wid, string_value=choice)])

    async def move_slider(self) -> float | None:
        wid, s = self.rng.choice(sorted(self.sliders.items()))
        steps = self.rng.choice((-3, -2, -1, 1, 2, 3))
        s.value = min(s.high, max(s.low, s.value + steps * s.step))
        return await self._send("slider", self.page_hash, s.fragment, self._slider_states())

    async def switch_page(self) -> float | None:
        here = {h: p for p, h in self.pages.items()}.get(self.page_hash)
        targets = [p for p in self.page_paths if p in self.pages and p != here]
        if not targets:
            return await self.load("page")
        return await self._send("page", self.pages[self.rng.choice(targets)])

    def _chooser_state(self) -> list:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        return [WidgetState(id=self.chooser, bool_value=True)] if self.chooser else []

    async def open_chooser(self) -> float | None:
        """Open the Explorer's "Choose a model" box (its content runs only while open): a full rerun."""
        return await self._send("open", self.page_hash, "", [*self._slider_states(), *self._chooser_state()])

    async def press_train(self) -> float | None:
        """Press the Explorer's Train button: a full rerun whose state carries the button's trigger (and the open
        box around it, as a browser sends every widget's state)."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        self.want_train = False
        states = [*self._slider_states(), *self._chooser_state(),
                  WidgetState(id=self.buttons["ex_train::start"], trigger_value=True)]
        return await self._send("train", self.page_hash, "", states)

    async def switch_preset(self) -> float | None:
        """Pick another preset in Compare's selectbox (its on_change applies it)."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        wid, options, current = self.presets
        choice = self.rng.choice([o for o in options if o != current] or options)
        return await self._send("preset", self.page_hash, "", [WidgetState(id=wid, string_value=choice)])

    async def poll(self, fragment: str) -> float | None:
        """The browser's run_every timer fired: rerun that fragment with is_auto_rerun."""
        self.stats.polls += 1
        return await self._send("poll", self.page_hash, fragment, self._slider_states(), auto=True,
                                timeout_s=min(10.0, self.timeout_s))  # a finished job's fragment is dropped

    async def act(self) -> None:
        """One action, its latency recorded."""
        if self.want_train and "ex_train::start" in self.buttons:
            kind, ms = "train", await self.press_train()
        elif self.want_train and self.chooser:
            kind, ms = "open", await self.open_chooser()
        elif self.presets and self.rng.random() < self.preset_p:
            kind, ms = "preset", await self.switch_preset()
        elif self.pad and (r := self.rng.random()) >= self.switch:
            if self.map_points and r < self.switch + self.click_p:
                kind, ms = "map click", await self.click_map()
            elif self.models and r < self.switch + self.click_p + self.model_p:
                kind, ms = "model", await self.switch_model()
            else:
                kind, ms = "release", await self.release()
        elif self.sliders and self.rng.random() >= self.switch:
            kind, ms = "slider", await self.move_slider()
        else:
            kind, ms = "page", await self.switch_page()
        if ms is not None:
            self.stats.actions.append((time.monotonic(), kind, ms))

    async def recover(self, deadline: float) -> None:
        """The websocket dropped: reconnect through the same URL (the proxy picks a live replica) and reload."""
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        lost = self.lost_at or time.monotonic()
        self.stats.disconnects += 1
        while time.monotonic() < deadline:
            try:
                await self.connect()
                if await self.load("reload") is not None:
                    self.stats.recoveries.append((lost, time.monotonic()))
                    return
            except Exception:
                await asyncio.sleep(0.5)
        self.stats.errors["not served again"] += 1

    async def _think(self) -> bool:
        """Wait a think time, firing due run_every timers meanwhile; True if the connection dropped (the browser
        notices at once)."""
        end = time.monotonic() + self.rng.uniform(*self.think)
        while True:
            now = time.monotonic()
            due = min((t[1] for t in self.timers.values()), default=end)
            try:
                await asyncio.wait_for(self.lost.wait(), max(0.0, min(end, due) - now))
                return True
            except TimeoutError:
                pass
            if time.monotonic() >= end:
                return False
            for fragment, timer in list(self.timers.items()):
                if timer[1] <= time.monotonic():
                    timer[1] = time.monotonic() + timer[0]
                    ms = await self.poll(fragment)
                    if ms is not None:
                        self.stats.actions.append((time.monotonic(), "poll", ms))

    async def session(self, until: float, recover_s: float = 60.0) -> Stats:
        """Connect, load the default page, then act every think seconds until `until` (monotonic clock)."""
        try:
            await self.connect()
            await self.load()
        except (TimeoutError, OSError, Disconnected) as err:
            self.stats.errors[f"connect: {type(err).__name__}"] += 1
            return self.stats
        while time.monotonic() < until:
            try:
                if await self._think():
                    raise Disconnected()
                await self.act()
            except Disconnected:
                await self.recover(time.monotonic() + recover_s)
        await self.close()
        return self.stats


def _map_points(data: str) -> list[int]:
    """The test indices of the canvas map's points (its data's "xy": the codes as JSON text, two numbers each)."""
    try:
        return list(range(len(json.loads(json.loads(data)["xy"])) // 2))
    except (ValueError, KeyError, TypeError):
        return []


def rounded(v, digits: int = 1):
    """v rounded for a report, None kept."""
    return None if v is None else round(v, digits)


def error_counts(crowd: list[Student]) -> Counter:
    """Every student's errors, by kind."""
    return sum((s.stats.errors for s in crowd), Counter())


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None without values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (pos - lo)


async def warm(url: str, replicas: int = 1, pages: tuple[str, ...] = ("", "compare")) -> set[str]:
    """Before a class: one student per replica at once (HAProxy's leastconn spreads them) loads the default page
    and visits the others, so the class does not pay for the first imports; the replicas that answered."""
    crowd = [Student(url, seed=10_000 + i, pages=pages, timeout_s=240) for i in range(replicas)]

    async def visit(s: Student):
        await s.connect()
        await s.load()
        for _ in pages[1:]:
            await s.switch_page()
        await s.close()

    await asyncio.gather(*(visit(s) for s in crowd), return_exceptions=True)
    return {r for s in crowd for r in s.stats.replicas}


async def class_session(base_url: str, students: int, seconds: float, seed: int = 0, stagger_s: float = 2.0,
                        training: int = 0, **student_kw) -> list[Student]:
    """`students` students on base_url for `seconds`, their starts spread over stagger_s; the students.
    The first `training` of them press Train once (and poll its live panel)."""
    until = time.monotonic() + seconds
    crowd = [Student(base_url, seed + i, train=i < training, **student_kw) for i in range(students)]

    async def one(i: int, s: Student):
        await asyncio.sleep(stagger_s * i / max(1, students))
        return await s.session(until)

    await asyncio.gather(*(one(i, s) for i, s in enumerate(crowd)))
    return crowd
