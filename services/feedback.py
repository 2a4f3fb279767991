"""Technician feedback: the platform's own statistics, trends and the worst-rated enhancements.

The statistics are the feedback API's (`GET /api/v1/feedback/stats`), reproduced exactly:
average_rating = AVG(rating_value) over `rating` rows that have a value (None when there are
none), positive_percentage = up / (up + down) * 100 rounded to 2 decimals (0.0 without votes),
feedback_counts per type, total_feedback. The API's range is inclusive at both ends; the
dashboard's TimeRange is half-open, which is the API's range ending 1 µs before `until`.
The same SQL serves one tenant (tenant scope, RLS) and the fleet (tenant None, admin scope).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from services import themes
from services.config import rules
from services.db import read_frame, scope
from services.health import failure_label
from services.rates import positive_percentage, positive_percentages
from services.timerange import TimeRange

FEEDBACK_TYPES = ("thumbs_up", "thumbs_down", "rating")


@dataclass(frozen=True)
class FeedbackStats:
    average_rating: float | None
    feedback_counts: dict[str, int]
    total_feedback: int
    positive_percentage: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FeedbackStats:
        counts = {kind: int(row[kind]) for kind in FEEDBACK_TYPES}
        return cls(
            average_rating=_float_or_none(row["average_rating"]),
            feedback_counts=counts,
            total_feedback=int(row["total_feedback"]),
            positive_percentage=positive_percentage(counts["thumbs_up"], counts["thumbs_down"]),
        )

    def as_api(self) -> dict[str, Any]:
        """The shape the platform's stats endpoint returns, to compare side by side."""
        return {
            "average_rating": self.average_rating,
            "feedback_counts": dict(self.feedback_counts),
            "total_feedback": self.total_feedback,
            "positive_percentage": self.positive_percentage,
        }


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


@dataclass(frozen=True)
class FeedbackSummary:
    total: FeedbackStats
    by_tenant: pd.DataFrame  # one row per tenant with feedback in the range


# One row per tenant plus the total (GROUPING SETS: the () set yields a row even with no rows).
_STATS_SQL = """
SELECT f.tenant_id, GROUPING(f.tenant_id) = 1 AS is_total, max(c.name) AS name,
       avg(f.rating_value) FILTER (WHERE f.feedback_type = 'rating'
                                     AND f.rating_value IS NOT NULL) AS average_rating,
       count(*) FILTER (WHERE f.feedback_type = 'thumbs_up') AS thumbs_up,
       count(*) FILTER (WHERE f.feedback_type = 'thumbs_down') AS thumbs_down,
       count(*) FILTER (WHERE f.feedback_type = 'rating') AS rating,
       count(*) AS total_feedback
  FROM enhancement_feedback f
  LEFT JOIN tenant_configs c ON c.tenant_id = f.tenant_id
 WHERE f.created_at >= :since AND f.created_at < :until
   AND (CAST(:tenant AS text) IS NULL OR f.tenant_id = :tenant)
 GROUP BY GROUPING SETS ((f.tenant_id), ())
"""


def summary(tenant_id: str | None, period: TimeRange) -> FeedbackSummary:
    """The statistics of one tenant, or of every tenant (None) with a row per tenant."""
    with scope(tenant_id) as conn:
        frame = read_frame(conn, _STATS_SQL, {"tenant": tenant_id, **period.params})
    total = FeedbackStats.from_row(frame[frame["is_total"]].iloc[0].to_dict())
    tenants = frame[~frame["is_total"]].drop(columns="is_total").copy()
    tenants["name"] = tenants["name"].fillna(tenants["tenant_id"])
    tenants["average_rating"] = tenants["average_rating"].astype(float)
    tenants["positive_percentage"] = [
        positive_percentage(up, down)
        for up, down in zip(tenants["thumbs_up"], tenants["thumbs_down"], strict=True)
    ]
    return FeedbackSummary(total, tenants.sort_values("name").reset_index(drop=True))


_TREND_SQL = """
SELECT date_trunc(:bucket, created_at, 'UTC') AS bucket,
       count(*) FILTER (WHERE feedback_type = 'thumbs_up') AS thumbs_up,
       count(*) FILTER (WHERE feedback_type = 'thumbs_down') AS thumbs_down,
       count(*) FILTER (WHERE feedback_type = 'rating') AS rating,
       avg(rating_value) FILTER (WHERE feedback_type = 'rating'
                                   AND rating_value IS NOT NULL) AS average_rating
  FROM enhancement_feedback
 WHERE created_at >= :since AND created_at < :until
   AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
 GROUP BY 1 ORDER BY 1
"""

_DISTRIBUTION_SQL = """
SELECT rating_value, count(*) AS n
  FROM enhancement_feedback
 WHERE feedback_type = 'rating' AND rating_value IS NOT NULL
   AND created_at >= :since AND created_at < :until
   AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
 GROUP BY 1
"""


@dataclass(frozen=True)
class FeedbackTrend:
    over_time: pd.DataFrame  # bucket, thumbs_up, thumbs_down, rating, average_rating, positive %
    ratings: pd.DataFrame  # rating_value 1..5, n (zeros included)


def trend(tenant_id: str | None, period: TimeRange) -> FeedbackTrend:
    """Feedback per hour or day and the rating distribution, of a tenant or the fleet (None)."""
    params = {"tenant": tenant_id, **period.params}
    with scope(tenant_id) as conn:
        over_time = read_frame(conn, _TREND_SQL, {**params, "bucket": period.bucket})
        counts = read_frame(conn, _DISTRIBUTION_SQL, params).set_index("rating_value")["n"]
    over_time["average_rating"] = over_time["average_rating"].astype(float)
    over_time["positive_pct"] = positive_percentages(
        over_time["thumbs_up"], over_time["thumbs_down"]
    )
    ratings = pd.DataFrame({"rating_value": range(1, 6)})
    ratings["n"] = [int(counts.get(value, 0)) for value in ratings["rating_value"]]
    return FeedbackTrend(over_time, ratings)


# Tickets whose enhancement got the lowest average rating, with the run that was rated (that
# of the newest entry's enhancement_id, else the ticket's newest run before the feedback) and
# its signals. Comments and the ticket's text (ticket_history) only with the client's consent.
_WORST_SQL = f"""
WITH rated AS (
    SELECT tenant_id, ticket_id,
           avg(rating_value) FILTER (WHERE feedback_type = 'rating') AS average_rating,
           min(rating_value) FILTER (WHERE feedback_type = 'rating') AS lowest_rating,
           count(rating_value) FILTER (WHERE feedback_type = 'rating') AS ratings,
           count(*) FILTER (WHERE feedback_type = 'thumbs_down') AS thumbs_down,
           count(*) FILTER (WHERE feedback_type = 'thumbs_up') AS thumbs_up,
           max(created_at) AS last_feedback,
           (array_agg(enhancement_id ORDER BY created_at DESC)
                FILTER (WHERE enhancement_id IS NOT NULL))[1] AS enhancement_id,
           CASE WHEN :consented THEN
               string_agg(left(feedback_comment, 300), ' | ' ORDER BY created_at DESC)
           END AS comments
      FROM enhancement_feedback
     WHERE created_at >= :since AND created_at < :until
       AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
     GROUP BY tenant_id, ticket_id
    HAVING count(rating_value) FILTER (WHERE feedback_type = 'rating') > 0
     ORDER BY average_rating, ratings DESC, last_feedback DESC
     LIMIT :limit
)
SELECT r.tenant_id, coalesce(c.name, r.tenant_id) AS tenant_name, r.ticket_id,
       r.average_rating, r.lowest_rating, r.ratings, r.thumbs_down, r.thumbs_up,
       r.last_feedback, run.status AS run_status, run.cause, run.seconds AS processing_s,
       ARRAY({themes.run_signals("run")}) AS signals,
       CASE WHEN :consented THEN t.description END AS description,
       CASE WHEN :consented THEN t.resolution END AS resolution, r.comments
  FROM rated r
  LEFT JOIN tenant_configs c ON c.tenant_id = r.tenant_id
  {themes.run_of("r.tenant_id", "r.ticket_id", "r.enhancement_id", "r.last_feedback")}
  LEFT JOIN ticket_history t
         ON :consented AND t.tenant_id = r.tenant_id AND t.ticket_id = r.ticket_id
 ORDER BY r.average_rating, r.ratings DESC, r.last_feedback DESC
"""


def worst_rated(tenant_id: str | None, period: TimeRange, consented: bool = False) -> pd.DataFrame:
    """consented only for one tenant, after the client consented and the access was recorded
    as sensitive; across tenants (None) there is no single client to consent: never ticket
    text or comments."""
    params = {
        **themes.signal_params(),
        "tenant": tenant_id,
        **period.params,
        "consented": consented and tenant_id is not None,
        "limit": rules("feedback")["worst_rated_limit"],
    }
    with scope(tenant_id) as conn:
        frame = read_frame(conn, _WORST_SQL, params)
    frame["average_rating"] = frame["average_rating"].astype(float)
    frame["processing_s"] = frame["processing_s"].astype(float)
    frame["cause"] = [failure_label(c) if isinstance(c, str) else None for c in frame["cause"]]
    frame["signals"] = [
        [themes.signal_label(s) for s in keys if not s.startswith("failed:")]
        for keys in frame["signals"]
    ]
    return frame


def worst_table(worst: pd.DataFrame, consented: bool) -> pd.DataFrame:
    """worst_rated as shown: the rated run in words, signals joined; text only with consent."""
    table = pd.DataFrame(
        {
            "Tenant": worst["tenant_name"],
            "Ticket": worst["ticket_id"],
            "Avg rating": worst["average_rating"],
            "Lowest": worst["lowest_rating"],
            "Ratings": worst["ratings"],
            "👎": worst["thumbs_down"],
            "👍": worst["thumbs_up"],
            "Last feedback": worst["last_feedback"],
            "Run": [
                "not found" if pd.isna(status) else f"{status}: {cause}" if cause else status
                for status, cause in zip(worst["run_status"], worst["cause"], strict=True)
            ],
            "Processing": worst["processing_s"],
            "Signals": ["; ".join(signals) for signals in worst["signals"]],
        }
    )
    if consented:
        table["Description"] = worst["description"]
        table["Resolution"] = worst["resolution"]
        table["Comments"] = worst["comments"]
    return table


def tenants_table(tenants: pd.DataFrame) -> pd.DataFrame:
    """FeedbackSummary.by_tenant as shown: positive % only where there were votes."""
    votes = tenants["thumbs_up"] + tenants["thumbs_down"]
    return pd.DataFrame(
        {
            "Tenant": tenants["name"],
            "Tenant id": tenants["tenant_id"],
            "Avg rating": tenants["average_rating"],
            "Positive": [
                f"{p:.2f}%" if n else "– (no votes)"
                for p, n in zip(tenants["positive_percentage"], votes, strict=True)
            ],
            "👍": tenants["thumbs_up"],
            "👎": tenants["thumbs_down"],
            "Ratings": tenants["rating"],
            "Total": tenants["total_feedback"],
        }
    )
