"""Run `aeviz serve` as a child process for tests and benches: wait for its serve.json, stop it with SIGTERM."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..serve import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    """A running `aeviz serve`: its process, its serve.json (ports, pids, store) and where its logs are."""

    proc: subprocess.Popen
    logs: Path
    state: dict
    exit_code: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.state['proxy']['port']}"

    def replica(self, name: str) -> dict:
        return next(r for r in self.state["replicas"] if r["name"] == name)

    def stop(self) -> int:
        """SIGTERM to aeviz serve (once; SIGKILL after 90 s): its exit code, also kept in exit_code."""
        if self.exit_code is None:
            self.exit_code = terminate(self.proc, 90)
        return self.exit_code

    def output(self) -> str:
        return (self.logs / "serve.out").read_text(errors="replace")

    def pids(self) -> list[int]:
        """Every child process aeviz serve started (proxy, replicas, redis)."""
        children = [self.state["proxy"]["pid"], *(r["pid"] for r in self.state["replicas"] if r["pid"])]
        return children + ([self.state["redis"]["pid"]] if self.state.get("redis") else [])


@contextlib.contextmanager
def serving(replicas: int, logs: Path, *args: str, start_s: float = 300.0, env: dict[str, str] | None = None):
    """`aeviz serve --replicas N` on a free port of 127.0.0.1, with its logs in `logs` (and `env` added to its
    environment); yields Served once the proxy answers. At the end it gets SIGTERM; Served.exit_code is its exit
    code."""
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "aeviz", "serve", "--replicas", str(replicas), "--port", str(free_port()),
           "--address", "127.0.0.1", "--logs", str(logs), *args]
    env = {**os.environ, **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with (logs / "serve.out").open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    served = Served(proc, logs, {})
    try:
        deadline = time.monotonic() + start_s
        while not (logs / "serve.json").is_file():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"aeviz serve did not start:\n{served.output()[-3000:]}")
            time.sleep(0.2)
        served.state = json.loads((logs / "serve.json").read_text())
        yield served
    finally:
        served.stop()


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
