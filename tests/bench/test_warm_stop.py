"""A class server: its event loop and HTTP parser are the C ones (uvloop, httptools), and stopped while it prepares
the zoo in the background (the first Explorer run starts that) it exits 0."""
from __future__ import annotations

import asyncio
import re
import time

from aeviz.bench.browser import free_port
from aeviz.bench.classroom import _wait_healthy, start_class_server
from aeviz.bench.students import Student
from aeviz.serve import terminate


def _loaded(pid: int) -> str:
    """The shared libraries the process has mapped."""
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_a_server_runs_on_uvloop_and_httptools_and_stopped_while_it_prepares_the_zoo_exits_cleanly(tmp_path):
    port, log = free_port(), tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    server = start_class_server(port, tmp_path / "data", log)
    try:
        _wait_healthy(url, server, time.monotonic() + 120)

        async def first_screen() -> None:
            s = Student(url, seed=1, timeout_s=120)
            await s.connect()
            assert await s.load() > 0
            await s.close()

        asyncio.run(first_screen())
        # without them Streamlit falls back to asyncio's loop and uvicorn to h11: a lone release took 48 ms, not 5
        libraries = _loaded(server.pid)
        assert re.search(r"/uvloop/loop\.cpython[^/]*\.so", libraries), "the server does not run on uvloop"
        assert re.search(r"/httptools/parser/parser\.cpython[^/]*\.so", libraries), "uvicorn does not parse with httptools"
    finally:
        rc = terminate(server, 60)  # SIGTERM: the warm-up has just started, about half a second of work
    text = log.read_text()
    assert rc == 0, text
    assert "terminate called" not in text and "Traceback" not in text, text
    assert re.search(r"aeviz: prepared \d+ zoo models for the Explorer in [\d.]+ s", text), text
