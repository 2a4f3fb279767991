"""services.timing: one JSON line per timed script run, nothing at all when it is off."""

from __future__ import annotations

import json
import time

import pytest

from services import timing

pytestmark = pytest.mark.unit


def test_a_run_writes_its_sources_seconds_and_calls(tmp_path, monkeypatch):
    path = tmp_path / "timings.jsonl"
    monkeypatch.setenv(timing.ENV, str(path))
    with timing.script_run("Feedback"):
        with timing.timed("sql"):
            time.sleep(0.02)
        timing.add("sql", 0.5)
        assert timing.call("redis", lambda x: x * 2, 21) == 42
    timing.add("sql", 9.0)  # outside any run: not counted anywhere
    (line,) = path.read_text().splitlines()
    run = json.loads(line)
    assert run["page"] == "Feedback"
    assert run["sql_calls"] == 2 and run["redis_calls"] == 1 and run["prometheus_calls"] == 0
    assert 0.52 <= run["sql"] < 0.6
    assert run["script"] >= 0.02  # the sleep is inside the script's time
    assert run["prometheus"] == 0.0


def test_a_failing_run_is_still_written(tmp_path, monkeypatch):
    path = tmp_path / "timings.jsonl"
    monkeypatch.setenv(timing.ENV, str(path))
    with pytest.raises(RuntimeError), timing.script_run("Queues"):
        raise RuntimeError("st.stop and st.rerun leave by an exception too")
    assert json.loads(path.read_text())["page"] == "Queues"


def test_off_unless_the_variable_names_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv(timing.ENV, raising=False)
    assert not timing.enabled()
    with timing.script_run("Feedback"), timing.timed("sql"):
        timing.add("sql", 1.0)
    assert list(tmp_path.iterdir()) == []


def test_a_query_in_the_background_counts_into_its_script_run(tmp_path, monkeypatch):
    from services.db import in_background

    path = tmp_path / "timings.jsonl"
    monkeypatch.setenv(timing.ENV, str(path))
    with timing.script_run("Weekly review"):
        with in_background(timing.call, "sql", time.sleep, 0.05) as slept:
            timing.add("sql", 0.5)  # this thread's own call, meanwhile
        assert slept.result() is None
    run = json.loads(path.read_text())
    assert run["sql_calls"] == 2 and 0.55 <= run["sql"] < 0.65
