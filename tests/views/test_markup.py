"""Input is data, never markup: whatever a user types, a URL carries or the platform stores (a
client names its own tenant) is shown as the text it is, on every page that shows it.

AppTest gives the Markdown each element sends to the browser; the browser renders it with
CommonMark, where a backslash-escaped ASCII punctuation character is literal. So a value is
shown as text exactly when its Markdown is md()'s escaping of it: no unescaped `](`, `<`, `` ` ``
or `$` is left to make a link, an image, HTML, code or math. (The real browser's rendering of
such a value: tests/browser/test_faults.py::test_markup_in_the_url_is_shown_as_text.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from services.weekly_review import Week
from tests.conftest import app_test
from tests.planting import add_feedback, add_runs, add_tenant
from ui.common import md

LINK = "[click](http://evil.example/x)"
IMAGE = "![img](http://evil.example/a.png)"
HOSTILE = f"{LINK} {IMAGE} <b>bold</b> <img src=x onerror=alert(1)> `code` $x^2$ :red[red]"
PUNCTUATION = r"[!-/:-@\[-`{-~]"
# The start of any of HOSTILE's constructs, not escaped (escaped, the URL reads evil\.example).
UNESCAPED = re.compile(r"evil\.example|(?<!\\)(?:<b>|<img|`code|\$x|\]\(http|:red\[red)")


def literal(markdown: str) -> str:
    """The text CommonMark shows for Markdown made only of escapes and plain characters."""
    return re.sub(rf"\\({PUNCTUATION})", r"\1", markdown).replace("\u2060", "")


@pytest.mark.unit
@pytest.mark.parametrize(
    "value",
    [
        LINK,
        IMAGE,
        "<b>bold</b> <script>alert(1)</script> <img src=x onerror=alert(1)>",
        "`code` ```fence``` ~~struck~~ **strong** _em_ *em*",
        "$x^2$ and $$\\int f$$",
        "# Heading",
        "Setext\n===",
        "- a list\n1. item\n> quote\n\n    indented code",
        ":red[red] :material/lock: :smile: | a | table |",
        "[ref]: http://evil.example/ref &lt;b&gt; &#91;x&#93;(y)",
        "back\\slash \\[still text\\]",
        "Acme Corp MSP",
    ],
)
def test_md_leaves_only_escaped_punctuation_and_plain_text(value):
    shown = md(value)
    # Every ASCII punctuation character is escaped, and no line break starts a new block.
    assert re.fullmatch(rf"(?:\\{PUNCTUATION}|[^\x00-\x1f\x7f!-/:-@\[-`{{-~])*", shown), shown
    # ...and it still reads as what was typed (a line break becomes a space).
    assert literal(shown) == re.sub(r"[\x00-\x1f]", " ", value)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "broken"),
    [
        ("http://evil.example/x", "http\u2060\\:"),
        ("see www.evil.example", "www\u2060\\."),
        ("mail a@evil.example", "a\u2060\\@"),
    ],
)
def test_md_breaks_bare_links(value, broken):
    """GFM links bare URLs and addresses even in escaped text: an invisible word joiner breaks
    each one, and the text still reads the same."""
    assert broken in md(value)
    assert literal(md(value)) == value


# --- on the pages ---------------------------------------------------------------------------

# Element types whose text the browser renders as Markdown (the labels and help of every
# element are Markdown too).
MARKDOWN_TYPES = {"markdown", "caption", "title", "header", "subheader"}
ALERT_TYPES = {"error", "warning", "info", "success", "toast"}


def rendered_markdown(at: AppTest) -> list[str]:
    """Every piece of Markdown the page sends to the browser (main area and sidebar)."""
    found = []
    for node in at._tree:
        if node.type in MARKDOWN_TYPES:
            found.append(node.value)
        elif node.type in ALERT_TYPES:
            found.append(node.body)
        for attribute in ("label", "help"):
            value = getattr(node, attribute, None)
            if isinstance(value, str):
                found.append(value)
    return found


def assert_only_text(at: AppTest, *values: str) -> None:
    """No hostile piece reaches the browser unescaped; each value that is shown, as text."""
    assert not at.exception, at.exception
    pieces = rendered_markdown(at)
    for piece in pieces:
        assert not UNESCAPED.search(piece), piece
    for value in values:
        assert any(md(value) in piece for piece in pieces), f"{value!r} is not shown as text"


pytestmark = pytest.mark.usefixtures("fresh_caches")


@pytest.fixture
def hostile_tenant(use_db, redis_url, tenant_id) -> str:
    """A tenant whose name is markup, failing most of its runs this week (so it escalates on the
    weekly review) and with feedback, a hostile preference and Jira key."""
    now = datetime.now(UTC)
    with use_db.superuser() as conn:
        add_tenant(conn, tenant_id, HOSTILE, preferences={HOSTILE: HOSTILE})
        conn.execute(
            "UPDATE tenant_configs SET jira_project_key = %s WHERE tenant_id = %s",
            (LINK, tenant_id),
        )
        add_runs(conn, tenant_id, 40, "failed", now - timedelta(minutes=50))
        add_runs(conn, tenant_id, 2, "completed", now - timedelta(minutes=40))
        add_feedback(conn, tenant_id, "1", "thumbs_down", now - timedelta(minutes=30))
    return tenant_id


def open_app(purpose: str = "SUP-1 markup drill", **query: str) -> AppTest:
    """The app as an admin with a purpose, on its landing view."""
    at = app_test(role="admin")
    for key, value in query.items():
        at.query_params[key] = value
    at.session_state["purpose"] = purpose
    return at.run()


def switch(at: AppTest, view: str, **query: str) -> AppTest:
    """On to another view in the same session (a page switch clears the URL's parameters)."""
    at.switch_page(f"views/{view}.py")
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def test_a_tenant_named_in_markup_is_shown_as_text_on_every_page(hostile_tenant):
    week = Week.of(datetime.now(UTC)).label  # the week of the planted runs
    at = open_app(tenant=hostile_tenant)
    assert_only_text(at, HOSTILE)  # Tenant health
    for view, query in (
        ("tenant_profile", {}),
        ("investigation", {"ticket": "1"}),
        ("feedback", {}),
        ("weekly_review", {"week": week}),
    ):
        switch(at, view, tenant=hostile_tenant, **query)
        assert_only_text(at, HOSTILE)
        assert not at.error, (view, [e.body for e in at.error])
    switch(at, "weekly_review", week=week)  # the fleet: the tenant escalates, by name
    assert_only_text(at, HOSTILE)
    assert any("Critical" in piece and md(HOSTILE) in piece for piece in rendered_markdown(at))
    screen = open_app(view="client", tenant=hostile_tenant)
    assert_only_text(screen, HOSTILE)


def test_a_purpose_in_markup_is_recorded_as_typed_and_shown_as_text(hostile_tenant, use_db):
    purpose = f"SUP-9 {HOSTILE}"
    at = switch(open_app(purpose, tenant=hostile_tenant), "investigation", tenant=hostile_tenant)
    assert_only_text(at, purpose[:120])
    # The search text is a filter, never shown as markup either.
    at.text_input(key="search_error").input(HOSTILE).run()
    assert_only_text(at, purpose[:120])
    assert any("No attempts match" in i.body for i in at.info)
    with use_db.superuser() as conn:
        recorded = conn.execute(
            "SELECT DISTINCT purpose, query_params->>'error_text' FROM dashboard.data_access_log"
            " WHERE tenant_id = %s AND query_kind = 'ticket_search'",
            (hostile_tenant,),
        ).fetchall()
    assert sorted(recorded) == [(purpose, ""), (purpose, HOSTILE)]  # as typed


# Every URL parameter a page reads, each set to markup at once.
URL_PARAMETERS = ("tenant", "ticket", "week", "log_actor", "log_text", "log_kind", "arrivals",
                  "section", "range", "dbh_own")  # fmt: skip


def test_markup_in_the_url_parameters_is_never_markup(use_db, redis_url):
    hostile = dict.fromkeys(URL_PARAMETERS, HOSTILE)
    at = open_app(**hostile)
    assert_only_text(at)
    for view in ("investigation", "weekly_review", "access_log", "queues", "slow_queries"):
        assert_only_text(switch(at, view, **hostile))
