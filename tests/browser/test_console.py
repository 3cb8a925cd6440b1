"""The local console (GET /console): clean load, live stream and figures, traces, DLQ redrive and purge,
keyboard-only use, phone width. `open_app` fails a test on any console error or CSP violation."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from playwright.sync_api import Page, expect

from tests.support.stack import Stack

BODY = {"informationOne": "from the browser test", "informationTwo": "console"}


def post(stack: Stack, sub: str) -> tuple[str, float]:
    r = requests.post(f"{stack.api_url}/data", json=BODY, headers=stack.auth(sub), timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["id"], time.monotonic()


def figure(page: Page, consumer: str, key: str) -> int:
    text = page.locator(f'.lane[data-consumer="{consumer}"] [data-figure="{key}"]').inner_text()
    return int(text) if text.isdigit() else -1


def open_console(open_app: Callable[..., Any], **kw: Any) -> Any:
    app = open_app(**kw)
    app.goto("/console")
    expect(app.page.get_by_role("heading", name="Topology")).to_be_visible()
    expect(app.page.locator('.lane[data-consumer="persister"]')).to_be_visible()
    expect(app.page.locator("#live")).to_contain_text("Live")
    return app


def test_the_console_loads_with_the_topology_and_no_error(open_app: Callable[..., Any]) -> None:
    app = open_console(open_app)
    page = app.page
    persister = page.locator('.lane[data-consumer="persister"]')
    expect(persister).to_contain_text("handlers.persister:handler")
    expect(persister).to_contain_text('{"type":["fanout.data.generated.v1"]}')
    expect(persister.locator(".node-dlq")).to_contain_text("persister-dlq")
    expect(page.locator('.lane[data-consumer="archive"]')).to_be_visible()
    expect(page.locator("#topology-summary")).to_contain_text("topic")
    expect(page.get_by_role("link", name="Events")).to_have_attribute("href", "/console/events.html")
    expect(page.locator("#cost-date")).to_contain_text("as of")


def test_a_posted_event_shows_in_the_stream_within_2_s_and_its_trace_on_select(
    open_app: Callable[..., Any], stack: Stack
) -> None:
    app = open_console(open_app)
    page = app.page
    event_id, posted = post(stack, "u-" + uuid.uuid4().hex[:8])
    row = page.locator(f'#stream-body tr[data-event="{event_id}"]')
    expect(row).to_be_visible(timeout=2000)
    assert time.monotonic() - posted <= 2.0
    row.get_by_role("button").click()
    trace = page.locator("#trace")
    expect(trace).to_contain_text(event_id)
    expect(trace.locator('tr[data-consumer="persister"]')).to_contain_text("processed", timeout=5000)
    expect(trace).to_contain_text("stored")


def test_the_figures_move(open_app: Callable[..., Any], stack: Stack) -> None:
    app = open_console(open_app)
    page = app.page
    expect(page.locator('.lane[data-consumer="persister"] [data-figure="processed"]')).not_to_have_text(
        "\u2013"
    )  # a dash until the first figures arrive
    before = figure(page, "persister", "processed")
    for _ in range(3):
        post(stack, "u-" + uuid.uuid4().hex[:8])
    deadline = time.monotonic() + 5
    while figure(page, "persister", "processed") < before + 3 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert figure(page, "persister", "processed") >= before + 3
    assert figure(page, "persister", "delivered") >= before + 3
    expect(page.locator("#rate")).not_to_contain_text("0.0 events")


def _dlq_consumer(stack: Stack, messages: int) -> tuple[str, str, str]:
    """A subscribed consumer (no handler: what is in its queue stays) with `messages` in its DLQ."""
    name = "console-" + uuid.uuid4().hex[:6]
    stack.cli("subscribe", name, "--filter-policy", json.dumps({"subject": ["nobody-at-all"]}))
    status = json.loads(stack.cli("status", "--json").stdout)["consumers"][name]
    sqs = stack.boto("sqs")
    for n in range(messages):
        sqs.send_message(QueueUrl=status["dlq_url"], MessageBody=json.dumps({"id": f"dead-{n}", "type": "x"}))
    return name, status["queue_url"], status["dlq_url"]


def _count(stack: Stack, url: str) -> int:
    attrs = stack.boto("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_redrive_from_the_page_moves_the_messages_back(open_app: Callable[..., Any], stack: Stack) -> None:
    app = open_console(open_app)
    page = app.page
    name, queue, dlq = _dlq_consumer(stack, 2)
    # Subscribed after the page loaded: it appears in the topology without a reload.
    expect(page.locator(f'.lane[data-consumer="{name}"]')).to_contain_text("no handler", timeout=5000)
    expect(page.locator(f'#dlq-consumer option[value="{name}"]')).to_be_attached(timeout=5000)
    page.locator("#dlq-consumer").select_option(name)
    page.get_by_role("button", name="Show messages").click()
    expect(page.locator("#dlq-status")).to_have_text(f"2 messages in {name}'s DLQ")
    expect(page.locator("#dlq-body tr")).to_have_count(2)
    page.get_by_role("button", name="Show messages").click()  # looking again consumes nothing
    expect(page.locator("#dlq-body tr")).to_have_count(2)
    page.get_by_role("button", name="Redrive to the queue").click()
    expect(page.locator("#dlq-status")).to_have_text(f"2 messages moved back to {name}'s queue")
    assert _count(stack, dlq) == 0 and _count(stack, queue) == 2
    stack.cli("unsubscribe", name, "--force")  # the 2 redriven messages wait in its queue


def test_purge_asks_first_and_works_from_the_keyboard(open_app: Callable[..., Any], stack: Stack) -> None:
    name, _, dlq = _dlq_consumer(stack, 1)
    app = open_console(open_app)
    page = app.page
    expect(page.locator(f'#dlq-consumer option[value="{name}"]')).to_be_attached(timeout=5000)
    page.locator("#dlq-consumer").select_option(name)
    page.locator("#dlq-purge").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"{name}'s DLQ")
    page.keyboard.press("Escape")  # cancelled: nothing purged
    expect(dialog).to_be_hidden()
    assert _count(stack, dlq) == 1
    page.locator("#dlq-purge").focus()
    page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Purge").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#dlq-status")).to_have_text(f"purged 1 message from {name}'s DLQ")
    assert _count(stack, dlq) == 0
    stack.cli("unsubscribe", name)


def test_keyboard_only_reaches_an_event_and_its_trace(open_app: Callable[..., Any], stack: Stack) -> None:
    app = open_console(open_app)
    page = app.page
    event_id, _ = post(stack, "u-" + uuid.uuid4().hex[:8])
    expect(page.locator(f'#stream-body tr[data-event="{event_id}"]')).to_be_visible(timeout=2000)
    page.locator("#filter-subject").focus()  # the filters, then the newest event's button, by Tab alone
    for _ in range(3):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-label') || ''").endswith(event_id):
            break
    assert page.evaluate("document.activeElement.getAttribute('aria-label') || ''").endswith(event_id)
    # Focus is visible where Tab puts it.
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("", "none")
    page.keyboard.press("Enter")
    expect(page.locator("#trace")).to_contain_text(event_id)
    assert page.evaluate("document.activeElement.id") == "trace-title"  # focus follows to the trace


def test_the_console_is_usable_at_phone_width(open_app: Callable[..., Any], stack: Stack) -> None:
    app = open_console(open_app, viewport={"width": 390, "height": 844})
    page = app.page
    event_id, _ = post(stack, "u-" + uuid.uuid4().hex[:8])
    expect(page.locator(f'#stream-body tr[data-event="{event_id}"]')).to_be_visible(timeout=2000)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at 390px"
    for selector in ("#topology", "#stream-body", "#dlq-purge", "#replay-form button", "#cost-total"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 391, selector
    page.locator(f'#stream-body tr[data-event="{event_id}"] button').click()
    expect(page.locator("#trace")).to_contain_text(event_id)


def test_the_replay_form_says_how_many_it_replayed(open_app: Callable[..., Any], stack: Stack) -> None:
    app = open_console(open_app)
    page = app.page
    page.get_by_label("Type (empty: every type)").fill("no.such.type.v1")
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#replay-status")).to_have_text("replayed 0 events on the topic")
    page.get_by_label("Since (ISO 8601, UTC)").fill("yesterday")
    app.allow(400, "/_local/replay")
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#replay-status")).to_contain_text("since must be an ISO 8601")
