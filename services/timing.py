"""Opt-in timing of one script run: how long its SQL, Redis and Prometheus calls took.

Off unless DASHBOARD_TIMINGS names a file (bench/ sets it). app.py opens a `script_run()` per
run; the data-source call sites add their time with `timed(source)` (services/metrics.py,
services/queues.py) or through the SQLAlchemy cursor events (services/db.py). When the variable
is unset, `script_run()` yields without recording and `timed()` costs one contextvar lookup.
One JSON line per run goes to the file: page, script seconds, seconds per source, call counts.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

SOURCES = ("sql", "redis", "prometheus")
ENV = "DASHBOARD_TIMINGS"
T = TypeVar("T")

_run: ContextVar[dict[str, float] | None] = ContextVar("dashboard_timing_run", default=None)
_write_lock = threading.Lock()
_add_lock = threading.Lock()


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def add(source: str, seconds: float) -> None:
    """Count `seconds` of `source` into the current script run, if one is being timed."""
    if (run := _run.get()) is not None:
        with _add_lock:  # a run's queries may run on two threads (db.in_background)
            run[source] += seconds
            run[f"{source}_calls"] += 1


@contextmanager
def timed(source: str) -> Iterator[None]:
    """Time the block as a call to `source` (one of SOURCES)."""
    if _run.get() is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        add(source, time.perf_counter() - start)


def call(source: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)`, timed as a call to `source`."""
    with timed(source):
        return function(*args, **kwargs)


@contextmanager
def script_run(page: str) -> Iterator[None]:
    """Time one script run and append its line to DASHBOARD_TIMINGS (nothing when unset)."""
    path = os.environ.get(ENV)
    if not path:
        yield
        return
    run = {key: 0.0 for source in SOURCES for key in (source, f"{source}_calls")}
    token = _run.set(run)
    start = time.perf_counter()
    try:
        yield
    finally:
        script = time.perf_counter() - start
        _run.reset(token)
        line = {"page": page, "at": time.time(), "script": round(script, 6)}
        line.update({k: round(v, 6) if isinstance(v, float) else v for k, v in run.items()})
        for source in SOURCES:
            line[f"{source}_calls"] = int(run[f"{source}_calls"])
        with _write_lock, open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
