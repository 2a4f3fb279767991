"""The benchmarks still start: the view harness measures one view once, and the load test runs
one session once, against a tiny fleet of their own (bench/; `make bench` runs them in full)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TEST_PASSWORD, identity_provider

pytestmark = pytest.mark.browser

NUMBER = r"\d+\.\d\d"


@pytest.fixture(scope="module")
def tiny_fleet(make_platform_db):
    from demo.generate import generate

    platform = make_platform_db("bench")
    with platform.superuser() as conn:
        generate(conn, tenants=3, days=1, scale=0.1)
    return platform


def bench(script: str, database: str, *args: str) -> str:
    provider = identity_provider()
    email = "bench@test.example"
    provider.add_account(email, dashboard_role="admin")
    result = subprocess.run(
        [sys.executable, f"bench/{script}", "--database", database, "--idp-url", provider.url]
        + ["--idp-state", str(provider.state), "--account", f"{email}:{TEST_PASSWORD}", *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_view_harness_measures_one_view(tiny_fleet):
    out = bench("views.py", tiny_fleet.name, "--runs", "1", "--only", "Tenant health")
    assert f"`{tiny_fleet.name}`:" in out and "load average" in out
    rows = [line for line in out.splitlines() if line.startswith("| Tenant health |")]
    assert len(rows) == 1, out
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert all(re.fullmatch(NUMBER, cell) for cell in cells[2:8]), cells
    browser_cold, _, server_cold, _, calls_cold, _ = map(float, cells[2:8])
    # The browser waits for the server's script, which waits for its SQL.
    assert browser_cold >= server_cold >= calls_cold > 0
    assert cells[8] == "0/2"  # no fault shown, cold or warm
    assert cells[9] in ("met", "**missed**") and cells[10] in ("met", "**missed**")


def test_load_test_runs_one_session(tiny_fleet):
    out = bench(
        "load.py", tiny_fleet.name, "--users", "1", "--rounds", "1", "--think", "0.1", "0.2"
    )
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert [row.split("|")[2].strip() for row in rows] == [
        "tenant health",
        "investigation",
        "feedback",
    ], out
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2] == "1" and re.fullmatch(NUMBER, cells[3]), cells  # one run, timed
        assert cells[6] == "0", out  # no errors
        assert int(cells[7]) >= 1  # the dashboard's connections were seen
