"""`aeviz bench scale`: simulated students through `aeviz serve` (HAProxy) against 1 and 2 replicas.

For each replica count: start `aeviz serve --replicas N --no-restart` on 127.0.0.1, warm every replica (its first
page loads torch and the zoo), then run `students` simulated students (aeviz/bench/students.py) for `seconds`.
Latencies (p50, p95) are those of the actions sent in that steady phase. With 2 or more replicas the bench then
kills one replica (SIGKILL) and keeps the class running for up to `failover_window` seconds: failover_s is the
time from the kill until the last of that replica's students was served again by another replica (reconnect
and reload). Beside them: the CPU seconds the replicas and the proxy used per second of the steady phase, and the
load average, because on a shared machine the wall-clock figures also measure the neighbours.
"""
from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

from .browser import cpu_seconds
from .serving import serving
from .students import Student, class_session, error_counts, percentile, rounded, warm


def _cpu(served) -> float:
    return sum(cpu_seconds(pid) for pid in [served.state["proxy"]["pid"],
                                            *(r["pid"] for r in served.state["replicas"])])


async def _class_with_failover(served, students: int, seconds: float, window: float, kill: bool,
                               seed: int, **kw) -> tuple[list[Student], float | None, float]:
    """The class for `seconds`; then, if kill, SIGKILL replica r1 and go on for up to `window` seconds.
    Returns (students, when the replica was killed or None, CPU seconds of the servers at the steady phase's end)."""
    total = seconds + (window if kill else 0)
    task = asyncio.ensure_future(class_session(served.url, students, total, seed=seed, **kw))
    if not kill:
        crowd = await task
        return crowd, None, _cpu(served)
    await asyncio.sleep(seconds)
    cpu = _cpu(served)
    os.kill(served.state["replicas"][0]["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    return await task, killed_at, cpu


def run_one(replicas: int, students: int, seconds: float, window: float, kill: bool, seed: int,
            pages: tuple[str, ...], switch: float, logs: Path) -> dict:
    """One configuration; its figures."""
    with serving(replicas, logs, "--no-restart") as served:
        warmed = asyncio.run(warm(served.url, replicas, pages))
        cpu0, t0, load0 = _cpu(served), time.monotonic(), os.getloadavg()[0]
        crowd, killed_at, cpu1 = asyncio.run(_class_with_failover(
            served, students, seconds, window, kill and replicas > 1, seed, pages=pages, switch=switch))
        steady_end = killed_at or time.monotonic()
        load1 = os.getloadavg()[0]
    start = t0 + 2.0  # students start over the first 2 s
    steady = [ms for s in crowd for answered, _, ms in s.stats.actions if start <= answered < steady_end]
    releases = [ms for s in crowd for answered, kind, ms in s.stats.actions if kind == "release" and answered < steady_end]
    moved = [served_at - killed_at for s in crowd for lost, served_at in s.stats.recoveries
             if killed_at and lost >= killed_at - 1]
    errors = sum(sum(s.stats.errors.values()) for s in crowd)
    result = {
        "replicas": replicas, "students": students, "seconds": seconds, "actions": len(steady),
        "p50_ms": rounded(percentile(steady, 50)), "p95_ms": rounded(percentile(steady, 95)),
        "release_p50_ms": rounded(percentile(releases, 50)), "release_p95_ms": rounded(percentile(releases, 95)),
        "errors": errors, "superseded": sum(s.stats.superseded for s in crowd),
        "disconnects": sum(s.stats.disconnects for s in crowd),
        "failover_s": rounded(max(moved), 2) if moved else None, "students_moved": len(moved),
        "server_cpu_per_s": rounded((cpu1 - cpu0) / (steady_end - t0), 3),
        "load_avg": round((load0 + load1) / 2, 2), "warmed": sorted(warmed),
        "error_kinds": dict(error_counts(crowd)),
    }
    if killed_at is not None:
        result["killed"] = served.state["replicas"][0]["name"]
        result["exit_code"] = served.exit_code
    return result



def bench(students: int = 20, seconds: float = 30.0, replicas: str = "1,2", failover: bool = True,
          failover_window: float = 20.0, switch: float = 0.1, pages: str = ",compare", seed: int = 0) -> dict:
    """The figures of each replica count, printed and returned."""
    counts = [int(n) for n in replicas.split(",") if n.strip()]
    page_paths = tuple(p.strip() for p in pages.split(","))
    runs = []
    with tempfile.TemporaryDirectory(prefix="aeviz-bench-scale-") as tmp:
        for n in counts:
            runs.append(run_one(n, students, seconds, failover_window, failover, seed, page_paths, switch,
                                Path(tmp) / f"r{n}"))
    print(f"{students} simulated students for {seconds:.0f} s through HAProxy (aeviz serve), each releasing the "
          f"latent pad, clicking the map or switching model every 0.5-2 s and switching page "
          f"(of {', '.join(p or 'explorer' for p in page_paths)}) with "
          f"probability {switch}; {os.cpu_count()} cores. Latency: send -> end of the run and its images.")
    print(f"  {'replicas':>8} {'actions':>8} {'p50 ms':>8} {'p95 ms':>8} {'release p50':>11} {'release p95':>11} "
          f"{'errors':>6} {'disconn.':>8} {'failover s':>10} {'CPU/s':>6} {'load':>5}")
    for r in runs:
        print(f"  {r['replicas']:>8} {r['actions']:>8} {_fmt(r['p50_ms'])} {_fmt(r['p95_ms'])} "
              f"{_fmt(r['release_p50_ms'], 11)} {_fmt(r['release_p95_ms'], 11)} {r['errors']:>6} {r['disconnects']:>8} "
              f"{_fmt(r['failover_s'], 10)} {_fmt(r['server_cpu_per_s'], 6)} {r['load_avg']:>5}")
    flat = {f"{k}_{r['replicas']}": r[k] for r in runs for k in ("p50_ms", "p95_ms", "errors", "disconnects",
                                                                 "failover_s")}
    return {"students": students, "seconds": seconds, "runs": runs, **flat}


def _fmt(v, width: int = 8) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}}"
