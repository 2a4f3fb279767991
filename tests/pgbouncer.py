"""A real PgBouncer (Debian's package) in front of the stack's PostgreSQL, for one test module."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.conftest import free_port, stop_process

PGBOUNCER = "/usr/sbin/pgbouncer"


@dataclass
class PgBouncer:
    base: Path
    port: int
    process: subprocess.Popen

    @classmethod
    def start(
        cls, server_port: int, passwords: dict[str, str], databases: dict[str, str]
    ) -> PgBouncer:
        """Transaction pooling, SCRAM to clients and to the server; `databases` maps a name
        clients use to its connection string (dbname=..., pool_size=...)."""
        base = Path(tempfile.mkdtemp(prefix="dashboard-pgbouncer-", dir="/var/tmp"))
        port = free_port()
        users = "".join(f'"{user}" "{password}"\n' for user, password in passwords.items())
        (base / "userlist.txt").write_text(users)
        entries = "".join(
            f"{name} = host=127.0.0.1 port={server_port} {options}\n"
            for name, options in databases.items()
        )
        (base / "pgbouncer.ini").write_text(
            f"[databases]\n{entries}\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {base / 'userlist.txt'}\n"
            "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 200\n"
            f"logfile = {base / 'pgbouncer.log'}\n"
        )
        shutil.chown(base, "postgres", "postgres")
        for path in base.iterdir():
            shutil.chown(path, "postgres", "postgres")
            path.chmod(0o600)
        # PgBouncer refuses to run as root: it switches to postgres (-u) itself.
        process = subprocess.Popen(
            [PGBOUNCER, "-u", "postgres", str(base / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bouncer = cls(base, port, process)
        bouncer._wait_ready(next(iter(passwords.items())), next(iter(databases)))
        return bouncer

    def _wait_ready(self, credentials: tuple[str, str], database: str) -> None:
        deadline = time.monotonic() + 15
        while True:
            try:
                with psycopg.connect(self.url(*credentials, database), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    log = (self.base / "pgbouncer.log").read_text(errors="replace")
                    raise RuntimeError(f"PgBouncer did not start:\n{log[-2000:]}") from None
                time.sleep(0.2)

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.base, ignore_errors=True)
