"""Shared fixtures: real PostgreSQL, Redis and Prometheus from the private stack (.stack/),
a database of our own per test session (never the demo one), and the app in real Chromium."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from demo import dbsetup
from services import db

ROOT = Path(__file__).resolve().parent.parent
# Fixtures shared by the services, views and browser tests of one topic.
pytest_plugins = ["tests.dbhealth_workload"]
ARTIFACTS = ROOT / "test-artifacts"


def read_stack_env(env_file: Path) -> dict[str, str]:
    """The variables of a stack's env file (`export KEY='value'` lines, shell-quoted)."""
    env = {}
    for line in env_file.read_text().splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            for pair in words[1:]:
                key, _, value = pair.partition("=")
                env[key] = value
    return env


STACK_ENV = ROOT / ".stack" / "env"


def pytest_configure(config: pytest.Config) -> None:
    """The private stack's variables, unless only unit tests run (they need none)."""
    if config.option.markexpr != "unit" and STACK_ENV.exists():
        for key, value in read_stack_env(STACK_ENV).items():
            os.environ.setdefault(key, value)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("unit") is None and not STACK_ENV.exists():
        pytest.exit(
            "The private stack is not running: run `make test` (or scripts/stack.sh start)."
        )


@dataclass(frozen=True)
class PlatformDb:
    name: str
    reader_url: str
    admin_url: str

    def superuser(self) -> psycopg.Connection:
        """A superuser connection (bypasses RLS) for planting rows; autocommit."""
        return psycopg.connect(
            dbname=self.name,
            host=os.environ["PGHOST"],
            port=os.environ["PGPORT"],
            user="postgres",
            autocommit=True,
        )

    def use(self) -> None:
        """Point the dashboard's gateway at this database."""
        os.environ["DATABASE_URL"] = self.reader_url
        os.environ["ADMIN_DATABASE_URL"] = self.admin_url
        db.dispose_engines()


def _role_url(role: str, password: str, database: str) -> str:
    return f"postgresql://{role}:{password}@127.0.0.1:{os.environ['PGPORT']}/{database}"


@pytest.fixture(scope="session")
def make_platform_db() -> Iterator[Callable[[str], PlatformDb]]:
    """Factory: a fresh platform-shaped database with roles and migrations, dropped at the end."""
    created: list[str] = []

    def make(label: str, harden: bool = True) -> PlatformDb:
        name = f"test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        dbsetup.prepare(name, harden=harden)
        created.append(name)
        return PlatformDb(
            name,
            _role_url("dashboard_reader", os.environ["STACK_READER_PASSWORD"], name),
            _role_url("dashboard_admin", os.environ["STACK_ADMIN_PASSWORD"], name),
        )

    yield make
    db.dispose_engines()
    for name in created:
        dbsetup.drop_database(name)


@pytest.fixture(scope="session")
def platform_db(make_platform_db: Callable[[str], PlatformDb]) -> PlatformDb:
    """One shared empty platform database; tests plant rows under their own tenant ids."""
    return make_platform_db("shared")


@pytest.fixture
def use_db(platform_db: PlatformDb) -> Iterator[PlatformDb]:
    platform_db.use()
    yield platform_db


@pytest.fixture
def tenant_id() -> str:
    """A tenant id no other test uses, so planted rows never collide."""
    return f"t-{uuid.uuid4().hex[:10]}"


def _redis_pair(first_db: int) -> tuple[str, str]:
    """Two logical databases on the private Redis, as the platform deploys them: its own keys
    on the first (REDIS_URL), the Celery broker on the next (CELERY_BROKER_URL)."""
    base = f"redis://127.0.0.1:{os.environ.get('REDIS_PORT', '56379')}"
    return f"{base}/{first_db}", f"{base}/{first_db + 1}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """REDIS_URL and CELERY_BROKER_URL of this test process (databases 2-13; the demo uses 0
    and 1, the fleet 14 and 15), both emptied per test. Yields REDIS_URL."""
    import redis

    urls = _redis_pair(2 + 2 * (os.getpid() % 6))
    clients = [redis.Redis.from_url(url) for url in urls]
    old = {name: os.environ.get(name) for name in ("REDIS_URL", "CELERY_BROKER_URL")}
    for client in clients:
        client.flushdb()
    os.environ["REDIS_URL"], os.environ["CELERY_BROKER_URL"] = urls
    yield urls[0]
    for client in clients:
        client.flushdb()
    for name, value in old.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """The Celery broker database that goes with redis_url."""
    return os.environ["CELERY_BROKER_URL"]


def use_config(tmp_path: Path, monkeypatch, old: str, new: str) -> None:
    """Point the dashboard at a copy of dashboard.toml with one line changed (a new file each
    time: the rules are cached per path)."""
    text = (ROOT / "dashboard.toml").read_text()
    assert old in text
    path = tmp_path / f"dashboard-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(text.replace(old, new, 1))
    monkeypatch.setenv("DASHBOARD_CONFIG", str(path))


def use_pool(tmp_path: Path, monkeypatch, size: int, wait_s: float) -> None:
    """Point the dashboard at a copy of dashboard.toml with `size` pooled connections per URL and
    `wait_s` of waiting for one, with fresh pools (the caller disposes of them at its end)."""
    from services import db

    text = (ROOT / "dashboard.toml").read_text()
    assert "pool_size = 5 " in text and "pool_wait_s = 10 " in text
    path = tmp_path / f"dashboard-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(
        text.replace("pool_size = 5 ", f"pool_size = {size} ", 1).replace(
            "pool_wait_s = 10 ", f"pool_wait_s = {wait_s:g} ", 1
        )
    )
    monkeypatch.setenv("DASHBOARD_CONFIG", str(path))
    db.dispose_engines()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, seconds: float = 30) -> None:
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


# Test accounts, one per role, held by the test identity provider (the demo one, demo/idp.py)
# with TEST_PASSWORD; a served app's users file gives them (and its default user) their roles.
TEST_PASSWORD = "test-password"
TEST_USERS = {
    "admin": ("admin@test.example", None),
    "support": ("support@test.example", None),
    "client": ("client@acme.test.example", "msp-acme-corp"),
}


@dataclass
class Idp:
    url: str
    state: Path

    def add_account(self, email: str, password: str = TEST_PASSWORD, **claims: str) -> None:
        from demo import idp

        idp.add_account(self.state, email, password, claims=claims)


_IDP: list[Idp] = []


def identity_provider() -> Idp:
    """The OpenID Connect provider of this test process, on a free loopback port (started once,
    stopped when the process exits)."""
    if not _IDP:
        import atexit

        from demo import idp

        state = Path(tempfile.mkdtemp(prefix="test-idp-")) / "idp.json"
        port = free_port()
        server = idp.serve(port, state)
        atexit.register(server.shutdown)
        _IDP.append(Idp(f"http://127.0.0.1:{port}", state))
        for email, _ in TEST_USERS.values():
            _IDP[0].add_account(email)
    return _IDP[0]


@dataclass
class RunningApp:
    url: str
    process: subprocess.Popen
    email: str  # the user a browser test signs in as unless it names another role
    users_file: Path


def stop_process(process: subprocess.Popen, grace_s: float = 30) -> None:
    """Terminate a server the tests started; kill it if it has not exited in `grace_s` (a
    loaded machine can take longer than a few seconds to shut a Streamlit server down)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _users_file(default_email: str, default_role: str, default_tenant: str | None) -> Path:
    from services import users

    path = Path(tempfile.mkdtemp(prefix="dashboard-users-")) / "users.toml"
    for role, (email, tenant) in TEST_USERS.items():
        users.add(path, email, role, tenant=tenant)
    users.add(path, default_email, default_role, tenant=default_tenant)
    return path


def app_secrets(public_url: str) -> Path:
    """An [auth] secrets file for an app reached at `public_url`, registered with the test
    provider. Replicas behind one load balancer share one file (URL and cookie secret)."""
    from demo import idp

    provider = identity_provider()
    redirect_uri = f"{public_url}/oauth2callback"
    secret = idp.add_client(provider.state, "support-dashboard", redirect_uri)
    path = Path(tempfile.mkdtemp(prefix="dashboard-secrets-")) / "secrets.toml"
    path.write_text(idp.secrets_toml(provider.url, "support-dashboard", secret, redirect_uri))
    return path


def start_app(env: dict[str, str], secrets: Path | None = None) -> RunningApp:
    """Serve the app on a free port, signing in at the test identity provider.
    DASHBOARD_USER / DASHBOARD_ROLE / DASHBOARD_TENANT in `env` (test-only knobs) name the
    user that `visit` signs in as; default: an admin."""
    env = dict(env)
    email = env.pop("DASHBOARD_USER", "engineer@test.example")
    role = env.pop("DASHBOARD_ROLE", "admin")
    users_file = _users_file(email, role, env.pop("DASHBOARD_TENANT", None))
    identity_provider().add_account(email)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless=true",
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--browser.gatherUsageStats=false",
            f"--secrets.files={secrets or app_secrets(f'http://127.0.0.1:{port}')}",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "DASHBOARD_USERS_FILE": str(users_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/_stcore/health")
    return RunningApp(url, process, email, users_file)


SIGN_IN_BUTTON = "Sign in with your company account"


def sign_in(page, email: str, password: str = TEST_PASSWORD) -> list[str]:
    """On the dashboard's sign-in page: go to the identity provider, sign in there, and wait
    for the app it returns to (the root, which then goes on to the link opened signed out).
    Returns the URLs the tab went through, for wait_for_link."""
    seen: list[str] = []
    page.on(
        "framenavigated", lambda frame: seen.append(frame.url) if frame == page.main_frame else None
    )
    app_origin = page.url.split("/", 3)[:3]
    page.get_by_role("button", name=SIGN_IN_BUTTON).click()
    page.wait_for_url(f"{identity_provider().url}/authorize**")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.split("/", 3)[:3] == app_origin)
    wait_rendered(page)
    return seen


def wait_for_link(page, app: RunningApp, path: str, seen: list[str] | None = None) -> None:
    """Until the tab shows `path` of the app, its page and query (the app may tidy the query
    once there: `seen`, the URLs sign_in saw, tells that it went there)."""
    from urllib.parse import parse_qsl, urlparse

    wanted = urlparse(f"{app.url}/{path.lstrip('/')}")

    def there(url: str) -> bool:
        now = urlparse(url)
        return now.path.rstrip("/") == wanted.path.rstrip("/") and set(
            parse_qsl(wanted.query)
        ) <= set(parse_qsl(now.query))

    if seen is None:
        page.wait_for_url(there)
    else:
        deadline = time.time() + 30
        while not any(there(url) for url in seen):
            assert time.time() < deadline, f"the app did not go on to {path} (went: {seen})"
            page.wait_for_timeout(100)
    wait_rendered(page)


def visit(page, app: RunningApp, path: str = "", role: str | None = None) -> None:
    """Open `path` (a deep link) as a signed-in user. The sign-in lasts in the browser context
    (its cookie): the first visit signs in at the provider, and the app returns to the link."""
    page.goto(f"{app.url}/{path.lstrip('/')}")
    wait_rendered(page)
    if page.get_by_role("button", name=SIGN_IN_BUTTON).count():
        seen = sign_in(page, TEST_USERS[role][0] if role else app.email)
        wait_for_link(page, app, path, seen)


def app_test(role: str | None = None, email: str | None = None, tenant_id: str | None = None):
    """An AppTest of app.py with a signed-in user (by default the one DASHBOARD_ROLE /
    DASHBOARD_USER / DASHBOARD_TENANT name in the test's environment, else an admin)."""
    from streamlit.testing.v1 import AppTest

    from ui.identity import SESSION_KEY, User

    role = role or os.environ.get("DASHBOARD_ROLE", "admin")
    email = email or os.environ.get("DASHBOARD_USER", "engineer@test.example")
    tenant_id = tenant_id or os.environ.get("DASHBOARD_TENANT")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[SESSION_KEY] = User(email, email.split("@")[0], role, tenant_id)
    return at


def run_page_as(user, path: str, **query: str):
    """An AppTest run of the page `path` (views/....py) as `user` with the URL's `query`,
    caches cleared first, after the landing page ran (as a browser arrives)."""
    import streamlit as st

    from ui.identity import SESSION_KEY

    st.cache_data.clear()
    at = app_test()
    at.session_state[SESSION_KEY] = user
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    return at.switch_page(path).run()


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Each test of a module that asks for it (usefixtures) starts and ends with empty caches."""
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()


def chart_labels(at) -> list[list[str]]:
    """The annotation texts of each plotly chart an AppTest page drew, without the marker of an
    event's label ("▾ <label>" or "<label> ▾" by its side of the chart: charts.with_events)."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return [
        [
            a.get("text", "").replace("▾", "").strip()
            for a in s.get("layout", {}).get("annotations", [])
        ]
        for s in specs
    ]


def page_text(at) -> str:
    """Everything an AppTest run shows as text (main area and sidebar): titles, headers,
    markdown, captions, code, text areas, alerts, metrics and tables."""
    parts = [e.value for e in (*at.title, *at.subheader, *at.markdown, *at.caption, *at.code)]
    parts += [e.value for e in at.text_area]
    parts += [str(e.body) for e in (*at.error, *at.warning, *at.info, *at.success)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [frame.value.to_string() for frame in at.dataframe]
    return "\n".join(str(p) for p in parts)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A tab in a browser context of its own (own cookies: its own sign-in). A test module may
    set VIEWPORT = {"width": ..., "height": ...}: Streamlit scrolls inside its own container,
    so a full-page screenshot shows the viewport."""
    viewport = getattr(request.module, "VIEWPORT", {"width": 1500, "height": 1000})
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    yield context.new_page()
    context.close()


def wait_rendered(page, timeout_ms: int = 30000) -> None:
    """Streamlit has finished the script run and no skeleton placeholder is left."""
    page.wait_for_selector(
        '[data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms
    )
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(300)  # let charts finish their first paint


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def fleet_db(make_platform_db: Callable[[str], PlatformDb]) -> PlatformDb:
    """The demo fleet (every planted case) at a small scale, in a database of its own."""
    from demo.generate import generate

    platform = make_platform_db("fleet")
    with platform.superuser() as conn:
        generate(conn, days=8, scale=0.25)
    return platform


@pytest.fixture(scope="session")
def fleet_redis_url() -> str:
    """The demo queues of this session: REDIS_URL on database 14, the broker on 15."""
    import redis

    from demo.seed_redis import seed

    url, broker = _redis_pair(14)
    for each in (url, broker):
        redis.Redis.from_url(each).flushdb()
    seed(redis.Redis.from_url(url), broker, datetime.now(UTC).replace(second=0, microsecond=0))
    return url


@pytest.fixture(scope="session")
def fleet_broker_url(fleet_redis_url: str) -> str:
    """The Celery broker database of the demo queues."""
    return _redis_pair(14)[1]


@pytest.fixture(scope="session")
def fleet_app(
    fleet_db: PlatformDb, fleet_redis_url: str, fleet_broker_url: str
) -> Iterator[RunningApp]:
    """The dashboard served on the demo fleet, for browser tests."""
    app = start_app(
        {
            "DATABASE_URL": fleet_db.reader_url,
            "ADMIN_DATABASE_URL": fleet_db.admin_url,
            "REDIS_URL": fleet_redis_url,
            "CELERY_BROKER_URL": fleet_broker_url,
        }
    )
    yield app
    stop_process(app.process)
