"""aeviz.jobs: trainings in spawned worker processes, a queue, Stop, kill -9 and shutdown.

Every job spawns a real worker (about 2-3 s to import torch, scikit-learn and the data on the shared machine),
so the trainings themselves are tiny. Waits poll the pool with a generous deadline that only guards against hangs.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import aeviz
from aeviz import jobs
from aeviz.jobs import BUSY, CLOSED, JobError, JobPool

HANG_S = 120  # only a guard against a hang; nothing here asserts how long anything took


@pytest.fixture(scope="module")
def mc():
    return aeviz.config_for("digits", hidden=(16,), latent_dim=2)


def short(epochs: int = 3) -> aeviz.TrainConfig:
    return aeviz.TrainConfig(epochs=epochs, max_train=200)  # 2 steps per epoch


LONG = aeviz.TrainConfig(epochs=10_000, max_train=200)  # runs until stopped


@pytest.fixture
def make_pool():
    pools = []

    def make(workers: int) -> JobPool:
        pools.append(JobPool(workers))
        return pools[-1]

    yield make
    for p in pools:
        p.shutdown()


def wait_until(pool: JobPool, job_id: str, cond, seen: list | None = None) -> jobs.JobStatus:
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        s = pool.status(job_id)
        if seen is not None:
            seen.append(s.step)
        if cond(s):
            return s
        time.sleep(0.02)
    raise AssertionError(f"job never got there: {s.state}, step {s.step}, error {s.error}")


def done(s):
    return s.done


def test_progress_streams_and_the_result_is_a_checkpoint(make_pool, mc):
    pool = make_pool(2)
    job = pool.submit("alice", mc, short(3), name="tiny")
    seen: list[int] = []
    s = wait_until(pool, job, done, seen)
    assert s.state == "finished" and s.error is None and s.message.startswith("Trained 3 epochs")
    assert seen == sorted(seen) and seen[-1] == s.total == s.step == 6  # steps only grow, up to the last
    assert s.steps == [1, 2, 3, 4, 5, 6]
    assert {"loss", "recon"} <= set(s.terms) and all(len(v) == 6 for v in s.terms.values())
    assert s.history["epochs"] == [1, 2, 3] and len(s.history["test"]["loss"]) == 3
    assert s.snapshot_epochs == [0, 1, 2, 3] and all(xy.shape == (360, 2) for xy in s.snapshots)
    # the worker kept one torch thread and sleeping OpenMP threads, as the server does, and yields the CPU to it
    # in a session of its own, whose scheduling group (where Linux has autogroups) is at niceness 19
    assert s.worker == {"torch_threads": 1, "sched": "idle", "nice": os.nice(0), "OMP_NUM_THREADS": "1",
                        "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "own_session": True,
                        "group_nice": 19 if jobs.autogroups() else None}
    model = aeviz.load(s.result)
    assert model.config == mc and model.history["status"] == "finished"
    assert model.metrics["epochs"] == 3 and model.metrics["params"] == model.n_params
    assert {"test_mse", "pca_mse", "knn_acc", "train_seconds"} <= set(model.metrics)
    assert s.metrics == model.metrics and s.pid is None and pool.latest("alice") == job


def test_stop_keeps_the_weights_trained_so_far(make_pool, mc):
    pool = make_pool(1)
    job = pool.submit("bob", mc, LONG)
    wait_until(pool, job, lambda s: s.step >= 5)
    pool.stop(job)
    s = wait_until(pool, job, done)
    assert s.state == "stopped" and s.error is None and s.message.startswith("Stopped at epoch")
    assert 5 <= s.step < s.total and s.steps[-1] <= s.step
    model = aeviz.load(s.result)
    assert model.history["status"] == "stopped" and model.metrics["epochs"] == len(s.history["epochs"])


def test_queued_jobs_wait_their_turn_and_start_by_themselves(make_pool, mc):
    pool = make_pool(1)
    first = pool.submit("a", mc, short(2))
    second = pool.submit("b", mc, short(2))
    third = pool.submit("c", mc, short(2))
    assert pool.status(first).state == "running" and pool.status(first).position is None
    assert (pool.status(second).state, pool.status(second).position) == ("queued", 1)
    assert (pool.status(third).state, pool.status(third).position) == ("queued", 2)

    pool.stop(third)  # a queued job just leaves the queue
    s3 = pool.status(third)
    assert (s3.state, s3.message, s3.result, s3.position) == ("stopped", "Stopped before it started.", None, None)

    s2 = wait_until(pool, second, done)
    s1 = pool.status(first)
    assert s1.state == s2.state == "finished" and aeviz.load(s2.result).history["epochs"] == [1, 2]
    assert s1.ended_at <= s2.started_at  # the second started only once the first had ended


def test_one_job_per_student(make_pool, mc):
    pool = make_pool(1)
    pool.submit("other", mc, LONG)  # holds the only slot, so the jobs below stay queued
    mine = pool.submit("me", mc, short())
    with pytest.raises(JobError) as err:
        pool.submit("me", mc, short())
    assert str(err.value) == BUSY == "You already have a training running; stop it or wait for it to finish."
    pool.stop(mine)
    again = pool.submit("me", mc, short())  # once stopped, the student may train again
    assert pool.status(again).position == 1 and pool.status(mine) is None  # only the latest is kept
    assert pool.latest("me") == again


def test_a_killed_worker_fails_only_its_own_job(make_pool, mc):
    pool = make_pool(2)
    victim = pool.submit("victim", mc, LONG)
    bystander = pool.submit("bystander", mc, LONG)
    pid = wait_until(pool, victim, lambda s: s.step > 0).pid
    wait_until(pool, bystander, lambda s: s.step > 0)
    os.kill(pid, signal.SIGKILL)

    s = wait_until(pool, victim, done)
    assert s.state == "failed" and s.result is None
    assert s.error == ("The training process stopped unexpectedly (killed); nothing else was affected "
                       "— press Train to try again.")
    at_kill = pool.status(bystander)
    assert at_kill.state == "running"
    wait_until(pool, bystander, lambda b: b.step > at_kill.step)  # it kept training

    retry = pool.submit("victim", mc, short(2))  # the pool keeps working: a new job runs in the freed slot
    assert wait_until(pool, retry, done).state == "finished"
    pool.stop(bystander)
    b = wait_until(pool, bystander, done)
    assert b.state == "stopped" and aeviz.load(b.result).history["status"] == "stopped"


def test_shutdown_leaves_no_worker_behind(make_pool, mc):
    pool = make_pool(2)
    ids = [pool.submit(owner, mc, LONG) for owner in ("x", "y", "z")]  # two run, one waits
    pids = [wait_until(pool, i, lambda s: s.step > 0).pid for i in ids[:2]]
    pool.shutdown()
    states = [pool.status(i) for i in ids]
    assert [(s.state, s.error) for s in states] == [("failed", CLOSED), ("failed", CLOSED), ("stopped", CLOSED)]
    for pid in pids:
        with pytest.raises(ProcessLookupError):  # exited and reaped
            os.kill(pid, 0)
    with pytest.raises(JobError, match="shutting down"):
        pool.submit("w", mc, short())


def test_a_failure_in_the_worker_is_one_sentence(make_pool, mc):
    pool = make_pool(1)
    s = wait_until(pool, pool.submit("d", mc, short(), dataset_name="no-such-data"), done)
    assert s.state == "failed" and s.error.startswith("Unknown dataset 'no-such-data'; choose one of")


def test_workers_start_with_one_sleeping_thread_unless_told_otherwise(monkeypatch):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "PYTHONPATH"):
        monkeypatch.delenv(var, raising=False)
    env = jobs._worker_env()  # set before the worker's Python starts, so before torch does
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OMP_WAIT_POLICY"]) == ("1", "1", "PASSIVE")
    assert env["PYTHONPATH"] == os.path.dirname(os.path.dirname(aeviz.__file__))  # this aeviz, installed or not
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a teacher's explicit choice wins, as in the server
    assert jobs._worker_env()["OMP_WAIT_POLICY"] == "ACTIVE"


def test_aeviz_workers_sets_the_pool_size(monkeypatch):
    monkeypatch.setenv("AEVIZ_WORKERS", "3")
    assert jobs.default_workers() == 3
    for nonsense in ("0", "-2", "many", ""):
        monkeypatch.setenv("AEVIZ_WORKERS", nonsense)
        assert jobs.default_workers() == aeviz.threads.cores()


class FakeConn:
    def __init__(self):
        self.sent = []

    def poll(self):
        return False

    def send(self, msg):
        self.sent.append(msg)


def test_the_worker_thins_points_and_snapshots(mc):
    # in-process: the reporter alone, over 1,300 one-step epochs
    from aeviz.data import load

    tc = aeviz.TrainConfig(epochs=1300, max_train=200, batch_size=200, eval_every=0)
    conn, data = FakeConn(), load("digits")
    reporter = jobs._Reporter(conn, tc, data.x_test)
    aeviz.train(mc, tc, data, reporter)
    reporter.flush()
    steps = [s for m in conn.sent for s in m["steps"]]
    epochs = [e for m in conn.sent for e, _ in m["snapshots"]]
    assert steps == sorted(steps) and steps[0] == 1 and len(steps) <= jobs.MAX_POINTS
    assert len(epochs) <= jobs.MAX_SNAPSHOTS and epochs[0] == 0 and epochs[-1] == 1300
    assert conn.sent[-1]["step"] == 1300
    assert len(conn.sent) < 1300 / 2  # throttled: far fewer messages than steps


APP = '''
import os, time
from pathlib import Path

import aeviz
import streamlit as st
from aeviz import jobs


@st.cache_resource
def pool():
    p = jobs.JobPool(workers=1)
    jobs.shutdown_at_exit(p)
    return p


job = pool().submit("t", aeviz.config_for("digits", hidden=(16,), latent_dim=2),
                    aeviz.TrainConfig(epochs=10_000, max_train=200))
while pool().status(job).step == 0 and not pool().status(job).done:
    time.sleep(0.05)
s = pool().status(job)
Path(os.environ["AEVIZ_TEST_WORKER"]).write_text(f"{s.pid} {s.state} {s.error}")
st.write("training")
'''


SPINNING = '''
import os, threading
from pathlib import Path

import torch

import aeviz.ui  # noqa: F401  (every page imports it first)
import streamlit as st

torch.set_num_threads(1)
a = torch.randn(600, 600)


def spin():
    while True:
        torch.mm(a, a)


for _ in range(2):  # daemon threads inside torch as the server stops, as Streamlit's own script threads can be
    threading.Thread(target=spin, daemon=True).start()
Path(os.environ["AEVIZ_TEST_WORKER"]).write_text("spinning")
st.write("spinning")
'''


def _run_then_sigterm(tmp_path, app: str) -> tuple[int, str, str]:
    """`streamlit run` app, be its first session, wait until the page wrote the file named by AEVIZ_TEST_WORKER,
    then SIGTERM the server: (its exit status, the file's text, the server's log)."""
    import socket
    import subprocess
    import sys

    from streamlit.proto.BackMsg_pb2 import BackMsg
    from websockets.sync.client import connect

    (tmp_path / "app.py").write_text(app)
    report, log = tmp_path / "worker.txt", tmp_path / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
           str(port), "--server.headless", "true", "--server.enableXsrfProtection", "false",
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    root = str(os.path.dirname(os.path.dirname(aeviz.__file__)))
    env = {**os.environ, "AEVIZ_TEST_WORKER": str(report), "PYTHONPATH": root}
    with log.open("w") as out:
        server = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + HANG_S
        while True:  # the page runs only once a browser session asks for it: be that session
            try:
                ws = connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"])
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        ws.send(msg.SerializeToString())
        while not (report.exists() and report.read_text()):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        rc = server.wait(HANG_S)
        ws.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return rc, report.read_text(), log.read_text()


def test_sigterm_stops_streamlit_and_its_workers(tmp_path):
    """`streamlit run` a page that starts a long training, SIGTERM the server: it exits 0 and so does the worker."""
    rc, report, text = _run_then_sigterm(tmp_path, APP)
    pid, state, _ = report.split(" ", 2)
    assert state == "running", report
    assert rc == 0, text
    assert "terminate called" not in text and "Traceback" not in text, text
    with pytest.raises(ProcessLookupError):  # the worker was stopped (and reaped) before the server exited
        os.kill(int(pid), 0)


def test_sigterm_exits_0_while_daemon_threads_are_inside_torch_and_nobody_trained(tmp_path):
    """Python's own exit aborts beside daemon threads inside torch ("terminate called without an active exception",
    every time for this page as a plain script); a server that never made a training pool still exits 0."""
    rc, report, text = _run_then_sigterm(tmp_path, SPINNING)
    assert report == "spinning"
    assert rc == 0, text
    assert "terminate called" not in text and "Traceback" not in text, text


@pytest.mark.parametrize("nice, want", [("", {"sched": "idle", "nice": 0}), ("5", {"sched": "normal", "nice": 5})])
def test_workers_run_when_the_class_leaves_a_core_idle_or_at_a_given_niceness(nice, want):
    env = {k: v for k, v in os.environ.items() if k != "AEVIZ_WORKER_NICE"} | ({"AEVIZ_WORKER_NICE": nice} if nice else {})
    code = "import json; from aeviz import jobs; jobs._lower_priority(); print(json.dumps(jobs._priority()))"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    got = json.loads(run.stdout.strip().splitlines()[-1])
    # a process that shares our session leaves its scheduling group alone: the group is ours (and the shell's)
    assert got == {"sched": want["sched"], "nice": max(os.nice(0), want["nice"]), "own_session": False,
                   "group_nice": jobs._group_nice()}, run.stderr


@pytest.mark.parametrize("nice", ["", "7"])
def test_the_server_lowers_a_worker_from_its_first_instant(nice, monkeypatch):
    """The pool lowers each worker by its pid as it starts it: the worker's own start (importing torch, a second of
    CPU) must not compete with the class either."""
    monkeypatch.setenv("AEVIZ_WORKER_NICE", nice)
    ours = jobs._group_nice()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        jobs._lower_priority(child.pid)
        if nice:
            assert os.getpriority(os.PRIO_PROCESS, child.pid) == max(7, os.nice(0))
        else:
            assert os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE and os.getpriority(os.PRIO_PROCESS, 0) == os.nice(0)
        # the worker's own session's group is lowered too (where Linux has autogroups); ours is not
        assert jobs._group_nice(child.pid) == (int(nice or 19) if jobs.autogroups() else None)
        assert jobs._group_nice() == ours
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("ending, status, said", [("sys.exit(0)", 0, ""), ("sys.exit(3)", 3, ""),
                                                 ("sys.exit('no port left')", 1, "no port left"), ("", 0, "")])
def test_the_servers_exit_hook_keeps_the_status_it_was_given(ending, status, said):
    """The hook ends a server with os._exit, skipping Python's own exit, but with the status sys.exit was given."""
    import subprocess
    import sys

    code = ("import sys; sys.orig_argv = [sys.executable, '-m', 'streamlit', 'run', 'app.py']\n"
            "from aeviz import jobs; jobs.exit_cleanly_when_serving()\n" + ending)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == status, run.stderr
    assert run.stderr.strip().endswith(said) and "Traceback" not in run.stderr, run.stderr


@pytest.mark.parametrize("argv, serving", [
    (["/venv/bin/python", "-m", "streamlit", "run", "app.py", "--server.port", "8501"], True),
    (["/venv/bin/python", "/venv/bin/streamlit", "run", "app.py"], True),
    (["/venv/bin/python", "-m", "pytest", "tests/core/test_jobs.py"], False),
    (["/venv/bin/python", "/venv/bin/streamlit", "hello"], False),
    (["/venv/bin/python", "-m", "aeviz", "serve", "--replicas", "2"], False),
    (["/tmp/app.py"], False),  # what Streamlit leaves in sys.argv during a run: the reason for sys.orig_argv
    (["/venv/bin/python", "-m", "pytest", "-k", "streamlit", "run"], False),
    (["/venv/bin/python", "-X", "dev", "-m", "streamlit", "run", "app.py"], True),
])
def test_a_streamlit_run_server_is_told_by_the_command_python_got(argv, serving):
    assert jobs._serving(argv) is serving


def test_a_refused_group_write_is_tried_again_by_the_worker_and_skipped_when_done(monkeypatch):
    """Without CAP_SYS_ADMIN the kernel takes one autogroup write every 100 ms (EAGAIN for the others): the worker
    tries again, 110 ms apart; the server, under the pool's lock, tries once; a group already there is not written."""
    writes, slept, level = [], [], {"now": 0}

    class Refusing:
        def __init__(self, path):
            self.path = path

        def write_text(self, text):
            writes.append(text)
            if len(writes) < 3:
                raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(jobs, "Path", Refusing)
    monkeypatch.setattr(jobs, "_group_nice", lambda pid=0: level["now"])
    monkeypatch.setattr(jobs.time, "sleep", slept.append)
    monkeypatch.setattr(jobs.os, "getsid", lambda pid: pid)  # every pid leads its session
    jobs._lower_group(4321, "19", tries=5)
    assert writes == ["19", "19", "19"] and slept == [0.11, 0.11]
    writes.clear()
    jobs._lower_group(4321, "19")
    assert writes == ["19"]  # refused once: the server does not wait
    writes.clear()
    level["now"] = 19
    jobs._lower_group(4321, "19", tries=5)
    assert writes == []
