"""The stack set-up from a checkout anywhere, next to this checkout's running stack.

Clones this repository's committed HEAD (as a user would) into a private `mktemp -d` folder and
into a path with spaces inside it, runs `make stack` in each while this checkout's stack runs
(in the spaced clone with the real install: its own .venv, from pip's wheel cache), and checks
that each clone's PostgreSQL, Redis and Prometheus answer on the ports its .stack/env records,
that no two checkouts share a port, and that no folder's permissions were loosened; a port that
another program takes between the stack's choice and its bind moves the service. Last, the
spaced clone runs `make demo` (a small demo fleet, a dashboard port of its own) while this
checkout's suite goes on, and stops cleanly.

Minutes of installs and set-ups: marked `infra`, run by `make test-infra` (which CI runs after
`make test`), not by `make test`.
"""

from __future__ import annotations

import http.server
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import ROOT, free_port, read_stack_env

pytestmark = pytest.mark.infra

PORT_KEYS = ("PGPORT", "REDIS_PORT", "PROM_PORT", "EXPORTER_PORT", "IDP_PORT")
SPACED = "my projects/ai agents"  # the clone with its own install


@dataclass
class Clone:
    path: Path
    top: Path  # the private `mktemp -d` folder it sits in
    modes: dict[Path, int]  # the clone's folder and its parents up to `top`, before the set-up
    first_output: str = ""  # the log of its first `make stack`
    set_up_s: float = 0.0  # how long its first `make stack` took (with the install)

    def env(self) -> dict[str, str]:
        return read_stack_env(self.path / ".stack" / "env")

    def ports(self) -> tuple[str, ...]:
        env = self.env()
        return tuple(env[key] for key in PORT_KEYS)


def _clean_environment() -> dict[str, str]:
    """A shell as a new user has it: nothing of this checkout's stack, port choice or make run."""
    drop = {*read_stack_env(ROOT / ".stack" / "env"), "PG_PORT", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def run(
    clone: Path, *command: str, extra: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=clone,
        env={**_clean_environment(), **(extra or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _modes(path: Path, top: Path) -> dict[Path, int]:
    modes = {}
    while True:
        modes[path] = stat.S_IMODE(path.stat().st_mode)
        if path == top:
            return modes
        path = path.parent


def _clone(path: Path, top: Path, install: bool) -> Clone:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True, timeout=60)
    if not install:
        # Reuse this checkout's installed .venv (the spaced clone runs the real install): the
        # clone's pyproject.toml gets the install marker's time, so `install` keeps it.
        (path / ".venv").symlink_to(ROOT / ".venv")
        installed = (ROOT / ".venv" / ".installed").stat()
        os.utime(path / "pyproject.toml", ns=(installed.st_atime_ns, installed.st_mtime_ns))
    return Clone(path, top, _modes(path, top))


def _pg_base(clone: Clone) -> Path:
    return Path(clone.env()["PGHOST"]).parent


@pytest.fixture(scope="module")
def clones() -> Iterator[list[Clone]]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    top = Path(tempfile.mkdtemp(prefix="aiagents-clone-"))  # mode 700, like /root
    made: list[Clone] = []
    try:
        for relative in ("aiagents", SPACED):
            made.append(_clone(top / relative, top, install=relative == SPACED))
            started = time.monotonic()
            done = run(made[-1].path, "make", "stack", timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            made[-1].first_output = done.stderr
            made[-1].set_up_s = time.monotonic() - started
        yield made
    finally:
        for clone in made:
            started = (clone.path / ".stack" / "env").exists()
            base = _pg_base(clone) if started else None
            done = run(clone.path, "scripts/stack.sh", "clean")
            assert done.returncode == 0, done.stdout + done.stderr
            assert base is None or not base.exists()
        shutil.rmtree(top)


def _prometheus_flags(port: str) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status/flags", timeout=5) as r:
        return json.load(r)["data"]


def test_each_clone_answers_on_the_ports_of_its_env_file(clones: list[Clone]) -> None:
    for clone in clones:
        env = clone.env()
        with psycopg.connect(
            host=env["PGHOST"], port=env["PGPORT"], user="postgres", dbname="postgres"
        ) as conn:
            assert conn.execute("SHOW port").fetchone() == (env["PGPORT"],)
            (data_dir,) = conn.execute("SHOW data_directory").fetchone()
        assert Path(data_dir) == _pg_base(clone) / "data"
        with socket.create_connection(("127.0.0.1", int(env["PGPORT"])), timeout=5):
            pass  # the TCP port the role URLs use
        client = redis.Redis(host="127.0.0.1", port=int(env["REDIS_PORT"]), socket_timeout=5)
        assert client.config_get("dir") == {"dir": str(clone.path / ".stack" / "redis")}
        assert env["REDIS_URL"] == f"redis://127.0.0.1:{env['REDIS_PORT']}/0"
        flags = _prometheus_flags(env["PROM_PORT"])
        assert flags["storage.tsdb.path"] == str(clone.path / ".stack" / "prometheus")
        assert env["PROMETHEUS_URL"] == f"http://127.0.0.1:{env['PROM_PORT']}"
        assert env["DASHBOARD_USERS_FILE"] == str(clone.path / ".stack" / "users.toml")


def test_no_two_checkouts_share_a_port(clones: list[Clone]) -> None:
    ports = [os.environ[key] for key in PORT_KEYS]
    for clone in clones:
        ports += clone.ports()
    assert len(set(ports)) == len(ports) == 15
    # The second clone found the defaults held by the first (or by this checkout): it says so.
    assert "is in use by another program: PostgreSQL uses" in clones[1].first_output


def test_permissions_are_left_alone(clones: list[Clone]) -> None:
    postgres = pwd.getpwnam("postgres").pw_uid
    for clone in clones:
        assert clone.modes[clone.top] == 0o700
        assert _modes(clone.path, clone.top) == clone.modes
        base = _pg_base(clone)
        for folder in (base, base / "data"):
            info = folder.stat()
            assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (postgres, 0o700)


def test_rerun_and_restart_keep_the_ports(clones: list[Clone]) -> None:
    clone = clones[0]
    ports = clone.ports()
    again = run(clone.path, "make", "stack")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "PostgreSQL already running on" in again.stderr
    assert clone.ports() == ports

    assert run(clone.path, "make", "stop").returncode == 0
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
    # An explicit port another program holds (this checkout's PostgreSQL) is named, not taken.
    taken = run(clone.path, "scripts/stack.sh", "start", extra={"PG_PORT": os.environ["PGPORT"]})
    assert taken.returncode == 1
    assert f"port {os.environ['PGPORT']} (PG_PORT) is in use by another program" in taken.stderr

    restarted = run(clone.path, "scripts/stack.sh", "start")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert clone.ports() == ports


def _listener_pids(port: int) -> set[int]:
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


class _Health(http.server.BaseHTTPRequestHandler):
    """Another checkout's identity provider: answers any health check."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_a_port_taken_after_its_choice_moves_the_service(clones: list[Clone]) -> None:
    """The race of two stacks starting in the same second, made certain: the ports the clone
    will choose for its exporter and identity provider (those its env file records) are bound
    by another program, unseen by the choice (bound, not listening); the identity provider's
    one then answers health checks from the moment the exporter starts. Each service must end
    on a new recorded port of its own."""
    clone = clones[0]
    stack = clone.path / ".stack"
    for name in ("exporter", "idp"):  # only these two restart; the rest keeps running
        pid = int((stack / f"{name}.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
    # Fresh ports (the old ones may still have connections in TIME_WAIT), bound without
    # SO_REUSEADDR, so that no service can bind them, and recorded as the clone's choice.
    exporter_holder = socket.socket()
    exporter_holder.bind(("127.0.0.1", 0))
    idp_holder = http.server.HTTPServer(("127.0.0.1", 0), _Health, bind_and_activate=False)
    idp_holder.allow_reuse_address = False
    idp_holder.server_bind()
    held = {"EXPORTER_PORT": exporter_holder.getsockname()[1], "IDP_PORT": idp_holder.server_port}
    recorded = (stack / "env").read_text()
    for key, port in held.items():
        recorded = re.sub(rf"^export {key}='\d+'$", f"export {key}='{port}'", recorded, flags=re.M)
    (stack / "env").write_text(recorded)
    assert clone.env()["IDP_PORT"] == str(held["IDP_PORT"])
    start = subprocess.Popen(
        ["scripts/stack.sh", "start"],
        cwd=clone.path,
        env=_clean_environment(),
        stderr=subprocess.PIPE,
        text=True,
    )
    serving = False
    try:
        lines = []
        for line in start.stderr:
            lines.append(line)
            if "starting the verdict exporter" in line and not serving:
                idp_holder.server_activate()  # listens now, after the choice
                threading.Thread(target=idp_holder.serve_forever, daemon=True).start()
                serving = True
        assert start.wait(timeout=120) == 0, "".join(lines)
        output = "".join(lines)
        env = clone.env()
        for key, name, pid_file in (
            ("EXPORTER_PORT", "the verdict exporter", "exporter.pid"),
            ("IDP_PORT", "the identity provider", "idp.pid"),
        ):
            port = int(env[key])
            assert f"port {held[key]} was taken by another program as {name} started" in output
            assert port != held[key]
            pid = int((stack / pid_file).read_text())
            assert Path(f"/proc/{pid}").exists() and _listener_pids(port) == {pid}, output
        url = f"http://127.0.0.1:{env['IDP_PORT']}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert json.load(r)["issuer"] == env["IDP_URL"]
        prometheus = (stack / "prometheus.yml").read_text()
        assert f"127.0.0.1:{env['EXPORTER_PORT']}" in prometheus
        assert _listener_pids(held["IDP_PORT"]) == {os.getpid()}  # still the other program's
    finally:
        if start.poll() is None:
            start.kill()
        if serving:
            idp_holder.shutdown()
        idp_holder.server_close()
        exporter_holder.close()


def test_the_spaced_clone_has_its_own_install(clones: list[Clone]) -> None:
    clone = clones[1]
    venv = clone.path / ".venv"
    assert " " in str(clone.path) and not venv.is_symlink()
    assert "installing the Python project into .venv" in clone.first_output
    print(f"make stack with the install in {clone.path}: {clone.set_up_s:.0f} s")
    # Its console scripts start (pip's shebangs for a path with spaces), and the project is
    # installed from this clone, not from this checkout.
    version = run(clone.path, str(venv / "bin" / "streamlit"), "version")
    assert version.returncode == 0 and "Streamlit, version" in version.stdout, version.stderr
    where = run(
        clone.path,
        str(venv / "bin" / "python"),
        "-c",
        "import services; print(services.__file__)",
    )
    assert where.stdout.strip() == str(clone.path / "services" / "__init__.py"), where.stderr


def _health(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def test_a_clone_runs_make_demo_while_this_checkout_tests(clones: list[Clone]) -> None:
    """`make demo` in the spaced clone (a week of runs, a day of Prometheus history) on a
    dashboard port of its own, while this suite, on this checkout's stack, goes on."""
    clone = clones[1]
    port = free_port()
    log = clone.path / ".stack" / "demo.out"
    started = time.monotonic()
    with log.open("w") as out:
        demo = subprocess.Popen(
            ["make", "demo", f"DASHBOARD_PORT={port}", "DEMO_DAYS=7", "DEMO_PROM_DAYS=1"],
            cwd=clone.path,
            env=_clean_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    try:
        own = redis.Redis(host="127.0.0.1", port=int(os.environ["REDIS_PORT"]), socket_timeout=5)
        with psycopg.connect(
            host=os.environ["PGHOST"], port=os.environ["PGPORT"], user="postgres", dbname="postgres"
        ) as mine:
            while _health(port) != "ok":
                assert demo.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() - started < 420, log.read_text()[-3000:]
                # This checkout's stack keeps answering while the clone loads its demo.
                assert mine.execute("SELECT 1").fetchone() == (1,)
                assert own.ping()
                time.sleep(2)
        print(f"make demo in {clone.path}: dashboard up after {time.monotonic() - started:.0f} s")
        env = clone.env()
        with psycopg.connect(
            host=env["PGHOST"], port=env["PGPORT"], user="postgres", dbname="aiagents_demo"
        ) as conn:
            (tenants,) = conn.execute("SELECT count(*) FROM tenant_configs").fetchone()
            (runs,) = conn.execute("SELECT count(*) FROM enhancement_history").fetchone()
        assert tenants == 52 and runs > 1000
        assert (clone.path / ".stack" / "demo-loaded").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)
    stopped = run(clone.path, "make", "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for free in (port, *map(int, clone.ports())):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", free), timeout=2).close()
