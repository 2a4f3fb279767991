"""The verdict exporter scraped by a real Prometheus, the example alert rules loaded and firing
for a planted critical tenant, and the check command's exit codes (real PostgreSQL, Redis)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services import health
from tests.conftest import free_port, stop_process, wait_for_http
from tests.planting import add_history, add_runs, add_tenant

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "demo" / "prometheus" / "alerts.yml"
SICK, WELL, FEW, SLOW = "sick-exp", "well-exp", "few-exp", "slow-exp"
ERROR_TEXT = "ServiceDesk Plus ticket body: printer on floor 3 secret-ticket-text"


@pytest.fixture(scope="module")
def planted(make_platform_db):
    """SICK: 40 attempts in the last 2 hours, all failed (critical). WELL: 60 completed.
    FEW: 10 completed, 5 failed: too few to judge its success rate (healthy, a note).
    SLOW: 30 completed in 90 s each, p95 over the 60 s target but under the 120 s SLA (degraded,
    not critical)."""
    db = make_platform_db("exporter")
    now = datetime.now(UTC)
    start = now - timedelta(hours=2)
    with db.superuser() as conn:
        for tenant in (SICK, WELL, FEW, SLOW):
            add_tenant(conn, tenant, name=f"Secret Name {tenant}")
            add_history(conn, tenant, 120, now - timedelta(days=1), span_days=90)
        add_runs(conn, SICK, 40, "failed", start, 5, ERROR_TEXT, timedelta(minutes=3))
        add_runs(conn, WELL, 60, "completed", start, latency_s=20, step=timedelta(minutes=2))
        add_runs(conn, FEW, 10, "completed", start, latency_s=20, step=timedelta(minutes=5))
        add_runs(conn, FEW, 5, "failed", start, latency_s=5, step=timedelta(minutes=5))
        add_runs(conn, SLOW, 30, "completed", start, latency_s=90, step=timedelta(minutes=3))
    return db


def _env(db, redis_url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": db.reader_url, "ADMIN_DATABASE_URL": db.admin_url}
    env["REDIS_URL"] = redis_url
    env.pop("PROMETHEUS_URL", None)  # the webhook rules are not judged here: a note
    return env


@pytest.fixture
def exporter(planted, redis_url) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.exporter", "--port", str(port), "--cache-seconds", "1"],
        cwd=ROOT,
        env=_env(planted, redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/metrics", seconds=60)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def test_metrics_name_statuses_and_rules_but_no_content(exporter):
    text = _get(f"http://{exporter}/metrics")
    assert f'aiagents_dashboard_tenant_status{{tenant_id="{SICK}"}} 2.0' in text
    assert f'aiagents_dashboard_tenant_status{{tenant_id="{WELL}"}} 0.0' in text
    assert f'aiagents_dashboard_tenant_status{{tenant_id="{FEW}"}} 0.0' in text
    assert f'aiagents_dashboard_tenant_status{{tenant_id="{SLOW}"}} 1.0' in text
    assert (
        f'aiagents_dashboard_rule_failing{{rule="success_rate",severity="critical",'
        f'tenant_id="{SICK}"}} 1.0'
    ) in text
    assert (
        f'aiagents_dashboard_rule_not_judged{{rule="success_rate",tenant_id="{FEW}"}} 1.0' in text
    )
    assert "aiagents_dashboard_check_success 1.0" in text
    # never ticket content, tenant names or the (encrypted) secrets
    for leak in ("secret-ticket-text", "Secret Name", "gAAAAA", "printer"):
        assert leak not in text


def test_prometheus_scrapes_the_exporter_and_the_alert_fires(exporter):
    directory = Path(tempfile.mkdtemp(prefix="exporter-prom-"))
    shutil.copy(ALERTS, directory / "alerts.yml")
    (directory / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n  - job_name: dashboard\n"
        f"    static_configs: [{{targets: ['{exporter}']}}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/-/ready", seconds=60)
        firing: list[dict] = []
        deadline = time.time() + 60
        while time.time() < deadline:
            alerts = json.loads(_get(f"{url}/api/v1/alerts"))["data"]["alerts"]
            firing = [a for a in alerts if a["state"] == "firing"]
            if any(a["labels"]["alertname"] == "TenantRuleFailing" for a in firing):
                break
            time.sleep(1)
        names = {(a["labels"]["alertname"], a["labels"].get("tenant_id")) for a in firing}
        assert ("TenantCritical", SICK) in names
        assert ("TenantRuleFailing", SICK) in names
        assert not {t for _, t in names} & {WELL, FEW}  # healthy tenants never page
        assert ("TenantCritical", SLOW) not in names  # degraded pages only after 30 min
        scraped = json.loads(_get(f"{url}/api/v1/query?query=aiagents_dashboard_tenant_status"))
        statuses = {r["metric"]["tenant_id"]: r["value"][1] for r in scraped["data"]["result"]}
        assert statuses == {SICK: "2", WELL: "0", FEW: "0", SLOW: "1"}
    finally:
        stop_process(process)
        shutil.rmtree(directory, ignore_errors=True)


def test_the_example_rules_pass_promtool():
    result = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def _check(db, redis_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.health", "check", *args],
        cwd=ROOT,
        env=_env(db, redis_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_command_exit_codes(planted, redis_url):
    assert _check(planted, redis_url, "--tenant", WELL).returncode == 0
    assert _check(planted, redis_url, "--tenant", FEW).returncode == 0
    sick = _check(planted, redis_url, "--tenant", SICK, "--json")
    assert sick.returncode == 2
    doc = json.loads(sick.stdout)
    (tenant,) = doc["tenants"]
    assert tenant["status"] == "critical"
    assert any("n = 40 finished attempts" in r["text"] for r in tenant["reasons"])
    fleet = _check(planted, redis_url)
    assert fleet.returncode == 2 and f"critical  {SICK}:" in fleet.stdout
    assert _check(planted, redis_url, "--tenant", "no-such-tenant").returncode == 3


def test_check_command_exits_1_for_a_degraded_tenant(planted, redis_url, monkeypatch, capsys):
    # In process (the runs above cover the command line itself): the code `sys.exit` returns.
    planted.use()
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    assert health.main(["check", "--tenant", SLOW, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    (tenant,) = doc["tenants"]
    assert doc["status"] == tenant["status"] == "degraded"
    failing = [r for r in tenant["reasons"] if r["severity"] in ("degraded", "critical")]
    assert [(r["rule"], r["severity"]) for r in failing] == [("latency", "degraded")]
    assert "n = 30 completed attempts" in failing[0]["text"]


def test_check_command_records_its_access_first(planted, redis_url):
    assert _check(planted, redis_url, "--tenant", SICK).returncode == 2
    with planted.superuser() as conn:
        recorded = conn.execute(
            "SELECT actor, actor_role, query_kind, row_count FROM dashboard.data_access_log"
            " WHERE tenant_id = %s AND query_kind = 'health_check'",
            (SICK,),
        ).fetchall()
        assert recorded and recorded[-1] == ("cron", "service", "health_check", 1)
        conn.execute("ALTER TABLE dashboard.data_access_log RENAME TO data_access_log_away")
        try:  # no record, no verdicts: nothing of the tenant is printed
            refused = _check(planted, redis_url, "--tenant", SICK)
        finally:
            conn.execute("ALTER TABLE dashboard.data_access_log_away RENAME TO data_access_log")
    assert refused.returncode == 3 and SICK not in refused.stdout


def _stack_query(prometheus: str, query: str) -> list[dict]:
    found = json.loads(_get(f"{prometheus}/api/v1/query?query={urllib.parse.quote(query)}"))
    return found["data"]["result"]


def test_the_stack_prometheus_scrapes_the_stack_exporter():
    """scripts/stack.sh starts the exporter on EXPORTER_PORT and its Prometheus scrapes it (once a
    minute: right after a fresh start this waits for the first scrape)."""
    prometheus = f"http://127.0.0.1:{os.environ['PROM_PORT']}"
    job = 'job="dashboard-verdicts"'
    deadline = time.time() + 90
    while not _stack_query(prometheus, f"up{{{job}}} == 1") and time.time() < deadline:
        time.sleep(2)
    (up,) = _stack_query(prometheus, f"up{{{job}}}")
    assert up["metric"]["instance"] == f"127.0.0.1:{os.environ['EXPORTER_PORT']}"
    assert up["value"][1] == "1"
    (check,) = _stack_query(prometheus, f"aiagents_dashboard_check_success{{{job}}}")
    assert check["value"][1] in ("0", "1")
    rules = json.loads(_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} >= {"TenantCritical", "TenantDegraded"}
