"""What the console and the web app say and how they draw it: whole ids in the DLQ table with a link to the
trace, red only for failures there are, Redrive primary only with something to redrive, counts that match
the rows, code in the Events page as code, the latest events newest first."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, Route, expect

from tests.browser.test_app import post_items, unique
from tests.browser.test_console import open_console
from tests.support.stack import Stack

pytestmark = pytest.mark.browser


def _subscribed(stack: Stack, bodies: list[dict[str, Any]]) -> tuple[str, str]:
    """A consumer without a handler whose DLQ holds these bodies; (name, DLQ URL)."""
    name = "text-" + uuid.uuid4().hex[:6]
    stack.cli("subscribe", name, "--filter-policy", json.dumps({"subject": ["nobody-at-all"]}))
    dlq = json.loads(stack.cli("status", "--json").stdout)["consumers"][name]["dlq_url"]
    for body in bodies:
        stack.boto("sqs").send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    return name, dlq


def _color(page: Page, selector: str) -> str:
    return str(page.locator(selector).evaluate("(e) => getComputedStyle(e).color"))


def _show_dlq(page: Page, name: str) -> None:
    expect(page.locator(f'#dlq-consumer option[value="{name}"]')).to_be_attached(timeout=5000)
    page.locator("#dlq-consumer").select_option(name)
    page.get_by_role("button", name="Show messages").click()


def test_the_dlq_table_shows_whole_ids_and_links_each_event_to_its_trace(
    open_app: Callable[..., Any], stack: Stack
) -> None:
    r = requests.post(
        f"{stack.api_url}/data", json={"informationOne": "a", "informationTwo": "b"}, headers=stack.auth("dlq-link")
    )
    event_id = r.json()["id"]
    name, _ = _subscribed(stack, [{"id": event_id, "type": "fanout.data.generated.v1"}])
    app = open_console(open_app)
    page = app.page
    _show_dlq(page, name)
    expect(page.locator("#dlq-status")).to_have_text(f"1 message in {name}'s DLQ")
    row = page.locator("#dlq-body tr").first
    for cell in row.locator("td.cell-text").all():
        cut = cell.evaluate("(e) => e.scrollWidth > e.clientWidth")
        assert not cut, f"cut: {cell.inner_text()!r}"
    expect(row).to_contain_text("fanout.data.generated.v1")
    row.get_by_role("button", name=f"Trace {event_id}").click()
    expect(page.locator("#trace .trace-id")).to_have_text(event_id)
    stack.cli("dlq", "purge", name)
    stack.cli("unsubscribe", name, check=False)


def test_zeros_are_not_red_and_redrive_is_primary_only_with_messages(
    open_app: Callable[..., Any], stack: Stack
) -> None:
    name, _ = _subscribed(stack, [{"id": "dead-1", "type": "x"}])
    empty, _ = _subscribed(stack, [])
    app = open_console(open_app)
    page = app.page
    lane, quiet = f'.lane[data-consumer="{name}"]', f'.lane[data-consumer="{empty}"]'
    expect(page.locator(f'{lane} [data-figure="dlq"]')).to_have_text("1", timeout=10_000)
    expect(page.locator(f'{quiet} [data-figure="dlq"]')).to_have_text("0", timeout=10_000)
    plain = _color(page, f'{quiet} [data-figure="processed"]')
    assert _color(page, f'{quiet} [data-figure="dlq"]') == plain
    assert _color(page, f'{quiet} [data-figure="failed"]') == plain
    assert _color(page, f'{lane} [data-figure="dlq"]') != plain  # one in the DLQ: drawn as a danger
    redrive = page.get_by_role("button", name="Redrive to the queue")
    _show_dlq(page, empty)
    expect(page.locator("#dlq-status")).to_have_text(f"0 messages in {empty}'s DLQ")
    expect(redrive).not_to_have_class("btn btn-small btn-primary")
    _show_dlq(page, name)
    expect(page.locator("#dlq-status")).to_have_text(f"1 message in {name}'s DLQ")
    expect(redrive).to_have_class("btn btn-small btn-primary")
    redrive.click()
    expect(page.locator("#dlq-status")).to_have_text(f"1 message moved back to {name}'s queue")
    expect(redrive).not_to_have_class("btn btn-small btn-primary")
    for consumer in (name, empty):
        stack.cli("unsubscribe", consumer, "--force", check=False)
        stack.cli("unsubscribe", consumer, check=False)


def test_the_latest_events_are_newest_first(open_app: Callable[..., Any]) -> None:
    """The ledger lists events in the order it saw them; concurrent publishers interleave that order."""
    seen_order = [
        {"id": "01KA0000000000000000000002", "published": "2026-12-01T10:00:02.000Z"},
        {"id": "01KA0000000000000000000003", "published": "2026-12-01T10:00:03.000Z"},
        {"id": "01KA0000000000000000000001", "published": "2026-12-01T10:00:01.000Z"},
    ]
    events = [{**e, "type": "fanout.data.generated.v1", "subject": "order", "states": {}} for e in seen_order]

    def answer(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps({"events": events}))

    app = open_app()
    app.page.route("**/_local/events?*", answer)
    app.goto("/console")
    rows = app.page.locator("#stream-body tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-event") for i in range(3)] == [
        "01KA0000000000000000000003",
        "01KA0000000000000000000002",
        "01KA0000000000000000000001",
    ]


def test_the_events_page_shows_code_as_code(open_app: Callable[..., Any]) -> None:
    app = open_app()
    app.goto("/console/events.html")
    page = app.page
    expect(page.locator('.ev-type[data-type="fanout.data.generated.v1"]')).to_be_visible()
    assert "`" not in page.locator("#ev-list").inner_text()
    expect(page.locator("#ev-list code", has_text="fanout generate").first).to_be_visible()


def test_the_item_count_counts_the_pending_rows_too(open_app: Callable[..., Any], stack: Stack) -> None:
    user = unique("counting")
    post_items(stack, user, 5)
    app = open_app()
    page = app.page
    app.goto()
    app.sign_in(user)
    expect(page.locator("#list-count")).to_have_text("Showing all 5 items.")
    # The next item stays pending: its GET /data/{id} answers 404 (not stored yet) for the whole test.
    page.route(
        f"{stack.api_url}/data/*",
        lambda route: route.fulfill(status=404, content_type="application/json", body='{"message": "Not Found"}'),
    )
    page.get_by_label("Information one").fill("still pending")
    page.get_by_label("Information two").fill("x")
    page.get_by_role("button", name="Add item").click()
    expect(app.rows()).to_have_count(6)
    expect(page.locator("#list-count")).to_have_text("Showing all 6 items, 1 of them pending.")
