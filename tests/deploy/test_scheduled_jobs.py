"""Scheduled jobs run once however many replicas or CronJob runs start them: two overlapping
runs of the snapshot and purge commands do the work once, and the second says it skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from services.db import job_lock
from services.dbhealth import statements
from tests.conftest import ROOT
from tests.services.test_access_log import plant_aged


@pytest.fixture
def jobs_db(make_platform_db):
    return make_platform_db("jobs")


@pytest.fixture
def patient_config() -> str:
    """dashboard.toml with timeouts long enough for a run to wait on a table the test locks."""
    text = (ROOT / "dashboard.toml").read_text()
    for old, new in (
        ("statement_timeout_ms = 5000 ", "statement_timeout_ms = 30000 "),
        ("statement_timeout_ms = 10000", "statement_timeout_ms = 30000"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = Path(tempfile.mkdtemp(prefix="dashboard-config-")) / "dashboard.toml"
    path.write_text(text)
    return str(path)


def start(db, config: str, *command: str) -> subprocess.Popen:
    """A job as its own process (a CronJob run, or a replica's cron), with the role URLs only."""
    env = {
        **os.environ,
        "DATABASE_URL": db.reader_url,
        "ADMIN_DATABASE_URL": db.admin_url,
        "DASHBOARD_CONFIG": config,
    }
    return subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def overlapping_runs(db, config: str, table: str, *command: str) -> tuple[str, str]:
    """Two runs of `command`, the second while the first holds the job's lock: the test holds
    `table` locked so the first waits on it mid-job. Returns (first output, second output)."""
    with db.superuser() as holder:
        holder.autocommit = False
        holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        first = start(db, config, *command)
        deadline = time.monotonic() + 60
        with db.superuser() as watcher:
            while not watcher.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE d.datname = current_database() AND NOT l.granted"
                " AND l.relation = CAST(%s AS regclass)",
                (table,),
            ).fetchone()[0]:
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first run never reached the table"
                time.sleep(0.1)
        second = start(db, config, *command)
        out2, err2 = second.communicate(timeout=60)
        assert second.returncode == 0, err2
        holder.rollback()  # the first run goes on
    out1, err1 = first.communicate(timeout=60)
    assert first.returncode == 0, err1
    return out1, out2


def test_two_snapshot_runs_take_one_snapshot(jobs_db, patient_config):
    first, second = overlapping_runs(
        jobs_db, patient_config, "dashboard.query_snapshots", "services.dbhealth", "snapshot"
    )
    assert "snapshot skipped: another run is taking one" in second
    assert "taken" in first
    with jobs_db.superuser() as conn:
        assert conn.execute("SELECT count(*) FROM dashboard.query_snapshots").fetchone()[0] == 1


def test_two_purge_runs_purge_once(jobs_db, patient_config, tenant_id):
    plant_aged(jobs_db, tenant_id, days_old=120, count=3)
    plant_aged(jobs_db, tenant_id, days_old=10, count=2)
    first, second = overlapping_runs(
        jobs_db,
        patient_config,
        "dashboard.data_access_log",
        "services.access_log",
        "purge",
        "--older-than-days",
        "90",
    )
    assert "access log purge skipped: another run is purging" in second
    assert "purged 3 access records older than 90 days" in first
    with jobs_db.superuser() as conn:
        assert conn.execute("SELECT count(*) FROM dashboard.data_access_log").fetchone()[0] == 2


def test_a_page_load_does_not_snapshot_while_the_job_runs(jobs_db):
    jobs_db.use()
    with job_lock(statements.SNAPSHOT_LOCK) as ours:
        assert ours
        assert statements.snapshot_if_stale(0) is None  # skipped: the job is taking one
        with job_lock(statements.SNAPSHOT_LOCK) as again:
            assert not again
    assert statements.snapshot_if_stale(0) is not None  # released when the job ended
