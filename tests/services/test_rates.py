"""Rates computed one way everywhere."""

import math

import pandas as pd
import pytest

from services import rates

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("up", "down", "expected"),
    [(0, 0, 0.0), (1, 0, 100.0), (1, 2, 33.33), (2, 1, 66.67), (1, 7, 12.5)],
)
def test_positive_percentage_rounds_like_the_platform(up, down, expected):
    assert rates.positive_percentage(up, down) == expected


def test_per_row_percentages_follow_the_same_rule_and_leave_rows_without_votes_empty():
    found = rates.positive_percentages(pd.Series([1, 2, 0]), pd.Series([2, 1, 0]))
    assert found.tolist()[:2] == [33.33, 66.67] and math.isnan(found.iloc[2])


def test_success_rates_by_attempt_and_by_ticket():
    frame = pd.DataFrame(
        {
            "completed": [9, 0],
            "failed": [1, 0],
            "tickets_enhanced": [8, 0],
            "tickets_failed": [0, 0],
        }
    )
    found = rates.success_rates(frame)
    assert found["success_rate"].iloc[0] == 0.9 and math.isnan(found["success_rate"].iloc[1])
    assert found["ticket_success_rate"].iloc[0] == 1.0
    assert rates.share(3, 4) == 0.75 and rates.share(0, 0) is None
