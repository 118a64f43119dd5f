"""`aeviz bench class`: one `streamlit run app.py` (or, with --replicas N, `aeviz serve --replicas N`: HAProxy in
front of N of them) and a simulated class of N students on it, plus one Chromium page.

The server runs as a teacher starts it, on 127.0.0.1 and a free port, with MALLOC_ARENA_MAX=2 in its environment:
glibc gives every thread that mallocs its own arena (up to 8 per core), and Streamlit runs each session's script in
a thread of its own, so with a class of sessions the arenas multiply and hold freed memory the process never gives
back: its RSS grows with the number of students who ever ran a script, not with the work. Two arenas cap that.
AEVIZ_DATA points at a temporary folder, so the students' trained models do not land in the teacher's.

The students (aeviz/bench/students.py) load the Explorer and then, every 0.5-2 s, release the latent pad (most
actions), click the latent map, switch model, switch to Compare and back, switch Compare's preset there; a share
of them (`training`) press Train once and then poll the live panel as the browser's run_every timer does.
Latency of an action: from sending it to the end of the run it started and its images. Beside them, one real
Chromium page joins after the students have started (first_screen_s_during_class:
navigation until the latent map is drawn and the page is idle) and then moves the latent pad with its arrow keys
and lets go, again and again (browser_release_to_image_ms_p95: from the release to the committed code shown by the
server's fragment rerun; the decoded image itself is drawn in the page at every step).
The server's RSS (its own, /proc/PID/status) and CPU (its own and its training workers', /proc/PID/stat) are sampled
every 0.5 s (with replicas: summed over the replicas and the proxy). What the bench itself costs the shared cores is
reported beside it: students_cpu_cores (this process: the simulated class) and browser_cpu_cores (Chromium and its
Playwright client, a process of their own). At the end it gets SIGTERM; exit_status is its exit code (0 is a clean
shutdown; aeviz serve's is 0 only when every replica stopped cleanly).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import multiprocessing
import os
import queue
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..jobs import autogroups
from ..serve import terminate
from .browser import CHROMIUM, CHROMIUM_ARGS, IDLE, MAP, PAD, ROOT, cpu_seconds, free_port, pad_latencies
from .students import class_session, error_counts, percentile, rounded, warm

TICK = os.sysconf("SC_CLK_TCK")
STUDENTS_NICE = 5
BROWSER_NICE = 19  # the scheduling group of the bench's Chromium page (see _below_the_server)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """The live processes below pid (its training workers and theirs)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of pid, of its children it has waited for, and of its live descendants."""
    total = 0.0
    fields = _stat(pid)
    if fields:
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK  # utime stime cutime cstime
    for kid in descendants(pid):
        f = _stat(kid)
        if f:
            total += (int(f[11]) + int(f[12])) / TICK
    return total


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler(threading.Thread):
    """The servers' RSS and their trees' CPU every `every` seconds, until stopped (several pids: replicas, summed)."""

    def __init__(self, pids: list[int], every: float = 0.5):
        super().__init__(daemon=True)
        self.pids, self.every, self.stop = pids, every, threading.Event()
        self.rss_peak, self.workers_peak = 0.0, 0
        self.t0, self.cpu0, self.own0 = time.monotonic(), self._tree(), self._own()
        self.t1, self.cpu1, self.own1 = self.t0, self.cpu0, self.own0

    def _tree(self) -> float:
        return sum(tree_cpu_seconds(p) for p in self.pids)

    def _own(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids)

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.rss_peak = max(self.rss_peak, sum(rss_mb(p) for p in self.pids))
            self.workers_peak = max(self.workers_peak, sum(len(descendants(p)) for p in self.pids))
            own = self._own()  # NaN once a server has gone: keep the last reading
            if own == own:
                self.t1, self.cpu1, self.own1 = time.monotonic(), self._tree(), own

    def cores(self) -> float:
        return (self.cpu1 - self.cpu0) / max(1e-9, self.t1 - self.t0)

    def own_cores(self) -> float:
        return (self.own1 - self.own0) / max(1e-9, self.t1 - self.t0)


def class_env(data: Path) -> dict[str, str]:
    """The server's environment: two malloc arenas (see above), the students' files in a temporary folder."""
    return {"MALLOC_ARENA_MAX": "2", "AEVIZ_DATA": str(data)}


def start_class_server(port: int, data: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **class_env(data)}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


@contextlib.contextmanager
def one_server(tmp: Path):
    """`streamlit run app.py` on a free port: yield (url, pids to sample, a function that stops it and returns its
    exit status, its log's tail)."""
    port = free_port()
    url, log = f"http://127.0.0.1:{port}", tmp / "server.log"
    server = start_class_server(port, tmp / "data", log)
    stop = functools.cache(lambda: terminate(server, 60))  # once: the block calls it, and so does the exit
    try:
        _wait_healthy(url, server, time.monotonic() + 120)
        yield url, [server.pid], stop, lambda: log.read_text()[-2000:]
    finally:
        stop()


@contextlib.contextmanager
def replicated(tmp: Path, replicas: int):
    """`aeviz serve --replicas N` (HAProxy in front, each replica with its share of the cores for training): the
    same yield as one_server; the exit status is aeviz serve's, which is 0 only when every replica stopped cleanly."""
    from .serving import serving

    with serving(replicas, tmp / "logs", "--no-restart", env=class_env(tmp / "data")) as served:
        pids = [r["pid"] for r in served.state["replicas"]] + [served.state["proxy"]["pid"]]
        yield served.url, pids, served.stop, lambda: served.output()[-2000:]


def _wait_healthy(url: str, server: subprocess.Popen, deadline: float) -> None:
    import requests

    s = requests.Session()
    s.trust_env = False
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if s.get(url + "/_stcore/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError("the server did not come up")


def _browser_cpu_seconds() -> float:
    """CPU seconds of this process's Chromium and Playwright driver processes (live ones: read before they close)."""
    total = 0.0
    for pid in descendants(os.getpid()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"chrom" in cmd or b"playwright" in cmd:
            c = cpu_seconds(pid)
            total += c if c == c else 0.0  # NaN: it has just exited
    return total


def _yield_to_the_server() -> None:
    """The simulated class (this process, and the Chromium page it starts) runs at niceness STUDENTS_NICE: in a
    classroom, students' browsers run on their own machines and take nothing from the server's cores; here they
    share its two, and at equal priority 30 websocket clients and a browser took CPU the server was waiting for."""
    try:
        os.nice(STUDENTS_NICE)
    except OSError:
        pass


def _browser(url: str, join_at: float, until: float, results) -> None:
    """One real Chromium page: join mid-class at `join_at`, then move the latent pad and let go until `until` (both
    time.monotonic(), one clock for every process); what it saw goes into the queue `results`, as one dict.

    It runs in a process of its own: as a thread of the simulated class, Playwright's client held that process's
    GIL while the page loaded (a hundred network events and more), and every simulated student's clock stopped
    with it (their event loop lagged 80-125 ms then, against at most 25 ms before and after)."""
    out: dict = {}
    try:
        _drive(url, join_at, until, out)
    finally:
        results.put(out)


def _below_the_server(folder: str) -> str:
    """The Chromium to launch, through a wrapper script that puts it below the server, as a classroom's browsers
    (other machines) would be:

    - Playwright starts the browser in a session of its own, and with autogroups (Linux's default, on here) each
      session is a scheduling group and the groups share the CPU equally, whatever the niceness of their threads:
      the page's load took 1-2 of the two cores beside the server (the class's slowest clicks were the ones sent
      then). The wrapper sets its group's niceness to BROWSER_NICE (when it is the leader of its session, so that
      it never lowers the bench's and the server's group). 19, not the simulated class's 5: a classroom's browsers
      are other machines and take nothing from the server, and at 5 the page's load still stalled the class (30
      students, one server, 26 Nov: the model switch's p95 0.10-0.67 s in five runs, above 0.3 s in two; at 19,
      0.13-0.18 s in five alternated with them; the page's own first screen 2.4-2.8 s against 1.7-3.5 s);
    - as root, Chromium lifts its compositor, IO and display threads to niceness -8 when it may, above the server's
      0 whatever niceness it was started at: without CAP_SYS_NICE (util-linux's setpriv), it stays where it is."""
    setpriv = shutil.which("setpriv") if os.geteuid() == 0 else None
    groups = autogroups()
    if setpriv is None and not groups:
        return CHROMIUM
    lower = (f'if [ "$(cut -d" " -f6 /proc/$$/stat)" = "$$" ]; then echo {BROWSER_NICE} > /proc/$$/autogroup; '
             "fi 2>/dev/null\n") if groups else ""  # field 6: the session (the comm, "chromium", has no space)
    drop = f"{shlex.quote(setpriv)} --bounding-set=-sys_nice --inh-caps=-sys_nice " if setpriv else ""
    wrapper = Path(folder) / "chromium"
    wrapper.write_text(f'#!/bin/sh\n{lower}exec {drop}{shlex.quote(CHROMIUM)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def _drive(url: str, join_at: float, until: float, out: dict) -> None:
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="aeviz-chromium-") as folder:
            browser = p.chromium.launch(executable_path=_below_the_server(folder), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            cpu0, t0 = _browser_cpu_seconds() + time.process_time(), time.monotonic()
            time.sleep(max(0.0, join_at - time.monotonic()))
            t = time.perf_counter()
            page.goto(url + "/", wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector(MAP, timeout=60_000)
            page.wait_for_selector(IDLE, timeout=60_000)
            page.wait_for_selector(PAD, timeout=60_000)
            out["first_screen_s"] = time.perf_counter() - t
            times = out.setdefault("presses", [])
            while time.monotonic() < until - 2 and len(times) < 200:
                times += pad_latencies(page, 1, len(times))[1]  # release to the committed code shown (image: live)
                time.sleep(0.5)
            out["cpu_cores"] = ((_browser_cpu_seconds() + time.process_time() - cpu0)  # before it closes
                                / max(1e-9, time.monotonic() - t0))
            browser.close()
    except Exception as err:  # reported, never fatal to the bench
        out["error"] = f"{type(err).__name__}: {err}"[:300]



def bench(students: int = 10, seconds: float = 30.0, training: float = 0.1, seed: int = 0, browser: bool = True,
          stagger_s: float = 5.0, replicas: int = 1) -> dict:
    n_train = round(students * training)
    with tempfile.TemporaryDirectory(prefix="aeviz-bench-class-") as tmp:
        tmp = Path(tmp)
        with (one_server(tmp) if replicas == 1 else replicated(tmp, replicas)) as (url, pids, stop, log_tail):
            asyncio.run(warm(url, replicas))  # so the class does not pay for the first imports
            _yield_to_the_server()
            # the simulated class is one process: each full garbage collection of its imports (100-170 ms) stopped
            # every student's clock at once; freezing them leaves collections only what the class makes
            gc.collect()
            gc.freeze()
            sampler = Sampler(pids)
            load0 = os.getloadavg()[0]
            start = time.monotonic()
            until = start + seconds
            seen: dict = {}
            chromium = results = None
            if browser:
                ctx = multiprocessing.get_context("spawn")
                results = ctx.Queue()
                chromium = ctx.Process(target=_browser, args=(url, start + min(stagger_s, seconds / 3), until, results),
                                       name="aeviz-bench-chromium", daemon=True)
                chromium.start()
            sampler.start()
            sims0 = time.process_time()
            crowd = asyncio.run(class_session(url, students, seconds, seed=seed, stagger_s=stagger_s,
                                              training=n_train))
            sampler.stop.set()  # the class is over: its CPU per second ends here, not when Chromium has closed
            sampler.join()
            if chromium:
                try:
                    seen = results.get(timeout=90)
                except queue.Empty:
                    seen = {"error": "the Chromium page did not report within 90 s of the class's end"}
                chromium.join(timeout=30)
                if chromium.is_alive():
                    chromium.kill()
            sims_cpu = time.process_time() - sims0  # the simulated class
            load1 = os.getloadavg()[0]
            rss_hwm = sum(rss_mb(p, "VmHWM") for p in pids)
            exit_status = stop()
            tail = log_tail()
    actions = [(kind, ms) for s in crowd for _, kind, ms in s.stats.actions]
    all_ms = [ms for _, ms in actions]
    errors = error_counts(crowd)
    exceptions = errors.pop("exception in the page", 0)
    presses = seen.get("presses", [])
    out = {"students": students, "training": n_train, "replicas": replicas, "seconds": seconds,
           "interactions": len(actions),
           "p50_ms": rounded(percentile(all_ms, 50)), "p95_ms": rounded(percentile(all_ms, 95)),
           "max_ms": rounded(max(all_ms, default=None))}
    for kind in sorted({k for k, _ in actions}):
        ms = [m for k, m in actions if k == kind]
        out[f"{kind}_n"] = len(ms)
        out[f"{kind}_p50_ms"], out[f"{kind}_p95_ms"] = rounded(percentile(ms, 50)), rounded(percentile(ms, 95))
        out[f"{kind}_max_ms"] = rounded(max(ms))
    out.update({
        "failed": sum(errors.values()), "error_kinds": dict(errors), "exceptions": exceptions,
        "disconnects": sum(s.stats.disconnects for s in crowd), "superseded": sum(s.stats.superseded for s in crowd),
        "polls": sum(s.stats.polls for s in crowd),
        "server_rss_peak_mb": rounded(max(sampler.rss_peak, rss_hwm)), "server_cpu_cores": rounded(sampler.cores(), 2),
        "server_own_cpu_cores": rounded(sampler.own_cores(), 2),
        "server_own_cpu_ms_per_interaction": rounded(1000 * (sampler.own1 - sampler.own0) / max(1, len(actions))),
        "workers_peak": sampler.workers_peak,
        "students_cpu_cores": rounded(sims_cpu / seconds, 2), "browser_cpu_cores": rounded(seen.get("cpu_cores"), 2),
        "browser_release_to_image_ms_p95": rounded(percentile(presses, 95)),
        "browser_release_to_image_ms_p50": rounded(percentile(presses, 50)), "browser_presses": len(presses),
        "first_screen_s_during_class": rounded(seen.get("first_screen_s"), 2), "browser_error": seen.get("error"),
        "exception_texts": sorted({t for s in crowd for t in s.stats.exception_texts})[:5],
        "error_texts": sorted({t for s in crowd for t in s.stats.error_texts})[:5],
        "exit_status": exit_status, "load_avg": round((load0 + load1) / 2, 2), "cores": os.cpu_count(),
    })
    if exit_status != 0 or out["failed"]:
        print("server log tail:\n" + tail, file=sys.stderr)
    where = "one server" if replicas == 1 else f"{replicas} replicas behind HAProxy"
    print(f"{students} students ({n_train} training) for {seconds:.0f} s on {where}, {os.cpu_count()} cores, "
          f"load average {out['load_avg']}: {len(actions)} actions, p50 {out['p50_ms']} ms, p95 {out['p95_ms']} ms, "
          f"max {out['max_ms']} ms; failed {out['failed']}, exceptions {exceptions}, disconnects "
          f"{out['disconnects']}; server RSS peak {out['server_rss_peak_mb']} MB, CPU {out['server_cpu_cores']} "
          f"cores with its training workers ({out['server_own_cpu_cores']} its own, "
          f"{out['server_own_cpu_ms_per_interaction']} ms per interaction); "
          f"browser release->image p95 {out['browser_release_to_image_ms_p95']} ms, first screen during "
          f"class {out['first_screen_s_during_class']} s; exit status {exit_status}")
    for kind in sorted({k for k, _ in actions}):
        print(f"  {kind:>7}: n {out[f'{kind}_n']:>5}  p50 {out[f'{kind}_p50_ms']:>8} ms  p95 "
              f"{out[f'{kind}_p95_ms']:>8} ms  max {out[f'{kind}_max_ms']:>8} ms")
    return out
