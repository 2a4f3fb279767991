"""Recurring themes in negative versus positive feedback, counted in SQL.

Every feedback entry is negative (thumbs down, or a rating at or below negative_rating_max),
positive (thumbs up, or a rating at or above positive_rating_min) or neutral (left out). Its
terms are the ticket's tags and the words of the ticket's subject and of the feedback comment
(ticket_history joined on tenant_id + ticket_id), each counted once per entry.

For a term, lift = (share of negative entries mentioning it) / (share of positive entries
mentioning it), with one added to each count so that a term never seen on the other side
still gets a finite lift: 3.0 means negative feedback mentions it three times as often as
positive feedback. A negative theme needs at least theme_min_feedback negative entries and a
lift of at least theme_min_lift; positive themes the same the other way round. Counts are
always shown with the lift, so a theme resting on three entries looks like one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from services.config import rules
from services.db import admin_scope, read_frame, tenant_scope

NEGATIVE, POSITIVE = "negative", "positive"

# The one definition of a feedback entry's sentiment (NULL = neutral).
_SENTIMENT = """
CASE WHEN feedback_type = 'thumbs_down' OR rating_value <= :negative_max THEN 'negative'
     WHEN feedback_type = 'thumbs_up' OR rating_value >= :positive_min THEN 'positive'
END"""

_THEMES_SQL = f"""
WITH labelled AS (
    SELECT f.tenant_id, f.ticket_id, f.created_at, {_SENTIMENT} AS sentiment,
           f.feedback_comment, t.subject, t.tags
      FROM enhancement_feedback f
      LEFT JOIN ticket_history t ON t.tenant_id = f.tenant_id AND t.ticket_id = f.ticket_id
     WHERE f.created_at >= :since AND f.created_at <= :until
), terms AS (
    -- One row per feedback entry and term, with where the term was found.
    SELECT l.sentiment, l.tenant_id, l.ticket_id, l.created_at, l.feedback_comment, w.*
      FROM labelled l
     CROSS JOIN LATERAL (
           SELECT term, bool_or(source = 'tag') AS in_tags,
                  bool_or(source = 'subject') AS in_subjects,
                  bool_or(source = 'comment') AS in_comments
             FROM (SELECT lower(tag) AS term, 'tag' AS source FROM unnest(l.tags) AS tag
                   UNION ALL
                   SELECT word, 'subject'
                     FROM unnest(regexp_split_to_array(lower(l.subject), '[^a-z0-9]+')) AS word
                   UNION ALL
                   SELECT word, 'comment'
                     FROM unnest(regexp_split_to_array(lower(l.feedback_comment), '[^a-z0-9]+'))
                          AS word) found
            WHERE length(term) >= :min_length AND term !~ '^[0-9]+$'
              AND NOT (term = ANY(:stopwords))
            GROUP BY term) w
     WHERE l.sentiment IS NOT NULL
)
SELECT term,
       count(*) FILTER (WHERE sentiment = 'negative') AS negative,
       count(*) FILTER (WHERE sentiment = 'positive') AS positive,
       bool_or(in_tags) AS in_tags, bool_or(in_subjects) AS in_subjects,
       bool_or(in_comments) AS in_comments,
       -- The newest example tickets as [tenant_id, ticket_id] pairs (a 2-D array).
       (array_agg(ARRAY[tenant_id, ticket_id]::text[] ORDER BY created_at DESC)
            FILTER (WHERE sentiment = 'negative'))[1 : CAST(:examples AS int)]
           AS negative_examples,
       (array_agg(ARRAY[tenant_id, ticket_id]::text[] ORDER BY created_at DESC)
            FILTER (WHERE sentiment = 'positive'))[1 : CAST(:examples AS int)]
           AS positive_examples,
       CASE WHEN :with_comments THEN
           (array_agg(left(feedback_comment, 200) ORDER BY created_at DESC)
                FILTER (WHERE sentiment = 'negative' AND feedback_comment IS NOT NULL))[1 : 2]
       END AS negative_comments,
       CASE WHEN :with_comments THEN
           (array_agg(left(feedback_comment, 200) ORDER BY created_at DESC)
                FILTER (WHERE sentiment = 'positive' AND feedback_comment IS NOT NULL))[1 : 2]
       END AS positive_comments
  FROM terms
 GROUP BY term
HAVING count(*) FILTER (WHERE sentiment = 'negative') >= :min_feedback
    OR count(*) FILTER (WHERE sentiment = 'positive') >= :min_feedback
"""

_TOTALS_SQL = f"""
SELECT count(*) FILTER (WHERE {_SENTIMENT} = 'negative') AS negative_total,
       count(*) FILTER (WHERE {_SENTIMENT} = 'positive') AS positive_total
  FROM enhancement_feedback
 WHERE created_at >= :since AND created_at <= :until
"""


@dataclass(frozen=True)
class Themes:
    negative_total: int  # negative feedback entries in the range
    positive_total: int
    negative: pd.DataFrame  # the themes of negative feedback, most frequent first
    positive: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.negative.empty and self.positive.empty


def _params(since: datetime, until: datetime, with_comments: bool) -> dict[str, Any]:
    config = rules("feedback")
    return {
        "since": since,
        "until": until,
        "with_comments": with_comments,
        "negative_max": config["negative_rating_max"],
        "positive_min": config["positive_rating_min"],
        "min_length": config["theme_min_word_length"],
        "stopwords": list(config["theme_stopwords"]),
        "min_feedback": config["theme_min_feedback"],
        "examples": config["theme_examples"] * 3,  # several entries may share one ticket
    }


def _themes(conn: Connection, since: datetime, until: datetime, with_comments: bool) -> Themes:
    params = _params(since, until, with_comments)
    totals = read_frame(conn, _TOTALS_SQL, params).iloc[0]
    terms = read_frame(conn, _THEMES_SQL, params)
    return rank(terms, int(totals["negative_total"]), int(totals["positive_total"]))


def rank(terms: pd.DataFrame, negative_total: int, positive_total: int) -> Themes:
    """Lift and the two ranked lists from the per-term counts (pure, so tests can check it)."""
    config = rules("feedback")
    return Themes(
        negative_total,
        positive_total,
        _side(terms, NEGATIVE, POSITIVE, negative_total, positive_total, config),
        _side(terms, POSITIVE, NEGATIVE, positive_total, negative_total, config),
    )


def lift(count: int, total: int, other_count: int, other_total: int) -> float:
    """(share of this side mentioning it) / (share of the other side), counts + 1 each."""
    return ((count + 1) / (total + 1)) / ((other_count + 1) / (other_total + 1))


THEME_COLUMNS = [
    "term",
    "feedback",
    "share",
    "other_share",
    "lift",
    "found_in",
    "examples",
    "comments",
]


def _side(
    terms: pd.DataFrame, side: str, other: str, total: int, other_total: int, config: dict[str, Any]
) -> pd.DataFrame:
    if terms.empty or total == 0:
        return pd.DataFrame(columns=THEME_COLUMNS)
    frame = terms.copy()
    frame["feedback"] = frame[side]
    frame["share"] = frame[side] / total
    frame["other_share"] = frame[other] / other_total if other_total else 0.0
    frame["lift"] = [
        lift(n, total, m, other_total) for n, m in zip(frame[side], frame[other], strict=True)
    ]
    frame["found_in"] = [
        ", ".join(name for name, found in (("tags", t), ("subjects", s), ("comments", c)) if found)
        for t, s, c in zip(
            frame["in_tags"], frame["in_subjects"], frame["in_comments"], strict=True
        )
    ]
    frame["examples"] = [
        _examples(pairs, config["theme_examples"]) for pairs in frame[f"{side}_examples"]
    ]
    frame["comments"] = [
        list(dict.fromkeys(v for v in values if v)) if isinstance(values, list) else []
        for values in frame[f"{side}_comments"]
    ]
    chosen = frame[
        (frame[side] >= config["theme_min_feedback"]) & (frame["lift"] >= config["theme_min_lift"])
    ]
    chosen = chosen.sort_values(["feedback", "lift", "term"], ascending=[False, False, True])
    return chosen.head(config["themes_shown"])[THEME_COLUMNS].reset_index(drop=True)


def _examples(pairs: Any, limit: int) -> list[tuple[str, str]]:
    """Distinct (tenant_id, ticket_id) pairs, newest first."""
    if not isinstance(pairs, list):
        return []
    return list(dict.fromkeys((tenant, ticket) for tenant, ticket in pairs))[:limit]


def tenant_themes(
    tenant_id: str, since: datetime, until: datetime, with_comments: bool = False
) -> Themes:
    """with_comments only after the client consented and the access was recorded as sensitive."""
    with tenant_scope(tenant_id) as conn:
        return _themes(conn, since, until, with_comments)


def fleet_themes(since: datetime, until: datetime) -> Themes:
    """Across tenants: themes and counts only, never comments."""
    with admin_scope() as conn:
        return _themes(conn, since, until, with_comments=False)
