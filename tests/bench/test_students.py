"""The simulated students' client: the protocol notes' three traps and the message cache, on hand-made messages;
then one student against the real app (streamlit run, one server)."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from aeviz.bench.serving import ROOT
from aeviz.bench.students import Request, Student, percentile
from aeviz.io import PRETRAINED
from aeviz.serve import answers, free_port


def msg(run: str = "", kind: str = "delta", fragments=(), status: int = 0, slider: str = "") -> ForwardMsg:
    m = ForwardMsg()
    if run:
        m.metadata.run.script_run_id = run
        m.metadata.run.fragment_ids.extend(fragments)
    if kind == "delta":
        if slider:
            s = m.delta.new_element.slider
            s.id, s.label, s.min, s.max, s.step = slider, "z1", -1.0, 1.0, 0.1
            s.value.append(0.5)
            m.delta.fragment_id = "frag"
        else:
            m.delta.new_element.markdown.body = "x"
    elif kind == "finished":
        m.script_finished = status
    return m


def pending(student: Student, kind: str = "slider") -> Request:
    req = Request(kind, time.monotonic(), done=asyncio.get_running_loop().create_future())
    student.request = req
    return req


def test_a_run_ends_at_its_script_finished_and_stale_messages_do_not_end_it():
    async def go():
        s = Student("http://127.0.0.1:9")
        s._on_message(msg("old"))  # the end of an earlier run
        req = pending(s)
        s._on_message(msg("old", "finished"))  # its script_finished, late: not ours
        assert not req.done.done()
        s._on_message(msg("new", slider="$$ID-1-z"))
        s._on_message(msg("new", "finished", status=0))
        assert req.done.done() and req.run == "new" and req.deltas == 1
        assert list(s.sliders) == ["$$ID-1-z"] and s.sliders["$$ID-1-z"].fragment == "frag"

    asyncio.run(go())


def test_trap_1_a_fragment_run_that_delivered_deltas_counts_even_if_relabelled_early():
    async def go():
        s = Student("http://127.0.0.1:9")
        req = pending(s)
        s._on_message(msg("f1", fragments=["frag"]))
        s._on_message(msg("f1", "finished", status=2))  # FINISHED_EARLY_FOR_RERUN, after a delta
        assert req.done.done()
        req = pending(s)
        s._on_message(msg("f2", "finished", status=2))  # early, and nothing delivered: the next run is ours
        assert not req.done.done() and req.run == ""
        s._on_message(msg("f3"))
        s._on_message(msg("f3", "finished", status=3))
        assert req.done.done() and req.run == "f3"

    asyncio.run(go())


def test_trap_2_a_lost_script_finished_is_ended_by_the_next_run_start():
    async def go():
        s = Student("http://127.0.0.1:9")
        req = pending(s)
        s._on_message(msg("a"))
        s._on_message(msg("b"))  # a's script_finished never came
        assert req.done.done()

    asyncio.run(go())


def test_trap_3_a_fragment_rerun_that_starts_no_run_is_superseded_and_a_full_one_an_error():
    class Silent:  # a server that drops what it gets
        async def send(self, data):
            pass

    async def go():
        s = Student("http://127.0.0.1:9", timeout_s=0.05)
        s.ws = Silent()
        assert await s._send("slider", "page", fragment="gone") is None
        assert s.stats.superseded == 1 and not s.stats.errors
        assert await s._send("page", "page") is None
        assert s.stats.errors == {"no answer": 1} and s.stats.superseded == 1

    asyncio.run(go())


def test_an_image_a_later_run_replaced_is_superseded_and_one_of_the_current_run_that_fails_an_error():
    class Answer:  # what requests.get returns, as far as _fetched looks
        def __init__(self, status_code):
            self.status_code = status_code

    async def go():
        s = Student("http://127.0.0.1:9")
        s.run_id = "r2"
        loop = asyncio.get_running_loop()

        def done(value):
            f = loop.create_future()
            f.set_result(value)
            return f

        s._fetched(done(Answer(404)), "r1")  # fetched for run r1; r2 has replaced the picture since
        s._fetched(done(Answer(200)), "r2")
        assert s.stats.superseded == 1 and not s.stats.errors
        s._fetched(done(Answer(404)), "r2")  # the current run's own picture is missing: an error
        s._fetched(done(Answer(500)), "r1")
        assert s.stats.errors == {"image fetch": 2} and s.stats.superseded == 1
        assert s.stats.error_texts == ["image fetch: HTTP 404 for  (its run still the latest)",
                                       "image fetch: HTTP 500 for  (a later run had started)"]

    asyncio.run(go())


def test_a_fragment_run_keeps_the_other_fragments_widgets_and_a_full_run_clears_them():
    s = Student("http://127.0.0.1:9")
    s._on_message(msg("a", slider="$$ID-1-z"))
    s._on_message(msg("b", fragments=["other"]))
    assert list(s.sliders) == ["$$ID-1-z"]
    s._on_message(msg("c"))
    assert s.sliders == {}


def test_cached_messages_are_resolved_and_expire_after_max_age_runs():
    s = Student("http://127.0.0.1:9")
    m = msg("a", slider="$$ID-7-z")
    m.hash, m.metadata.cacheable = "h1", True
    s._on_message(m)
    s._on_message(msg("a", "finished"))
    ref = ForwardMsg(ref_hash="h1")
    ref.metadata.run.script_run_id = "b"
    s._on_message(ref)  # run b draws the same slider from the cache
    assert list(s.sliders) == ["$$ID-7-z"] and not s.stats.errors
    for run in ("b", "c", "d", "e"):
        s._on_message(msg(run))
        s._on_message(msg(run, "finished"))
    assert "h1" not in s.cache  # not used in max_age (2) runs
    s._on_message(ref)
    assert s.stats.errors["cache miss"] == 1


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2 and percentile([0, 10], 95) == pytest.approx(9.5)


@pytest.mark.skipif(not (PRETRAINED / "ae-mlp-z2.safetensors").exists(), reason="no default model")
def test_one_student_releases_the_pad_clicks_the_map_switches_model_and_page_on_the_real_app(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address",
                                   "127.0.0.1", "--server.port", str(port)], cwd=ROOT, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not answers(f"http://127.0.0.1:{port}/_stcore/health"):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

        async def go():
            s = Student(f"http://127.0.0.1:{port}", timeout_s=180)
            await s.connect()
            assert await s.load() > 0
            assert s.pad is not None and s.pad.id.endswith("-ex_pad") and len(s.pad.z) == 2  # the latent pad
            assert all(lo < z < hi for z, lo, hi in zip(s.pad.z, s.pad.lo, s.pad.hi))
            assert len(s.map_points) == 1000 and s.models and "ae-mlp-z2" in s.models[2]  # the map, the model box
            old = s.pad
            assert await s.release() > 0  # a fragment rerun: the server draws the pad again at the released code
            assert s.pad is not old and s.pad.z == pytest.approx(old.z) and s.pad.fragment == old.fragment
            before = set(s.fetched)
            assert await s.click_map() > 0  # a full rerun: the clicked sample is selected
            assert s.fetched == before  # its pictures came inside their elements (data: URLs): nothing to fetch
            assert s.pad.z != pytest.approx(old.z)  # the pad starts again at the selected sample's code
            assert await s.switch_model() > 0 and s.models[2] != "" and "ae-mlp-z2" not in s.models[2]
            assert {"", "compare"} <= set(s.pages)
            assert await s.switch_page() > 0 and s.page_hash == s.pages["compare"] and s.pad is None
            await s.close()
            return s.stats

        stats = asyncio.run(go())
        assert not stats.errors and stats.superseded == 0 and stats.disconnects == 0
    finally:
        server.terminate()
        server.wait(30)


def test_the_bench_page_wanders_on_the_pad_and_never_sticks_at_its_edge():
    """The class bench's page presses one arrow key at a time: its point goes five presses right, five left. It once
    pressed right every time, reached the pad's edge after ~41 presses, and waited in vain for a commit."""
    from aeviz.bench.browser import pad_latencies

    keys = []

    class Page:
        keyboard = type("K", (), {"press": staticmethod(keys.append)})()

        def locator(self, _):
            return type("L", (), {"focus": lambda self: None, "evaluate": lambda self, _: None})()

        def wait_for_selector(self, *_):
            pass

        def wait_for_function(self, *_, **__):
            pass

        def evaluate(self, script):
            return [{"down": 1.0, "frame": 3.0}, {"up": 2.0, "shown": 7.0}] if script.startswith("[") else None

    page = Page()
    out = [pad_latencies(page, 1, k) for k in range(12)]
    assert keys == ["ArrowRight"] * 5 + ["ArrowLeft"] * 5 + ["ArrowRight"] * 2
    assert out[0] == ([2.0], [5.0])
