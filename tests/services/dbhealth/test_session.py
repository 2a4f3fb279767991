"""What every database-health topic shares: how durations are shown (the session set-up is
exercised by every stack test of the topics; redaction by tests/test_db_hardening.py)."""

import pytest

from services.dbhealth.session import fmt_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.04, "0.0 s"),
        (9.94, "9.9 s"),
        (10, "10 s"),
        (89.4, "89 s"),
        (90, "2 min"),
        (89 * 60, "89 min"),
        (90 * 60, "1.5 h"),
        (47.9 * 3600, "47.9 h"),
        (48 * 3600, "2.0 d"),
        (10 * 86400, "10.0 d"),
    ],
)
def test_durations_are_shown_in_the_unit_that_reads_best(seconds, shown):
    assert fmt_duration(seconds) == shown
