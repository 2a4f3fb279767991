"""The benchmark harness: a dashboard server of its own, signed-in browsers and protocol clients,
and the server's own timing lines (services/timing.py).

Everything runs against the private stack (.stack/env) and a database of the caller's choice
(the demo's by default). `Server` starts `streamlit run app.py` on a free port with
DASHBOARD_TIMINGS set, registered with the stack's demo identity provider; `Browser` signs in
once in Chromium (Playwright) and times navigations; `ServerTimings` reads the JSON lines the
server wrote for the runs in between.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "admin@demo.example:demo-admin"  # the demo accounts (Makefile: .stack/idp.json)
SUPPORT = "support@demo.example:demo-support"
CLIENT_ID = "support-dashboard"


@dataclass(frozen=True)
class Identity:
    """The identity provider a benchmark signs in at, and as whom."""

    url: str
    state: Path  # the provider's state file (demo/idp.py): the app's client is registered there
    email: str
    password: str


def add_arguments(parser: argparse.ArgumentParser, account: str) -> None:
    """The options every runner takes: database, identity provider, account."""
    parser.add_argument("--database", default="aiagents_demo")
    parser.add_argument("--idp-url", help="default: the stack's demo provider (IDP_URL)")
    parser.add_argument("--idp-state", type=Path, default=ROOT / ".stack" / "idp.json")
    parser.add_argument("--account", default=account, help="email:password")
    parser.add_argument("--write", type=Path, help="the Markdown file to put the table in")


def identity(args: argparse.Namespace, env: dict[str, str]) -> Identity:
    email, _, password = args.account.partition(":")
    return Identity(args.idp_url or env["IDP_URL"], args.idp_state, email, password)


def stack_env(database: str | None = None) -> dict[str, str]:
    """The private stack's variables; the dashboard's URLs pointed at `database` if given."""
    env: dict[str, str] = {}
    for line in (ROOT / ".stack" / "env").read_text().splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:] if "=" in word)
    if database:
        for key in ("DATABASE_URL", "ADMIN_DATABASE_URL"):
            env[key] = re.sub(r"/[^/?]+(\?|$)", f"/{database}\\1", env[key], count=1)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def superuser_conninfo(database: str) -> str:
    """`database` as the stack's superuser (its PG* variables)."""
    import psycopg

    env = stack_env()
    return psycopg.conninfo.make_conninfo(
        dbname=database, host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"]
    )


def row_count(database: str) -> int:
    """enhancement_history's rows in `database`."""
    import psycopg

    with psycopg.connect(superuser_conninfo(database)) as conn:
        return conn.execute("SELECT count(*) FROM enhancement_history").fetchone()[0]


def recent_ticket(database: str, tenant: str) -> str:
    """The ticket of `tenant`'s latest run ("" when it has none)."""
    import psycopg

    sql = """SELECT ticket_id FROM enhancement_history WHERE tenant_id = %s
              ORDER BY created_at DESC LIMIT 1"""
    with psycopg.connect(superuser_conninfo(database)) as conn:
        row = conn.execute(sql, (tenant,)).fetchone()
    return row[0] if row else ""


def read_section(path: Path, name: str) -> str:
    """The text between the file's markers of section `name` ("" when absent)."""
    begin, end = f"<!-- bench: {name} -->", f"<!-- /bench: {name} -->"
    old = path.read_text() if path.exists() else ""
    return old[old.index(begin) + len(begin) : old.index(end)] if begin in old else ""


def write_section(path: Path, name: str, text: str) -> None:
    """Put `text` between the file's markers of section `name` (appended when absent)."""
    begin, end = f"<!-- bench: {name} -->", f"<!-- /bench: {name} -->"
    old = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Server:
    """A dashboard server of the benchmark's own, timing every script run."""

    env: dict[str, str]
    idp: Identity
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    timings: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")) / "timings.jsonl"
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        from demo import idp

        redirect = f"{self.url}/oauth2callback"
        secret = idp.add_client(self.idp.state, CLIENT_ID, redirect)
        secrets = self.timings.parent / "secrets.toml"
        secrets.write_text(idp.secrets_toml(self.idp.url, CLIENT_ID, secret, redirect))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app.py"),
                "--server.headless=true",
                f"--server.port={self.port}",
                "--server.address=127.0.0.1",
                "--browser.gatherUsageStats=false",
                f"--secrets.files={secrets}",
            ],
            cwd=ROOT,
            env={**os.environ, **self.env, "DASHBOARD_TIMINGS": str(self.timings)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/_stcore/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("the dashboard server did not start within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def rss_mib(self) -> float:
        """Resident memory of the server process (MiB)."""
        assert self.process
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def timing_mark(self) -> int:
        return self.timings.stat().st_size if self.timings.exists() else 0

    def timing_lines(self, since: int) -> list[dict]:
        """The script runs' lines written after `since` (a timing_mark)."""
        if not self.timings.exists():
            return []
        with self.timings.open("rb") as lines:
            lines.seek(since)
            return [json.loads(line) for line in lines.read().decode().splitlines() if line]


@contextmanager
def running_server(env: dict[str, str], idp: Identity) -> Iterator[Server]:
    server = Server(env, idp).start()
    try:
        yield server
    finally:
        server.stop()


def server_share(lines: list[dict]) -> tuple[float, float]:
    """(script seconds, SQL + Redis + Prometheus seconds) of the runs in `lines`."""
    script = sum(line["script"] for line in lines)
    calls = sum(line["sql"] + line["redis"] + line["prometheus"] for line in lines)
    return script, calls


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# The state of the script run, as the frontend shows it on the app's root element; a run
# counter set by a MutationObserver, so a click is timed until the run it caused finished
# (not the end of the previous one).
_OBSERVE_RUNS = """() => {
  if (window.__benchRuns !== undefined) return;
  window.__benchRuns = 0;
  let last = null;
  const check = () => {
    const el = document.querySelector('[data-test-script-state]');
    const state = el ? el.getAttribute('data-test-script-state') : null;
    if (last === 'running' && state === 'notRunning') window.__benchRuns += 1;
    last = state;
  };
  new MutationObserver(check).observe(document.documentElement,
    {subtree: true, childList: true, attributes: true,
     attributeFilter: ['data-test-script-state']});
  check();
}"""
_RENDERED = """() => document.querySelector('[data-test-script-state="notRunning"]') !== null
  && document.querySelectorAll('[data-testid="stSkeleton"], [data-testid="stSpinner"]')
       .length === 0"""
_IDLE = f"(runs) => window.__benchRuns > runs && ({_RENDERED})()"


class Browser:
    """One Chromium tab, signed in through the identity provider's form."""

    def __init__(self, playwright, app_url: str) -> None:
        self.app_url = app_url
        self.chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        self.context = self.chromium.new_context(viewport={"width": 1500, "height": 1000})
        self.page = self.context.new_page()

    def close(self) -> None:
        self.context.close()
        self.chromium.close()

    def sign_in(self, idp: Identity) -> None:
        page = self.page
        page.goto(self.app_url)
        page.get_by_role("button", name="Sign in with your company account").click()
        page.wait_for_url("**/authorize**")
        page.get_by_label("Email").fill(idp.email)
        page.get_by_label("Password", exact=True).fill(idp.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: url.startswith(self.app_url))
        page.get_by_test_id("stSidebarNav").wait_for(timeout=60000)
        self.wait_rendered()

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.context.cookies(self.app_url)}

    def _runs(self) -> int:
        self.page.evaluate(_OBSERVE_RUNS)
        return self.page.evaluate("() => window.__benchRuns")

    def wait_idle(
        self, runs: int, ran: Callable[[], bool] | None = None, timeout_s: float = 60
    ) -> None:
        """Until the page saw a script run finish after `runs`, or (`ran`: the server says a
        run finished since) the page is rendered: a run of a few milliseconds can start and
        finish between two of the observer's looks, and then only the server saw it."""
        deadline = time.monotonic() + timeout_s
        while not self.page.evaluate(_IDLE, runs):
            if ran is not None and ran() and self.page.evaluate(_RENDERED):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no script run finished within {timeout_s:.0f} s")
            time.sleep(0.02)

    def wait_rendered(self, timeout_ms: int = 60000) -> None:
        """After a page load: the first run finished, no skeleton or spinner left."""
        self.page.wait_for_function(_RENDERED, timeout=timeout_ms, polling=20)

    def goto(self, path: str) -> float:
        """Seconds to load `path` as a new page (a deep link) until it is rendered."""
        start = time.perf_counter()
        self.page.goto(f"{self.app_url}/{path}")
        self.wait_rendered()
        return time.perf_counter() - start

    def timed(self, action: Callable[[], object], ran: Callable[[], bool] | None = None) -> float:
        """Seconds from `action` (a click) until the script run it caused finished and no
        skeleton or spinner is left (`ran`: see wait_idle)."""
        runs = self._runs()
        start = time.perf_counter()
        action()
        self.wait_idle(runs, ran)
        return time.perf_counter() - start

    def click_page(self, title: str) -> None:
        self.page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()

    def type_in(self, label: str, text: str) -> None:
        """Type `text` into the text input labelled `label` and submit it (Enter)."""
        box = self.page.get_by_label(label, exact=True)
        box.fill(text)
        box.press("Enter")

    def shows_fault(self) -> bool:
        """Whether the page shows one of the dashboard's fault messages."""
        from bench.client import FAULTS

        texts = self.page.get_by_test_id("stAlert").all_inner_texts()
        return any(re.search(fault, text) for fault in FAULTS for text in texts)

    def click_tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name, exact=True).click()
