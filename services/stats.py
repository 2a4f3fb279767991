"""Intervals for the ratios the dashboard judges, in one place: every verdict on a share or a
mean rating goes through here, so "below target" means the interval says so.

Both intervals are 95% (z = 1.96) Wilson score intervals:

- a proportion (success rate, positive feedback): the Wilson score interval for k of n. Unlike
  the plain normal interval it stays inside 0..1 and behaves at small n and near 0% or 100%.
- the mean of 1-5 ratings: the mean rescaled to 0..1, (mean - 1) / 4, treated as a proportion of
  n trials. For any variable bounded in 0..1 with mean p the variance is at most p(1 - p) (the
  two-point distribution on 0 and 1 has the most), so this interval is at least as wide as one
  from the true variance: conservative, needs no t-table or sample variance, and never leaves
  1..5. Four ratings of 5 and one of 1 (mean 4.2) give about 2.6-4.9: not enough to call it low.

The p95 gets a distribution-free 95% interval from order statistics: the count of the n values
below the true 0.95 quantile is binomial(n, 0.95), so the interval lies between the order
statistics at ranks n * 0.95 -/+ 1.96 * sqrt(n * 0.95 * 0.05) (normal approximation, ranks
rounded outward). SQL sorts the values once and returns them at the fixed fractions of
QUANTILE_GRID; `quantile` picks the bounds for n from that grid, again rounded outward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z = 1.96  # 95% two-sided


def wilson(successes: float, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of successes / n; (0, 1) when there is no sample."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


RATING_MIN, RATING_MAX = 1.0, 5.0


def rating_interval(mean: float, n: int, z: float = Z) -> tuple[float, float]:
    """Interval for the mean of n ratings on the 1-5 scale (see the module docstring)."""
    span = RATING_MAX - RATING_MIN
    low, high = wilson((mean - RATING_MIN) / span * n, n, z)
    return RATING_MIN + low * span, RATING_MIN + high * span


@dataclass(frozen=True)
class Estimate:
    """A ratio with its sample size and interval. `judged` is False below the minimum sample:
    then the value is shown but no rule passes or fails on it."""

    value: float | None
    n: int
    low: float | None
    high: float | None
    min_n: int

    @property
    def judged(self) -> bool:
        return self.value is not None and self.n >= self.min_n

    def below(self, threshold: float) -> bool:
        """Judged, and even the interval's upper end is below the threshold."""
        upper = self.value if self.high is None else self.high
        return self.judged and upper < threshold

    def above(self, threshold: float) -> bool:
        """Judged, and even the interval's lower end is above the threshold."""
        lower = self.value if self.low is None else self.low
        return self.judged and lower > threshold

    def scaled(self, factor: float) -> Estimate:
        """The same estimate in another unit (a share in percent)."""

        def scale(v: float | None) -> float | None:
            return None if v is None else v * factor

        return Estimate(scale(self.value), self.n, scale(self.low), scale(self.high), self.min_n)

    def differs_from(self, other: Estimate) -> bool:
        """Both judged and their intervals do not overlap: the change is larger than the noise
        (a conservative test; without intervals, e.g. a throughput, both judged is enough)."""
        if not (self.judged and other.judged):
            return False
        if None in (self.low, self.high, other.low, other.high):
            return True
        return self.high < other.low or other.high < self.low


def proportion(successes: int, n: int, min_n: int) -> Estimate:
    if n <= 0:
        return Estimate(None, 0, None, None, min_n)
    low, high = wilson(successes, n)
    return Estimate(successes / n, n, low, high, min_n)


def mean_rating(mean: float | None, n: int, min_n: int) -> Estimate:
    if mean is None or n <= 0 or math.isnan(mean):
        return Estimate(None, 0, None, None, min_n)
    low, high = rating_interval(mean, n)
    return Estimate(mean, n, low, high, min_n)


def without_interval(value: float | None, n: int, min_n: int) -> Estimate:
    """A statistic judged on its sample size only (a p95 read without its grid)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Estimate(None, n, None, None, min_n)
    return Estimate(value, n, None, None, min_n)


# Fractions for percentile_cont: 0 (the minimum, for an interval wider than the grid at a
# small n) and 0.800, 0.801, ..., 1.000 (1.000 = the maximum).
QUANTILE_GRID = (0.0, *(round(0.8 + i / 1000, 3) for i in range(201)))
QUANTILE_GRID_SQL = "ARRAY[" + ", ".join(f"{f:g}" for f in QUANTILE_GRID) + "]"


def quantile_ranks(n: int, q: float = 0.95, z: float = Z) -> tuple[int, int]:
    """1-based ranks of the order statistics that bound the 95% interval of the q quantile of
    n values, rounded outward and kept within 1..n."""
    half = z * math.sqrt(n * q * (1 - q))
    return max(1, math.floor(n * q - half)), min(n, math.ceil(n * q + half))


def quantile_bounds(grid_values: Sequence[float], n: int, q: float = 0.95) -> tuple[float, float]:
    """The interval's bounds from the values at QUANTILE_GRID's fractions: the order statistic
    of rank r sits at fraction (r - 1) / (n - 1) of percentile_cont; the low fraction is
    rounded down and the high one up to the grid, so the interval only gets wider."""
    if n < 2:
        return grid_values[0], grid_values[-1]
    low_rank, high_rank = quantile_ranks(n, q)
    low_f, high_f = (low_rank - 1) / (n - 1), (high_rank - 1) / (n - 1)
    eps = 1e-9  # a fraction on the grid is on it, whatever the float rounding
    low = max(i for i, f in enumerate(QUANTILE_GRID) if f <= low_f + eps)
    high = min(i for i, f in enumerate(QUANTILE_GRID) if f >= high_f - eps)
    return grid_values[low], grid_values[high]


def quantile(
    value: float | None, grid_values: Sequence[float] | None, n: int, min_n: int
) -> Estimate:
    """The p95 of n values with its order-statistic interval (without the grid: no interval)."""
    if grid_values is None or value is None or n <= 0:
        return without_interval(value, n, min_n)
    low, high = quantile_bounds([float(v) for v in grid_values], n)
    return Estimate(value, n, low, high, min_n)


def rate_differs(count: float, days: float, other_count: float, other_days: float) -> bool:
    """Two Poisson counts over different spans differ by more than the noise: given the total,
    the first count is binomial with share days / (days + other_days) when the rates are
    equal, so the rates differ when that share is outside the Wilson interval of the first."""
    total = count + other_count
    if total <= 0 or days <= 0 or other_days <= 0:
        return False
    low, high = wilson(count, int(round(total)))
    expected = days / (days + other_days)
    return not low <= expected <= high
