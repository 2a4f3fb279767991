"""What negative feedback has in common that positive feedback has not, counted in SQL.

Every feedback entry is negative (thumbs down, or a rating at or below negative_rating_max),
positive (thumbs up, or a rating at or above positive_rating_min) or neutral (left out). Each
entry is joined to the run it rates (enhancement_id when set, else the ticket's newest run
started before the feedback) and gets that run's signals, which every run has and none of
which is sensitive: its failure cause, the context sources that came back empty, its context
errors (by node), its processing time band, the hour it started, and how deep the tenant's
ticket_history is. Only for one tenant, and only with the client's consent, the words of the
ticket's description and resolution (ticket_history, joined on tenant and ticket id) and of the
feedback comment are signals too.

For a signal, lift = (share of negative entries with it) / (share of positive entries with it),
with one added to each count so that a signal never seen on the other side still gets a finite
lift: 3.0 means negative feedback has it three times as often as positive feedback. A negative
theme needs at least theme_min_feedback negative entries and a lift of at least
theme_min_lift; positive themes the same the other way round. Counts are always shown with the
lift, so a theme resting on three entries looks like one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from services.config import rules
from services.db import read_frame, scope
from services.failures import MODES_BY_KEY, sql_case
from services.timerange import TimeRange

NEGATIVE, POSITIVE = "negative", "positive"

# The one definition of a feedback entry's sentiment (NULL = neutral).
_SENTIMENT = """
CASE WHEN feedback_type = 'thumbs_down' OR rating_value <= :negative_max THEN 'negative'
     WHEN feedback_type = 'thumbs_up' OR rating_value >= :positive_min THEN 'positive'
END"""

# context_gathered as an object: it may be stored as a JSON string holding one; JSON null
# (and anything else) is "not recorded".
_CONTEXT = """CASE json_typeof(e.context_gathered)
                WHEN 'object' THEN e.context_gathered
                WHEN 'string' THEN (e.context_gathered #>> '{}')::json END"""


def run_of(tenant: str, ticket: str, enhancement: str, at: str) -> str:
    """LEFT JOIN LATERAL `run`: the run a feedback entry rates, by its enhancement_id when set,
    else the ticket's newest run started at or before `at` (else its newest at all)."""
    columns = f"""e.id AS run_id, e.status, e.created_at AS run_at, {_CONTEXT} AS context,
               coalesce(e.processing_time_ms / 1000.0,
                        extract(epoch FROM e.completed_at - e.created_at)) AS seconds,
               CASE WHEN e.status = 'failed'
                    THEN {sql_case("e.error_message", "e.context_gathered")} END AS cause"""
    return f"""LEFT JOIN LATERAL (
    SELECT * FROM (
        SELECT {columns} FROM enhancement_history e
         WHERE e.id = {enhancement} AND e.tenant_id = {tenant}
        UNION ALL
        (SELECT {columns} FROM enhancement_history e
          WHERE {enhancement} IS NULL AND e.tenant_id = {tenant} AND e.ticket_id = {ticket}
          ORDER BY e.created_at <= {at} DESC, e.created_at DESC
          LIMIT 1)) found
    LIMIT 1) run ON true"""


def run_signals(a: str) -> str:
    """Rows (signal) of one run's signals, from the columns run_of gives, under alias `a`."""
    return f"""
    SELECT 'failed:' || {a}.cause WHERE {a}.cause IS NOT NULL
    UNION ALL SELECT 'no_run' WHERE {a}.run_id IS NULL
    UNION ALL SELECT 'empty:' || source
      FROM unnest(ARRAY['similar_tickets', 'kb_articles', 'ip_info']) AS source
     WHERE CASE WHEN json_typeof({a}.context -> source) = 'array'
                THEN json_array_length({a}.context -> source) = 0 ELSE false END
    UNION ALL SELECT DISTINCT
           'node:' || left(coalesce(err ->> 'node_name', err ->> 'node', '?'), 60)
      FROM json_array_elements(CASE WHEN json_typeof({a}.context -> 'errors') = 'array'
                                    THEN {a}.context -> 'errors' END) AS err
    UNION ALL SELECT 'time:' || CASE WHEN {a}.seconds < :fast_s THEN 'fast'
                                     WHEN {a}.seconds <= :slow_s THEN 'usual' ELSE 'slow' END
     WHERE {a}.seconds IS NOT NULL
    UNION ALL SELECT 'hour:' || (extract(hour FROM {a}.run_at AT TIME ZONE 'UTC')::int / 6)
     WHERE {a}.run_at IS NOT NULL"""


def signal_params() -> dict[str, Any]:
    h = rules("health")
    return {"fast_s": h["p50_target_s"], "slow_s": h["p95_target_s"]}


_THEMES_SQL = f"""
WITH entries AS (
    SELECT f.id, f.tenant_id, f.ticket_id, f.created_at, f.feedback_comment,
           {_SENTIMENT} AS sentiment, run.*
      FROM enhancement_feedback f
      {run_of("f.tenant_id", "f.ticket_id", "f.enhancement_id", "f.created_at")}
     WHERE f.created_at >= :since AND f.created_at < :until
       AND (CAST(:tenant AS text) IS NULL OR f.tenant_id = :tenant)
), history AS (
    SELECT tenant_id, count(*) AS tickets
      FROM ticket_history
     WHERE (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
       AND tenant_id IN (SELECT tenant_id FROM entries)
     GROUP BY tenant_id
), signals AS (
    -- One row per feedback entry and signal; words say where they were found.
    SELECT l.sentiment, l.tenant_id, l.ticket_id, l.created_at, l.feedback_comment, s.*
      FROM entries l
      LEFT JOIN history h ON h.tenant_id = l.tenant_id
     CROSS JOIN LATERAL (
           SELECT signal, false AS in_description, false AS in_resolution, false AS in_comment
             FROM ({run_signals("l")}
                   UNION ALL
                   SELECT 'history:' || CASE WHEN coalesce(h.tickets, 0) < :history_min THEN 'low'
                                             WHEN h.tickets < :history_healthy THEN 'thin'
                                             ELSE 'deep' END) run_signal(signal)
           UNION ALL
           SELECT 'word:' || word, bool_or(source = 'description'), bool_or(source = 'resolution'),
                  bool_or(source = 'comment')
             FROM (SELECT word, v.source
                     FROM ticket_history t
                    CROSS JOIN LATERAL (VALUES ('description', t.description),
                                               ('resolution', t.resolution)) v(source, body)
                    CROSS JOIN LATERAL
                          unnest(regexp_split_to_array(lower(v.body), '[^a-z0-9]+')) word
                    WHERE :consented AND t.tenant_id = l.tenant_id AND t.ticket_id = l.ticket_id
                   UNION ALL
                   SELECT word, 'comment'
                     FROM unnest(regexp_split_to_array(lower(l.feedback_comment), '[^a-z0-9]+'))
                          AS word
                    WHERE :consented) found
            WHERE length(word) >= :min_length AND word !~ '^[0-9]+$'
              AND NOT (word = ANY(:stopwords))
            GROUP BY word) s
     WHERE l.sentiment IS NOT NULL
)
SELECT signal,
       count(*) FILTER (WHERE sentiment = 'negative') AS negative,
       count(*) FILTER (WHERE sentiment = 'positive') AS positive,
       bool_or(in_description) AS in_description, bool_or(in_resolution) AS in_resolution,
       bool_or(in_comment) AS in_comment,
       -- The newest example tickets as [tenant_id, ticket_id] pairs (a 2-D array).
       (array_agg(ARRAY[tenant_id, ticket_id]::text[] ORDER BY created_at DESC)
            FILTER (WHERE sentiment = 'negative'))[1 : CAST(:examples AS int)]
           AS negative_examples,
       (array_agg(ARRAY[tenant_id, ticket_id]::text[] ORDER BY created_at DESC)
            FILTER (WHERE sentiment = 'positive'))[1 : CAST(:examples AS int)]
           AS positive_examples,
       CASE WHEN :consented THEN
           (array_agg(left(feedback_comment, 200) ORDER BY created_at DESC)
                FILTER (WHERE sentiment = 'negative' AND feedback_comment IS NOT NULL))[1 : 2]
       END AS negative_comments,
       CASE WHEN :consented THEN
           (array_agg(left(feedback_comment, 200) ORDER BY created_at DESC)
                FILTER (WHERE sentiment = 'positive' AND feedback_comment IS NOT NULL))[1 : 2]
       END AS positive_comments
  FROM signals
 GROUP BY signal
HAVING count(*) FILTER (WHERE sentiment = 'negative') >= :min_feedback
    OR count(*) FILTER (WHERE sentiment = 'positive') >= :min_feedback
"""

_TOTALS_SQL = f"""
SELECT count(*) FILTER (WHERE {_SENTIMENT} = 'negative') AS negative_total,
       count(*) FILTER (WHERE {_SENTIMENT} = 'positive') AS positive_total
  FROM enhancement_feedback
 WHERE created_at >= :since AND created_at < :until
   AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
"""

_HOURS = ("night", "morning", "afternoon", "evening")


def signal_label(key: str) -> str:
    """What a signal key means, in the words of the review."""
    kind, _, value = key.partition(":")
    h = rules("health")
    if kind == "failed":
        mode = MODES_BY_KEY.get(value)
        return f"failed: {mode.label if mode else value}"
    if kind == "word":
        return f"mentions “{value}”"
    if kind == "hour":
        start = int(value) * 6
        return f"{_HOURS[int(value)]} tickets ({start}-{start + 6}h UTC)"
    if kind == "node":
        return f"context error in node “{value}”"
    fixed = {
        "no_run": "no run recorded for the ticket",
        "empty:similar_tickets": "no similar tickets found",
        "empty:kb_articles": "no KB articles found",
        "empty:ip_info": "no IP match",
        "time:fast": f"processing under {h['p50_target_s']} s",
        "time:usual": f"processing {h['p50_target_s']}-{h['p95_target_s']} s",
        "time:slow": f"processing over {h['p95_target_s']} s",
        "history:low": f"tenant history under {h['ticket_history_min']} tickets",
        "history:thin": (
            f"tenant history {h['ticket_history_min']}-{h['ticket_history_healthy'] - 1} tickets"
        ),
        "history:deep": f"tenant history {h['ticket_history_healthy']}+ tickets",
    }
    return fixed.get(key, key)


_SOURCES = {
    "failed": "run status and error",
    "no_run": "enhancement_history",
    "empty": "context sources",
    "node": "context errors",
    "time": "processing time",
    "hour": "hour of day (run start)",
    "history": "ticket_history depth",
}


@dataclass(frozen=True)
class Themes:
    negative_total: int  # negative feedback entries in the range
    positive_total: int
    negative: pd.DataFrame  # the themes of negative feedback, most frequent first
    positive: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.negative.empty and self.positive.empty


def _params(tenant_id: str | None, period: TimeRange, consented: bool) -> dict[str, Any]:
    config, h = rules("feedback"), rules("health")
    return {
        **signal_params(),
        "tenant": tenant_id,
        **period.params,
        "consented": consented,
        "negative_max": config["negative_rating_max"],
        "positive_min": config["positive_rating_min"],
        "min_length": config["theme_min_word_length"],
        "stopwords": list(config["theme_stopwords"]),
        "min_feedback": config["theme_min_feedback"],
        "examples": config["theme_examples"] * 3,  # several entries may share one ticket
        "history_min": h["ticket_history_min"],
        "history_healthy": h["ticket_history_healthy"],
    }


def themes(tenant_id: str | None, period: TimeRange, consented: bool = False) -> Themes:
    """The themes of one tenant, or of every tenant (None). consented only for one tenant,
    after the client consented to showing ticket text and comments and the access was recorded
    as sensitive: their words become signals, comments are returned. Across tenants: run
    signals and counts only, never ticket text or comments."""
    params = _params(tenant_id, period, consented and tenant_id is not None)
    with scope(tenant_id) as conn:
        totals = read_frame(conn, _TOTALS_SQL, params).iloc[0]
        signals = read_frame(conn, _THEMES_SQL, params)
    return rank(signals, int(totals["negative_total"]), int(totals["positive_total"]))


def rank(signals: pd.DataFrame, negative_total: int, positive_total: int) -> Themes:
    """Lift and the two ranked lists from the per-signal counts (pure, so tests can check it)."""
    config = rules("feedback")
    return Themes(
        negative_total,
        positive_total,
        _side(signals, NEGATIVE, POSITIVE, negative_total, positive_total, config),
        _side(signals, POSITIVE, NEGATIVE, positive_total, negative_total, config),
    )


def lift(count: int, total: int, other_count: int, other_total: int) -> float:
    """(share of this side with it) / (share of the other side), counts + 1 each."""
    return ((count + 1) / (total + 1)) / ((other_count + 1) / (other_total + 1))


THEME_COLUMNS = [
    "signal",
    "label",
    "feedback",
    "share",
    "other_share",
    "lift",
    "found_in",
    "examples",
    "comments",
]


def _found_in(signal: str, in_description: bool, in_resolution: bool, in_comment: bool) -> str:
    if signal.startswith("word:"):
        places = (
            ("ticket description", in_description),
            ("ticket resolution", in_resolution),
            ("feedback comment", in_comment),
        )
        return ", ".join(name for name, found in places if found)
    return _SOURCES.get(signal.split(":", 1)[0], "")


def _side(
    signals: pd.DataFrame,
    side: str,
    other: str,
    total: int,
    other_total: int,
    config: dict[str, Any],
) -> pd.DataFrame:
    if signals.empty or total == 0:
        return pd.DataFrame(columns=THEME_COLUMNS)
    frame = signals.copy()
    frame["label"] = [signal_label(s) for s in frame["signal"]]
    frame["feedback"] = frame[side]
    frame["share"] = frame[side] / total
    frame["other_share"] = frame[other] / other_total if other_total else 0.0
    frame["lift"] = [
        lift(n, total, m, other_total) for n, m in zip(frame[side], frame[other], strict=True)
    ]
    frame["found_in"] = [
        _found_in(s, bool(d), bool(r), bool(c))
        for s, d, r, c in zip(
            frame["signal"],
            frame["in_description"],
            frame["in_resolution"],
            frame["in_comment"],
            strict=True,
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
    order = (["feedback", "lift", "signal"], [False, False, True])
    chosen = chosen.sort_values(order[0], ascending=order[1])
    # Consented words never take more than half the rows: the run signals stay in view.
    shown = config["themes_shown"]
    is_word = chosen["signal"].str.startswith("word:")
    words = chosen[is_word].head(shown // 2)
    chosen = pd.concat([chosen[~is_word].head(shown - len(words)), words])
    return chosen.sort_values(order[0], ascending=order[1])[THEME_COLUMNS].reset_index(drop=True)


def _examples(pairs: Any, limit: int) -> list[tuple[str, str]]:
    """Distinct (tenant_id, ticket_id) pairs, newest first."""
    if not isinstance(pairs, list):
        return []
    return list(dict.fromkeys((tenant, ticket) for tenant, ticket in pairs))[:limit]


def theme_table(frame: pd.DataFrame, side: str, fleet: bool, consented: bool) -> pd.DataFrame:
    """One side's themes as shown: shares in %, example tickets (with their tenant across the
    fleet), example comments only with consent."""
    other = POSITIVE if side == NEGATIVE else NEGATIVE
    table = pd.DataFrame(
        {
            "Signal": frame["label"],
            "Entries": frame["feedback"],
            f"% of {side}": frame["share"] * 100,
            f"% of {other}": frame["other_share"] * 100,
            "Lift": frame["lift"],
            "From": frame["found_in"],
            "Example tickets": [
                ", ".join(f"{t} #{k}" if fleet else f"#{k}" for t, k in pairs)
                for pairs in frame["examples"]
            ],
        }
    )
    if consented:
        table["Example comments"] = [" | ".join(c) for c in frame["comments"]]
    return table


def negative_examples(found: Themes, limit: int = 10) -> list[tuple[str, str]]:
    """(tenant_id, ticket_id) of the negative themes' examples, each once, in theme order."""
    pairs = (pair for examples in found.negative["examples"] for pair in examples)
    return list(dict.fromkeys(pairs))[:limit]


def method_text(found: Themes, consented: bool) -> str:
    """What the themes were found from, in words, with the thresholds of [feedback]."""
    config = rules("feedback")
    words = (
        " and, with the client's consent, the words of ticket descriptions, resolutions and "
        "comments"
        if consented
        else ""
    )
    return (
        "Signals of the rated runs (failure cause, context sources that came back empty, "
        "context errors, processing time, hour of day, the tenant's ticket_history depth)"
        f"{words}, over {found.negative_total:,} negative (👎 or ≤ "
        f"{config['negative_rating_max']} ★) and {found.positive_total:,} positive "
        f"(👍 or ≥ {config['positive_rating_min']} ★) entries. Lift 3× = three times "
        "as common on that side as on the other. Counts are shown so that small themes look "
        "small."
    )


def no_theme_text(side: str) -> str:
    """Why one side has no theme, with the thresholds of [feedback]."""
    config = rules("feedback")
    return (
        f"No recurring theme in {side} feedback (a theme needs at least "
        f"{config['theme_min_feedback']} entries and a lift of {config['theme_min_lift']}×)."
    )
