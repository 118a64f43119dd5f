"""`aeviz serve --replicas N`: N Streamlit servers behind HAProxy, with cookie affinity and a shared room store.

One Streamlit server is one Python process; a lecture hall outgrows it. This starts N `streamlit run app.py`
replicas on free ports of 127.0.0.1, HAProxy in front of them (the template aeviz/templates/haproxy.cfg, filled in
with the ports) and, for N > 1 without AEVIZ_STORE, a local redis-server for the rooms and the class board. All
are child processes: Ctrl-C or SIGTERM stops them (the proxy first, then the replicas, then Redis) and exits 0.
A replica that dies is started again on its port; meanwhile its browsers reconnect through the proxy to a live one.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = Path(__file__).with_name("templates") / "haproxy.cfg"
APP = Path(__file__).resolve().parents[1] / "app.py"
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # Debian installs haproxy here, off a normal user's PATH
START_S = 180.0  # a replica answers its health check within this, even on a busy 2-core machine
STOP_S = 15.0  # a child gets this long to stop after SIGTERM, then SIGKILL
RESTARTS = 5  # a replica that keeps dying is left down after this many restarts
LOCAL = "127.0.0.1"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy


class ServeError(RuntimeError):
    """A reason, in one sentence, why the class cannot be served."""


@dataclass
class Options:
    """What `aeviz serve` was asked for."""

    replicas: int = 2
    port: int = 8501  # where students connect (the proxy)
    address: str = "0.0.0.0"  # the proxy's bind address; 0.0.0.0 = every network interface
    app: Path = APP
    logs: Path | None = None  # folder for the logs, the filled-in haproxy.cfg and serve.json (default: a new temp)
    redis_data: Path | None = None  # keep the local Redis's rooms in this folder (append-only file); default: memory
    restart: bool = True  # start a replica that died again


def find(name: str) -> str | None:
    """The path of an executable on PATH or in the sbin folders."""
    found = shutil.which(name)
    if found:
        return found
    return next((str(Path(d) / name) for d in SBIN if os.access(Path(d) / name, os.X_OK)), None)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nobody listens on now."""
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return s.getsockname()[1]


def render(template: str, bind: str, servers: list[tuple[str, str]]) -> str:
    """The proxy configuration: @BIND@ filled in, and the line with @NAME@/@ADDRESS@ once per (name, host:port).
    Comment lines stay as they are."""
    lines = []
    for line in template.splitlines():
        if line.lstrip().startswith("#"):
            lines.append(line)
        elif "@NAME@" in line or "@ADDRESS@" in line:
            lines += [line.replace("@NAME@", name).replace("@ADDRESS@", addr) for name, addr in servers]
        else:
            lines.append(line.replace("@BIND@", bind))
    return "\n".join(lines) + "\n"


def network_address() -> str:
    """This machine's address on its network (what students type), found without sending anything."""
    try:
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            if not sockaddr[0].startswith("127."):
                return sockaddr[0]
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # connecting a UDP socket only picks a route: no packet leaves
            if not s.getsockname()[0].startswith("127."):
                return s.getsockname()[0]
        except OSError:
            pass
    return socket.gethostname()


def student_url(address: str, port: int) -> str:
    """The URL students open: the network address when the proxy listens on every interface."""
    host = network_address() if address in ("", "0.0.0.0", "::", "*") else address
    return f"http://{host}:{port}/"


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP GET of url gets 200 (Streamlit's /_stcore/health says "ok" once the server is up)."""
    try:
        with _OPENER.open(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def replica_env(replicas: int, cores: int | None = None) -> dict[str, str]:
    """What every replica's environment gets unless the teacher's sets it: two malloc arenas (glibc gives every
    thread that mallocs its own, and Streamlit runs each session's script in a thread, so a replica's RSS would
    grow with every student who ever ran a script), and its share of the cores for training workers (AEVIZ_WORKERS:
    by default each replica would start as many as the machine has cores)."""
    cores = cores or os.cpu_count() or 1
    env = {"MALLOC_ARENA_MAX": "2", "AEVIZ_WORKERS": str(max(1, cores // replicas))}
    return {k: v for k, v in env.items() if k not in os.environ}


def terminate(proc: subprocess.Popen, timeout: float = STOP_S) -> int:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds; its exit code (as it is, if it had
    already exited)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def _die_with_parent() -> None:  # pragma: no cover (runs in the child between fork and exec)
    """Linux: the child gets SIGTERM if aeviz serve itself is killed, so nothing is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """One child process with its log file."""

    name: str
    cmd: list[str]
    log: Path
    env: dict = field(default_factory=dict)
    cwd: Path | None = None
    port: int = 0
    proc: subprocess.Popen | None = None
    restarts: int = 0
    left_down: bool = False  # died, and is not started again

    def start(self) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **self.env}, cwd=self.cwd, start_new_session=True,
                                         preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def how_it_ended(self) -> str:
        rc = self.proc.returncode
        return f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"

    def stop(self) -> bool:
        """SIGTERM (SIGKILL after STOP_S); whether it stopped cleanly (exit code 0), True if it was not running."""
        return not self.alive or terminate(self.proc) == 0


class Class:
    """The running proxy, replicas and store; `run()` serves until a signal asks to stop."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.haproxy = find("haproxy")
        if not self.haproxy:
            raise ServeError("HAProxy is not installed: install it with `apt-get install haproxy` (Debian, Ubuntu) "
                             "and run aeviz serve again.")
        if opts.replicas < 1:
            raise ServeError(f"--replicas must be at least 1, not {opts.replicas}.")
        if not Path(opts.app).is_file():
            raise ServeError(f"There is no app at {opts.app}; give the path of aeviz's app.py with --app.")
        self.logs = Path(opts.logs or tempfile.mkdtemp(prefix="aeviz-serve-"))
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stopping = False
        self.store = os.environ.get("AEVIZ_STORE", "")
        self.redis: Child | None = None
        self.replicas: list[Child] = []
        self.proxy: Child | None = None
        self.url = student_url(opts.address, opts.port)

    # --- starting ---------------------------------------------------------------------------------------------

    def _check_port(self) -> None:
        """Refuse at once, before starting replicas, a port that something already listens on."""
        host = self.opts.address if self.opts.address not in ("", "*") else "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HAProxy does: TIME_WAIT is no obstacle
            try:
                s.bind((host, self.opts.port))
            except OSError as err:
                raise ServeError(f"Port {self.opts.port} on {host} is not free ({err.strerror}): stop what uses it "
                                 f"or choose another with --port.") from None

    def _wait(self, ready, what: str, child: Child, seconds: float = START_S) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            if self.stopping:
                raise KeyboardInterrupt
            if not child.alive:
                raise ServeError(f"{what} {child.how_it_ended()} while starting; see {child.log}.")
            if time.monotonic() > deadline:
                raise ServeError(f"{what} did not answer within {seconds:.0f} s; see {child.log}.")
            time.sleep(0.2)

    def _start_redis(self) -> None:
        """A shared store for N > 1 replicas: the given AEVIZ_STORE, else a local redis-server, else SQLite."""
        if self.store or self.opts.replicas == 1:
            return
        server = find("redis-server")
        if not server:
            from .workspace import data_dir

            print(f"redis-server is not installed (apt-get install redis-server), so the {self.opts.replicas} "
                  f"replicas share the SQLite room store in {data_dir() / 'classroom'}, which works only while they "
                  f"all run on this machine.", flush=True)
            return
        port = free_port()
        cmd = [server, "--bind", LOCAL, "--port", str(port), "--protected-mode", "yes", "--daemonize", "no"]
        if self.opts.redis_data:
            Path(self.opts.redis_data).mkdir(parents=True, exist_ok=True)
            cmd += ["--dir", str(Path(self.opts.redis_data).resolve()), "--appendonly", "yes", "--save", ""]
        else:
            cmd += ["--save", "", "--appendonly", "no"]
        self.redis = Child("redis", cmd, self.logs / "redis.log", port=port)
        self.redis.start()
        self.store = f"redis://{LOCAL}:{port}/0"
        self._wait(lambda: _redis_answers(port), "redis-server", self.redis, 30)

    def _start_replicas(self) -> None:
        secret = os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or secrets.token_urlsafe(32)
        app = Path(self.opts.app).resolve()
        for i in range(1, self.opts.replicas + 1):
            port = free_port()
            cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", LOCAL, "--server.port",
                   str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
            env = {"STREAMLIT_SERVER_COOKIE_SECRET": secret, "AEVIZ_REPLICA": f"r{i}",
                   **replica_env(self.opts.replicas)}
            if self.store:
                env["AEVIZ_STORE"] = self.store
            self.replicas.append(Child(f"r{i}", cmd, self.logs / f"r{i}.log", env, app.parent, port))
        for r in self.replicas:  # all at once: each takes seconds of CPU to start
            r.start()
        for r in self.replicas:
            self._wait(lambda r=r: answers(f"http://{LOCAL}:{r.port}/_stcore/health"), f"Replica {r.name}", r)

    def _start_proxy(self) -> None:
        cfg = self.logs / "haproxy.cfg"
        bind = f"{self.opts.address}:{self.opts.port}"
        cfg.write_text(render(TEMPLATE.read_text(), bind, [(r.name, f"{LOCAL}:{r.port}") for r in self.replicas]))
        check = subprocess.run([self.haproxy, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode:
            raise ServeError(f"HAProxy refused {cfg}: {_first_alert(check.stderr + check.stdout)}")
        self.proxy = Child("haproxy", [self.haproxy, "-db", "-f", str(cfg)], self.logs / "haproxy.log",
                           port=self.opts.port)
        self.proxy.start()
        host = LOCAL if self.opts.address in ("", "0.0.0.0", "::", "*") else self.opts.address
        try:
            self._wait(lambda: answers(f"http://{host}:{self.opts.port}/_stcore/health"), "HAProxy", self.proxy, 30)
        except ServeError as err:
            lines = self.proxy.log.read_text(errors="replace")
            raise ServeError(f"HAProxy could not serve port {self.opts.port}: "
                             f"{_first_alert(lines) or err}") from None

    def _write_state(self) -> None:
        """serve.json: where everything is, for administrators and for tests."""
        state = {"url": self.url, "store": self.store, "logs": str(self.logs), "pid": os.getpid(),
                 "proxy": {"pid": self.proxy.proc.pid, "port": self.opts.port, "address": self.opts.address},
                 "replicas": [{"name": r.name, "port": r.port, "pid": r.proc.pid if r.alive else None}
                              for r in self.replicas],
                 "redis": {"pid": self.redis.proc.pid, "port": self.redis.port} if self.redis else None}
        tmp = self.logs / "serve.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.logs / "serve.json")

    # --- running and stopping ---------------------------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def run(self) -> int:
        """Start everything, serve until SIGINT/SIGTERM, stop everything; the exit code."""
        self._check_port()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start_redis()
            self._start_replicas()
            self._start_proxy()
            self._write_state()
            self._announce()
            code = self._watch()
        except KeyboardInterrupt:
            code = 0
        finally:
            clean = self.stop()
            for s, handler in old.items():
                signal.signal(s, handler)
        return code or (0 if clean else 1)

    def _announce(self) -> None:
        store = self.store or "the SQLite room store in the data folder"
        print(f"Students open {self.url}", flush=True)
        print(f"  HAProxy on {self.opts.address}:{self.opts.port} in front of {len(self.replicas)} replica(s) "
              f"({', '.join(f'{r.name} on {LOCAL}:{r.port}' for r in self.replicas)}); rooms in {store}.", flush=True)
        print(f"  Logs, the proxy's configuration and serve.json: {self.logs}. Ctrl-C stops everything.", flush=True)

    def _watch(self) -> int:
        while not self.stopping:
            time.sleep(0.2)
            for child in (self.proxy, self.redis):
                if child is not None and not child.alive and not self.stopping:
                    print(f"{child.name} {child.how_it_ended()}; stopping (see {child.log}).", flush=True)
                    return 1
            for r in self.replicas:
                if r.left_down or r.alive or self.stopping:
                    continue
                print(f"Replica {r.name} {r.how_it_ended()}; its students reconnect to the other replicas.",
                      flush=True)
                if self.opts.restart and r.restarts < RESTARTS:
                    r.restarts += 1
                    r.start()
                    print(f"Replica {r.name} is starting again on {LOCAL}:{r.port}.", flush=True)
                else:
                    r.left_down = True
                self._write_state()
        return 0

    def stop(self) -> bool:
        """The proxy first (no new connections), then the replicas, then the store; whether every replica that was
        running stopped cleanly (a replica that did not is named, with its log)."""
        clean = True
        for child in (self.proxy, *self.replicas, self.redis):
            if child is None:
                continue
            if not child.stop() and child in self.replicas:
                clean = False
                print(f"Replica {child.name} did not stop cleanly: it {child.how_it_ended()} (see {child.log}).",
                      flush=True)
        return clean


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((LOCAL, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _first_alert(text: str) -> str:
    """HAProxy's first alert ("[ALERT]    (123) : config : ..."), without the "[ALERT] (pid) :" prefix."""
    for line in text.splitlines():
        if "[ALERT]" in line:
            return line.split("[ALERT]", 1)[1].split(":", 1)[-1].strip()
    return text.strip().splitlines()[0] if text.strip() else ""


def serve(opts: Options) -> int:
    """Run a class until Ctrl-C or SIGTERM; ServeError for what stops it from starting."""
    return Class(opts).run()
