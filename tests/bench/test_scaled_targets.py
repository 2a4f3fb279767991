"""The 10M table's targets: fleet views against an absolute cold time, the others against their
own time in the 1M table that the same harness wrote (bench/views.py --baseline)."""

from __future__ import annotations

import pytest

from bench import harness, views

pytestmark = pytest.mark.unit


def row(view: views.View, cold_s: float) -> views.Row:
    sample = views.Sample(browser=cold_s, script=cold_s / 2, calls=cold_s / 4, fault=False)
    return views.Row(view, cold=[sample], warm=[sample])


def test_10m_targets_read_the_1m_table_back(tmp_path):
    fleet = views.View("Tenant health", query="range=30d", fleet=True)
    tenant = views.View("Tenant health", query="tenant=msp-globex")
    tab = views.View("Database health", tab="Connections")
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n")
    one_m = views.table([row(fleet, 0.9), row(tenant, 0.5), row(tab, 0.4)], "1M header")
    harness.write_section(doc, "views 1M", one_m)

    baseline = views.browser_cold(doc, "1M")
    assert baseline == {
        "Tenant health (range=30d) / -": 0.9,
        "Tenant health (tenant=msp-globex) / -": 0.5,
        "Database health / Connections": 0.4,
    }
    ten_m = views.table([row(fleet, 2.6), row(tenant, 0.64), row(tab, 0.6)], "10M", baseline)
    last_cells = [line.rsplit(" | ", 1)[1].rstrip(" |") for line in ten_m.splitlines()[4:]]
    assert last_cells == [
        "**missed**",  # a fleet view: 2.6 s > 2.5 s, whatever its 1M time
        "met (1.28x of 0.50)",
        "**missed** (1.50x of 0.40)",
    ]
    assert "10x: fleet cold <= 2.5 s, others <= 1.3x their 1M cold" in ten_m
    assert views.scaled_target(views.View("Feedback"), 1.0, {}) == "no 1M time"
