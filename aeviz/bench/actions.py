"""`aeviz bench actions`: what each kind of rerun a student can trigger costs the server, one kind at a time.

One `streamlit run app.py` (as `aeviz bench class` starts it) and one simulated student (aeviz/bench/students.py).
The student first warms what every class warms within a minute (the Explorer, Compare, a release, a map click),
then repeats each action `reps` times: a new session's first screen, a reload of the Explorer, a release of the
latent pad, a click on the map, a switch of page (Explorer <-> Compare), a Compare preset, a model switch (each to
a model no one has opened yet: the cold case) and, with a training running, a poll of the live panel. For each:
the server's own CPU per action (from /proc, its training workers excluded) and the latency p50 (from sending the
action to the end of its run and images), with nothing else running: the floor under `aeviz bench class`.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from .browser import cpu_seconds, free_port
from .classroom import _wait_healthy, start_class_server
from .students import Student, percentile


async def _measure(server_pid: int, fn, reps: int) -> dict:
    lat, cpu = [], cpu_seconds(server_pid)
    for _ in range(reps):
        ms = await fn()
        if ms is not None:
            lat.append(ms)
    cpu_ms = (cpu_seconds(server_pid) - cpu) * 1000 / max(1, reps)
    return {"n": len(lat), "cpu_ms": round(cpu_ms, 1), "p50_ms": round(percentile(lat, 50), 1) if lat else None}


async def _session(url: str, pid: int, reps: int) -> dict:
    out: dict[str, dict] = {}
    s = Student(url, seed=1, timeout_s=240, train=True)
    await s.connect()
    await s.load()
    await s.load()
    await s.release()
    await s.click_map()
    await s.switch_page()  # Compare, then back
    await s.switch_page()

    async def first_screen():
        new = Student(url, seed=2, timeout_s=240)
        await new.connect()
        try:
            return await new.load()
        finally:
            await new.close()

    out["first screen"] = await _measure(pid, first_screen, reps)
    out["reload"] = await _measure(pid, s.load, reps)
    out["release"] = await _measure(pid, s.release, reps)
    out["map click"] = await _measure(pid, s.click_map, reps)
    out["page"] = await _measure(pid, s.switch_page, 2 * reps)
    await s.switch_page()  # on Compare
    out["preset"] = await _measure(pid, s.switch_preset, reps) if s.presets else {}
    await s.switch_page()  # back on the Explorer
    out["model"] = await _measure(pid, s.switch_model, reps) if s.models else {}
    if "ex_train::start" not in s.buttons and s.chooser:
        await s.open_chooser()  # the Train button is in the "Choose a model" box
    if "ex_train::start" in s.buttons:
        await s.press_train()
        fragment = next(iter(s.timers), None)
        if fragment:
            async def poll():
                await asyncio.sleep(s.timers.get(fragment, [0.5])[0])
                return await s.poll(fragment)
            out["poll"] = await _measure(pid, poll, reps)
    await s.close()
    return out


def bench(reps: int = 10) -> dict:
    with tempfile.TemporaryDirectory(prefix="aeviz-bench-actions-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_class_server(port, tmp / "data", tmp / "server.log")
        try:
            _wait_healthy(url, server, time.monotonic() + 120)
            kinds = asyncio.run(_session(url, server.pid, reps))
        finally:
            server.terminate()
            server.wait(60)
    for kind, r in kinds.items():
        if r:
            print(f"{kind:>13}: server CPU {r['cpu_ms']:6.1f} ms per action, latency p50 {r['p50_ms']} ms (n {r['n']})")
    flat = {"reps": reps}
    for kind, r in kinds.items():
        for k, v in r.items():
            flat[f"{kind.replace(' ', '_')}_{k}"] = v
    return flat
