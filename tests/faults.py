"""A PostgreSQL cluster and a Redis server of one test module's own, so a test can freeze
(SIGSTOP), stop and restart them without touching the stack every other test uses."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port, stop_process

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*args: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)


@dataclass
class PrivatePostgres:
    base: Path  # owned by postgres, under /var/tmp so the postgres user can reach it
    port: int

    @property
    def data(self) -> Path:
        return self.base / "pg"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @classmethod
    def create(cls) -> PrivatePostgres:
        base = Path(tempfile.mkdtemp(prefix="dashboard-faults-", dir="/var/tmp"))
        shutil.chown(base, "postgres", "postgres")
        cluster = cls(base, free_port())
        _as_postgres("mkdir", "-p", str(cluster.socket_dir))
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        settings = (
            f"listen_addresses = '127.0.0.1'\nport = {cluster.port}\n"
            f"unix_socket_directories = '{cluster.socket_dir}'\n"
            "shared_preload_libraries = 'pg_stat_statements'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
        with open(cluster.data / "postgresql.conf", "a") as conf:
            conf.write(settings)
        cluster.start()
        return cluster

    def start(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30",
                     "-l", str(self.base / "postgres.log"), "start")  # fmt: skip

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                     "stop")  # fmt: skip

    def processes(self) -> list[int]:
        """The postmaster and every backend and helper process of this cluster."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True
        ).stdout.split()
        return [postmaster, *map(int, children)]

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the cluster stopped in its tracks: connections stay open, nothing
        answers (a hung host, a stuck disk)."""
        pids = self.processes()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    @contextmanager
    def environment(self) -> Iterator[None]:
        """PGHOST/PGPORT pointing at this cluster (demo.dbsetup runs psql with them)."""
        saved = {key: os.environ.get(key) for key in ("PGHOST", "PGPORT")}
        os.environ.update(PGHOST=str(self.socket_dir), PGPORT=str(self.port))
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is not None:
                    os.environ[key] = value

    def role_url(self, role: str, password: str, database: str) -> str:
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def superuser_url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen | None = None

    @classmethod
    def create(cls) -> PrivateRedis:
        redis = cls(free_port())
        redis.start()
        return redis

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 10
        while time.time() < deadline:
            done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True)
            if done.stdout.strip() == b"PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("private Redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            stop_process(self.process)
            self.process = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @contextmanager
    def frozen(self) -> Iterator[None]:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)
