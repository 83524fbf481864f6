"""Local service orchestration: influxd, mosquitto and a small process supervisor (never systemd).

All runtime state lives under one state dir (default ``./var/``, or ``$LINGTAN_STATE_DIR``): configs
rendered from ``deploy/local/*.conf.tmpl`` and data in ``influxdb/`` and ``mosquitto/``, pid files and
``supervisor.json`` in ``run/``, logs in ``logs/``.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import requests

from lingtan.settings import state_dir_from

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[4]  # tools/src/lingtan_tools/stack/ -> the checkout
TEMPLATE_DIR = REPO_ROOT / "deploy" / "local"
DEFAULT_INFLUX_PORT = 8086
DEFAULT_MQTT_PORT = 1883
_SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"
_DEBIAN_PACKAGES = {"influxd": "influxdb", "mosquitto": "mosquitto"}
_SPAWNED: list[subprocess.Popen[bytes]] = []
_SUPERVISE_CODE = "import sys; from lingtan_tools.stack.services import ProcessSupervisor as S; " \
    "sys.exit(S.from_state_dir(sys.argv[1]).run_forever())"


class ServiceError(RuntimeError):
    """A local service could not be found, started or stopped."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (chosen by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts connections on ``host:port`` (a wildcard ``:port`` listener counts too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def find_binary(name: str) -> str:
    """Absolute path of ``name`` (PATH, then the sbin dirs); :class:`ServiceError` says how to install it."""
    if found := shutil.which(name) or shutil.which(name, path=_SBIN_PATH):
        return found
    pkg = _DEBIAN_PACKAGES.get(name, name)
    raise ServiceError(f"'{name}' not found on PATH or in /usr/sbin. Run `make setup` (or `make up`), which installs "
                       f"the Debian package '{pkg}' (scripts/install-system-deps.sh), or `sudo apt-get install -y {pkg}`.")


def _read(path: Path, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(path.read_text())
    except (OSError, ValueError):
        return None


def read_pid(path: Path) -> int | None:
    """The pid stored in ``path``, or None if the file is missing or garbage."""
    return _read(path, int)


def _spawn(argv: Sequence[str], log_path: Path, **popen_kw: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, output appended to ``log_path``. Each Popen stays in ``_SPAWNED``
    until it exits: daemons outlive their starters, and a collected Popen of a live one warns."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as logf:
        logf.write(f"\n=== {_now_iso()} lingtan_tools.stack.services starting {list(argv)}\n".encode())
        logf.flush()
        popen = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, **popen_kw)
    _SPAWNED[:] = [p for p in _SPAWNED if p.poll() is None] + [popen]
    return popen


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _tail(path: Path, lines: int = 15) -> str:
    return _read(path, lambda text: "\n".join(text.splitlines()[-lines:])) or "(no log)"


def live_process(pid: int | None, *, name: str | None = None, create_time: float | None = None,
                 cmd_contains: str | None = None) -> psutil.Process | None:
    """Process ``pid`` if alive (not a zombie) and matching all criteria given: ``name`` (process name or
    ``argv[0]`` basename), ``create_time`` (guards against pid reuse), ``cmd_contains`` (in some argument)."""
    try:
        proc = psutil.Process(pid or -1)
        cmdline = proc.cmdline()
        ok = (proc.status() != psutil.STATUS_ZOMBIE
              and (create_time is None or abs(proc.create_time() - create_time) < 0.5)
              and (name is None or name in {proc.name(), os.path.basename(cmdline[0]) if cmdline else ""})
              and (cmd_contains is None or any(cmd_contains in arg for arg in cmdline)))
        return proc if ok else None
    except (psutil.Error, ValueError):
        return None


def terminate(proc: psutil.Process, timeout: float = 10.0, *, group: bool = True) -> None:
    """SIGTERM ``proc`` (its whole process group if it leads one), wait ``timeout`` s, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig) if group and os.getpgid(proc.pid) == proc.pid else proc.send_signal(sig)
            proc.wait(wait)  # also reaps it when it is our child
            return
        except (psutil.NoSuchProcess, ProcessLookupError, ChildProcessError):
            return
        except psutil.TimeoutExpired:
            log.warning("pid %d ignored %s for %.0fs", proc.pid, sig.name, wait)
    raise ServiceError(f"pid {proc.pid} survived SIGKILL")


class _LocalServer(ABC):
    """Shared machinery: render the config, spawn detached, pid file, health wait, stop."""

    name = ""  # state sub-dir and template stem
    binary_name = ""  # executable; also the stem of the pid and log files
    config_flags: tuple[str, ...] = ()  # argv between the binary and the config path
    scheme = ""  # of :attr:`url`

    def __init__(self, state_dir: Path, port: int, *, startup_timeout: float = 30.0,
                 template_dir: Path | None = None) -> None:
        self.state_dir, self.port, self.startup_timeout = Path(state_dir).absolute(), int(port), startup_timeout
        self.template_dir = Path(template_dir or TEMPLATE_DIR)
        self.home = self.state_dir / self.name
        self.config_path = self.home / f"{self.name}.conf"
        self.pid_path = self.state_dir / "run" / f"{self.binary_name}.pid"
        self.log_path = self.state_dir / "logs" / f"{self.binary_name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def _template_vars(self) -> dict[str, str]:
        """Values substituted into the server's config template."""

    @abstractmethod
    def is_healthy(self) -> bool:
        """True if the server answers its health probe on ``self.port``."""

    def _process(self) -> psutil.Process | None:
        if self._popen is not None and self._popen.poll() is None:  # our own child: no need for the pid file
            return live_process(self._popen.pid)
        return live_process(read_pid(self.pid_path), name=self.binary_name, cmd_contains=str(self.config_path))

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (influx) or ``mqtt://127.0.0.1:PORT`` (mosquitto)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Pid of the running instance (from the pid file), or None."""
        return proc.pid if (proc := self._process()) else None

    def is_running(self) -> bool:
        """True if the pid file names a live ``binary_name`` process running with our config."""
        return self._process() is not None

    def render_config(self) -> Path:
        """Write ``<state>/<name>/<name>.conf`` from the template and return its path."""
        if any(ch in str(self.state_dir) for ch in "\"\\\n"):
            raise ServiceError(f"state dir {self.state_dir!s} contains a quote, backslash or newline")
        text = Template((self.template_dir / f"{self.name}.conf.tmpl").read_text())
        _write_atomic(self.config_path, text.substitute(self._template_vars()))
        return self.config_path

    def start(self) -> None:
        """Start unless our instance already runs (then no-op); return once healthy, else :class:`ServiceError`."""
        if self.is_running():
            self._wait_healthy(min(self.startup_timeout, 10.0))
            return
        binary = find_binary(self.binary_name)
        if port_in_use(self.port):
            raise ServiceError(f"cannot start {self.binary_name}: 127.0.0.1:{self.port} is already in use by another "
                               f"process. If the Debian package left a system service running (systemd), stop it: "
                               f"`sudo systemctl disable --now {_DEBIAN_PACKAGES[self.binary_name]}`, or use another port.")
        self.render_config()
        self._popen = _spawn([binary, *self.config_flags, str(self.config_path)], self.log_path, cwd=self.home)
        _write_atomic(self.pid_path, f"{self._popen.pid}\n")
        try:
            self._wait_healthy(self.startup_timeout)
        except ServiceError:
            self.stop(timeout=5.0)
            raise

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (proc := self._process()) and not self.is_healthy():
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.binary_name} (pid {proc.pid}) not healthy on port {self.port} after "
                                   f"{timeout:.0f}s; see {self.log_path}:\n{_tail(self.log_path)}")
            time.sleep(0.1)
        if proc is None:
            raise ServiceError(f"{self.binary_name} exited during startup (exit code "
                               f"{self._popen and self._popen.poll()}); see {self.log_path}:\n{_tail(self.log_path)}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful: state is persisted), SIGKILL after ``timeout`` s; remove the pid file."""
        if proc := self._process():
            terminate(proc, timeout)
        self._popen = None  # already reaped through psutil
        self.pid_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL with no chance to flush (fault injection). The stale pid file is left behind."""
        if proc := self._process():
            proc.kill()
            psutil.wait_procs([proc], timeout=10.0)  # reaps it when it is our child
        self._popen = None


class LocalInflux(_LocalServer):
    """influxd 1.6 on ``127.0.0.1:port``, auth on, data in ``<state>/influxdb/``; backup RPC on ``rpc_port``
    (None: an ephemeral loopback port, so instances never collide)."""

    name, binary_name, config_flags, scheme = "influxdb", "influxd", ("run", "-config"), "http"

    def __init__(self, state_dir: Path, port: int = DEFAULT_INFLUX_PORT, *, rpc_port: int | None = None,
                 startup_timeout: float = 30.0, template_dir: Path | None = None) -> None:
        super().__init__(state_dir, port, startup_timeout=startup_timeout, template_dir=template_dir)
        self.rpc_port = rpc_port

    def _template_vars(self) -> dict[str, str]:
        return {"port": str(self.port), "rpc_bind": f"127.0.0.1:{self.rpc_port or 0}", "meta_dir": str(self.home / "meta"),
                "data_dir": str(self.home / "data"), "wal_dir": str(self.home / "wal")}

    def is_healthy(self) -> bool:
        """``GET /ping`` answers 204 (no credentials needed even with auth enabled)."""
        try:
            return requests.get(f"{self.url}/ping", timeout=2.0).status_code == 204
        except requests.RequestException:
            return False


class LocalMosquitto(_LocalServer):
    """mosquitto 2.0 on ``127.0.0.1:port``: anonymous (loopback only), persistent sessions/queues."""

    name, binary_name, config_flags, scheme = "mosquitto", "mosquitto", ("-c",), "mqtt"

    def __init__(self, state_dir: Path, port: int = DEFAULT_MQTT_PORT, *, autosave_interval: int = 5,
                 startup_timeout: float = 30.0, template_dir: Path | None = None) -> None:
        super().__init__(state_dir, port, startup_timeout=startup_timeout, template_dir=template_dir)
        self.autosave_interval = autosave_interval

    def _template_vars(self) -> dict[str, str]:
        return {"port": str(self.port), "user": getpass.getuser(), "persistence_dir": str(self.home),
                "autosave_interval": str(self.autosave_interval), "log_file": str(self.log_path)}

    def is_healthy(self) -> bool:
        """A TCP connect, then a real MQTT CONNECT/CONNACK through paho-mqtt, succeed."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"lingtan-health-{uuid.uuid4().hex[:12]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
            client.connect("127.0.0.1", self.port, keepalive=10)
            deadline = time.monotonic() + 3.0
            while not client.is_connected() and time.monotonic() < deadline:
                if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:  # e.g. CONNACK refused, socket closed
                    return False
            return client.is_connected()
        except (OSError, ValueError):
            return False
        finally:
            with contextlib.suppress(Exception):
                client.disconnect()
                client.loop(timeout=0.1)  # flush DISCONNECT, close the socket


@dataclass(frozen=True)
class ChildSpec:
    """One supervised command: unique ``name`` ([A-Za-z0-9_-], stem of pid/log files) and ``argv``."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's environment


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    started_at: str | None = None
    started_mono: float = 0.0
    create_time: float | None = None
    restarts: int = 0
    failures: int = 0  # consecutive quick exits, drives the backoff
    next_start: float = 0.0
    last_exit: int | None = None


def _set_pdeathsig(libc: Any = ctypes.CDLL(None)) -> None:  # noqa: B008 -- loaded once, before any fork
    """Runs in the child: deliver SIGTERM to it if the supervisor dies (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        libc.prctl(1, signal.SIGTERM)


class ProcessSupervisor:
    """Run named children, restart crashed ones with exponential backoff, stop them all on SIGTERM.

    Writes ``run/<name>.pid``, ``run/supervisor.pid``, ``run/supervisor.json`` (``{"supervisor": {...},
    "children": [{name, pid, started_at, restarts, ...}]}``) and ``logs/<name>.log`` under the state dir.
    Restart delays double from ``backoff_initial`` to ``backoff_max``; reset after ``stable_after`` s up."""

    SPEC_FILE = "supervisor-spec.json"

    def __init__(self, state_dir: Path, children: Sequence[ChildSpec], *, backoff_initial: float = 1.0,
                 backoff_max: float = 30.0, stable_after: float = 30.0, stop_timeout: float = 10.0,
                 poll_interval: float = 0.2) -> None:
        names = [c.name for c in children]
        if len(set(names)) != len(names) or not all(n.replace("-", "").replace("_", "").isalnum() for n in names):
            raise ValueError(f"child names must be unique and match [A-Za-z0-9_-]+: {names}")
        self.state_dir = Path(state_dir).absolute()
        self.run_dir, self.log_dir = self.state_dir / "run", self.state_dir / "logs"
        self.backoff_initial, self.backoff_max, self.stable_after = backoff_initial, backoff_max, stable_after
        self.stop_timeout, self.poll_interval = stop_timeout, poll_interval
        self._children = [_Child(spec=c) for c in children]
        self._stop, self._started_at, self._create_time = False, _now_iso(), 0.0

    def write_spec(self) -> Path:
        """Save children and options to ``<state>/run/supervisor-spec.json`` (read by :meth:`from_state_dir`)."""
        options = {k: getattr(self, k) for k in ("backoff_initial", "backoff_max", "stable_after", "stop_timeout")}
        _write_atomic(path := self.run_dir / self.SPEC_FILE,
                      json.dumps({"children": [asdict(c.spec) for c in self._children], "options": options}, indent=2))
        return path

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> ProcessSupervisor:
        """The supervisor saved by :meth:`write_spec` (what ``lingtan supervise`` runs)."""
        spec = json.loads((Path(state_dir) / "run" / cls.SPEC_FILE).read_text())
        return cls(state_dir, [ChildSpec(**c) for c in spec["children"]], **spec.get("options", {}))

    def spawn_daemon(self, argv: Sequence[str] | None = None, timeout: float = 15.0) -> int:
        """Save the spec, start the supervisor detached, return its pid (no-op if one runs already).
        ``argv`` (e.g. ``lingtan supervise``) must end in ``from_state_dir(...).run_forever()``, like the default."""
        if running := supervisor_pid(self.state_dir):
            return running
        self.write_spec()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        log_path = self.log_dir / "supervisor.log"
        popen = _spawn(argv or [sys.executable, "-c", _SUPERVISE_CODE, str(self.state_dir)], log_path, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and popen.poll() is None:
            if pid := supervisor_pid(self.state_dir):
                return pid
            time.sleep(0.05)
        raise ServiceError(f"supervisor did not start (exit code {popen.poll()}); see {log_path}:\n{_tail(log_path)}")

    def request_stop(self, *_: object) -> None:
        """Make :meth:`run_forever` stop every child and return (this is also its SIGTERM handler)."""
        self._stop = True

    def run_forever(self) -> int:
        """Supervise until SIGTERM/SIGINT or :meth:`request_stop`, then stop every child; returns 0."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        with contextlib.suppress(ValueError):  # not in the main thread: rely on request_stop()
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self._create_time = psutil.Process().create_time()
        self._write_status(running=True)
        _write_atomic(self.run_dir / "supervisor.pid", f"{os.getpid()}\n")
        log.info("supervisor %d watching %s", os.getpid(), [c.spec.name for c in self._children])
        try:
            while not self._stop:
                if self._tick(time.monotonic()):
                    self._write_status(running=True)
                time.sleep(self.poll_interval)
        finally:
            self._stop_children()
            self._write_status(running=False)
            (self.run_dir / "supervisor.pid").unlink(missing_ok=True)
        return 0

    def _backoff(self, failures: int) -> float:
        return min(self.backoff_max, self.backoff_initial * 2 ** max(failures - 1, 0))

    def _tick(self, now: float) -> bool:
        changed = False
        for child in self._children:
            if child.proc is not None and (code := child.proc.poll()) is not None:
                uptime = now - child.started_mono
                child.failures = 0 if uptime >= self.stable_after else child.failures + 1
                delay = self._backoff(child.failures)
                log.warning("%s (pid %d) exited with %s after %.1fs; restarting in %.1fs",
                            child.spec.name, child.proc.pid, code, uptime, delay)
                child.proc, child.last_exit, child.next_start = None, code, now + delay
                (self.run_dir / f"{child.spec.name}.pid").unlink(missing_ok=True)
                changed = True
            if child.proc is None and now >= child.next_start and not self._stop:
                self._start_child(child, now)
                changed = True
        return changed

    def _start_child(self, child: _Child, now: float) -> None:
        spec = child.spec
        child.restarts += child.started_at is not None  # any start after a successful one is a restart
        try:  # preexec_fn is fine here: the supervisor daemon is single-threaded
            child.proc = _spawn(spec.argv, self.log_dir / f"{spec.name}.log", env={**os.environ, **spec.env},
                                preexec_fn=_set_pdeathsig)
        except OSError as exc:
            child.failures += 1
            child.next_start = now + self._backoff(child.failures)
            log.error("cannot start %s: %s", spec.name, exc)
            return
        child.started_at, child.started_mono = _now_iso(), now
        child.create_time = proc.create_time() if (proc := live_process(child.proc.pid)) else None
        _write_atomic(self.run_dir / f"{spec.name}.pid", f"{child.proc.pid}\n")
        log.info("started %s pid %d (restarts=%d)", spec.name, child.proc.pid, child.restarts)

    def _stop_children(self) -> None:
        live = [c.proc for c in self._children if c.proc is not None and c.proc.poll() is None]
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            for proc in live:  # signal them all first, then wait: stop in parallel
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.monotonic() + wait
            while (live := [p for p in live if p.poll() is None]) and time.monotonic() < deadline:
                time.sleep(0.05)
        for child in self._children:
            child.proc = None
            (self.run_dir / f"{child.spec.name}.pid").unlink(missing_ok=True)

    def _write_status(self, running: bool) -> None:
        sup = {"pid": os.getpid(), "started_at": self._started_at, "create_time": self._create_time,
               "running": running, "state_dir": str(self.state_dir)}
        children = [
            {"name": c.spec.name, "pid": c.proc.pid if c.proc else None, "started_at": c.started_at,
             "restarts": c.restarts, "create_time": c.create_time if c.proc else None,
             "status": "running" if c.proc else ("backoff" if running else "stopped"),
             "last_exit_code": c.last_exit, "argv": c.spec.argv}
            for c in self._children
        ]
        _write_atomic(self.run_dir / "supervisor.json", json.dumps({"supervisor": sup, "children": children}, indent=2))


def supervisor_status(state_dir: Path) -> dict[str, Any] | None:
    """Parsed ``<state>/run/supervisor.json``, or None."""
    return _read(Path(state_dir) / "run" / "supervisor.json", json.loads)


def supervisor_pid(state_dir: Path) -> int | None:
    """Pid of the live supervisor of ``state_dir`` (checked against supervisor.json), or None."""
    pid = read_pid(Path(state_dir) / "run" / "supervisor.pid")
    sup = (supervisor_status(state_dir) or {}).get("supervisor", {})
    created = sup.get("create_time") if sup.get("pid") == pid else None
    return pid if live_process(pid, create_time=created) is not None else None


def stop_all(state_dir: Path | None = None, timeout: float = 15.0) -> list[str]:
    """Stop the supervisor (it stops its children), stray children, mosquitto, influxd; return their names.
    Each pid is verified first (creation time, or binary + config path), so stale pid files are harmless."""
    state_dir = state_dir_from(state_dir).absolute()
    run = state_dir / "run"
    stopped: list[str] = []
    if (pid := supervisor_pid(state_dir)) and (proc := live_process(pid)):
        terminate(proc, timeout, group=False)  # its SIGTERM handler stops the children first
        stopped.append("supervisor")
    (run / "supervisor.pid").unlink(missing_ok=True)
    for child in (supervisor_status(state_dir) or {}).get("children", []):
        created = child.get("create_time")
        if created is not None and (proc := live_process(child.get("pid"), create_time=created)):
            terminate(proc, timeout)
            stopped.append(child["name"])
        (run / f"{child['name']}.pid").unlink(missing_ok=True)
    for server in (LocalMosquitto(state_dir), LocalInflux(state_dir)):
        if server.is_running():
            server.stop(timeout)
            stopped.append(server.binary_name)
        server.pid_path.unlink(missing_ok=True)
    return stopped
