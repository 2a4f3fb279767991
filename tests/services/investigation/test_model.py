"""What an investigation is made of: ticket ids, case references, context counts, the formats."""

from __future__ import annotations

import json

import pytest

from services.errors import InvalidInput
from services.investigation.model import case_reference, parse_context, validate_ticket_id
from tests.investigation_data import CONTEXT

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12345", "12345"), ("  12345 \t", "12345"), ("#67890", "67890"), ("OPS-42", "OPS-42")],
)
def test_ticket_ids_are_cleaned(raw, expected):
    assert validate_ticket_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter a ticket id"),
        ("   ", "Enter a ticket id"),
        (None, "Enter a ticket id"),
        ("9" * 10_000, "10,000 characters"),
        ("1" * 101, "at most 100"),
        ("１２３４５", "not a ticket id"),
        ("tïcket-ü", "not a ticket id"),
        ("12345' OR '1'='1", "not a ticket id"),
        ("1; DROP TABLE enhancement_history; --", "not a ticket id"),
        ("12345\x00", "not a ticket id"),
        ("<script>alert(1)</script>", "not a ticket id"),
    ],
)
def test_hostile_ticket_ids_get_a_clear_message(raw, message):
    with pytest.raises(InvalidInput) as caught:
        validate_ticket_id(raw)
    assert message in str(caught.value)
    if raw and raw.strip():
        assert raw.strip() not in str(caught.value)  # never echoed back


def test_case_reference_is_required_in_the_purpose():
    assert case_reference("SUP-567 ticket 12345 not enhanced") == "SUP-567"
    assert case_reference("per sup-89") == "SUP-89"
    assert case_reference("routine monitoring") is None
    assert case_reference("weekly review") is None
    assert case_reference("") is None


def test_context_counts_from_both_shapes():
    as_object = parse_context(json.dumps(CONTEXT))
    as_string = parse_context(json.dumps(json.dumps(CONTEXT)))
    assert as_object == as_string
    assert (as_object.similar_tickets, as_object.kb_articles, as_object.ip_matches) == (3, 1, 2)
    assert as_object.node_errors == (("kb_search", "KB API returned 503"),)
    assert as_object.execution_ms == 2400
    assert as_object.summary == "3 similar tickets, 1 KB article, 2 IP matches, 1 node error"
    assert parse_context(None) is None
    broken = parse_context('"not json at all')
    assert broken is not None and not broken.readable
    assert not parse_context("[1, 2]").readable
    odd = parse_context('{"similar_tickets": "x", "errors": 5, "workflow_execution_time_ms": NaN}')
    assert odd.readable and odd.summary == (
        "0 similar tickets, 0 KB articles, 0 IP matches, 0 node errors"
    )
    assert odd.execution_ms is None
