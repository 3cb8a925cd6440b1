"""The web app in headless Chromium against the local stack (see conftest.py for the fixtures)."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT, App
from tests.support.stack import Stack

pytestmark = pytest.mark.browser


def unique(name: str) -> str:
    """A user name no other test (or earlier run against the same stack) has used."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def post_items(stack: Stack, user: str, count: int, prefix: str = "item") -> list[str]:
    """Add items through the API (quicker than typing them), then wait until all are stored."""
    headers = stack.auth(user)
    ids = []
    for i in range(count):
        body = {"informationOne": f"{prefix} {i:02d}", "informationTwo": f"value {i}"}
        r = requests.post(f"{stack.api_url}/data", json=body, headers=headers, timeout=10)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    deadline = time.monotonic() + 15
    while True:
        r = requests.get(f"{stack.api_url}/data", params={"limit": 100}, headers=headers, timeout=10)
        if len(r.json()["items"]) >= count:
            return ids
        assert time.monotonic() < deadline, f"only {len(r.json()['items'])} of {count} items were stored"
        time.sleep(0.2)


def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until the element matching selector has focus: proves it is reachable by keyboard."""
    for _ in range(limit):
        if page.evaluate("(sel) => document.activeElement?.matches(sel) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} could not be reached with Tab")


def test_keyboard_only_sign_in_add_item_pending_then_stored_and_detail(open_app) -> None:
    app: App = open_app()
    page = app.page
    user = unique("alice")
    app.goto()
    expect(page.get_by_text("For local use only.")).to_be_visible()

    # Keyboard only: the user-name field has focus on arrival.
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type(user)
    page.keyboard.press("Enter")
    expect(page.locator("#session-user")).to_have_text(user)
    expect(page.get_by_text("No data yet")).to_be_visible()
    expect(page.locator("#chart-summary")).to_contain_text("Nothing to chart yet")

    # After sign-in the first field has focus; Enter in the second submits the form.
    expect(page.get_by_label("Information one")).to_be_focused()
    page.keyboard.type("temperature")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Information two")).to_be_focused()
    page.keyboard.type("21.5 °C in the kitchen")
    page.keyboard.press("Enter")

    row = app.rows().first
    expect(row).to_contain_text("temperature")
    expect(row.locator(".badge")).to_have_text("Pending")  # accepted, not yet persisted
    expect(row.locator(".badge")).to_have_text("✓ Stored")  # GET /data/{id} answered 200
    expect(page.get_by_label("Information one")).to_have_value("")
    expect(page.locator("#chart-summary")).to_contain_text("1 item in the last 24 hours")
    expect(page.locator("#chart svg rect.bar")).to_have_count(1)

    # Detail view, by keyboard, and back.
    tab_to(page, "#items-body tr:first-child a")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/items/[0-9A-Z]{26}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("temperature")
    detail = page.locator("#detail-body")
    expect(detail).to_contain_text("21.5 °C in the kitchen")
    expect(detail).to_contain_text("Stored")
    expect(detail.locator("code.item-id")).to_have_text(re.compile(r"^[0-9A-Z]{26}$"))
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="← Back to your data")).to_be_focused()
    page.keyboard.press("Enter")
    expect(app.rows()).to_have_count(1)
    expect(app.rows().first.locator("a")).to_be_focused()  # back where the user left off


def test_load_more_pages_through_30_items(open_app, stack: Stack) -> None:
    user = unique("pager")
    post_items(stack, user, 30)
    app: App = open_app()
    page = app.page
    app.goto()
    app.sign_in(user)

    expect(app.rows()).to_have_count(25)
    expect(app.rows().first).to_contain_text("item 29")  # newest first
    expect(page.locator("#list-count")).to_have_text("Showing your newest 25 items. There are more.")
    expect(page.locator("#chart-summary")).to_contain_text("30 items in the last 24 hours")

    page.get_by_role("button", name="Load more").click()
    expect(app.rows()).to_have_count(30)
    expect(app.rows().last).to_contain_text("item 00")
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(page.locator("#list-count")).to_have_text("Showing all 30 items.")
    # Focus moves to the first item that was loaded, so keyboard users continue from there.
    expect(app.rows().nth(25).locator("a")).to_be_focused()
    texts = app.rows().locator("td:nth-child(2)").all_inner_texts()
    assert texts == [f"item {i:02d}" for i in range(29, -1, -1)]


def test_validation_error_then_the_servers_message(open_app) -> None:
    app: App = open_app()
    page = app.page
    app.goto()
    # Signed in without data.write: the API refuses POST /data with 403 and says why.
    app.sign_in(unique("reader"), roles=("data.read",))
    app.allow(403, "/data")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    page.get_by_role("button", name="Add item").click()
    expect(page.locator("#info-one-error")).to_have_text("Information one is required.")
    expect(page.locator("#info-two-error")).to_have_text("Information two is required.")
    expect(page.get_by_label("Information one")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Information one")).to_be_focused()

    # 1025 characters is one too many; 1024 emoji are fine (the schema counts code points).
    page.get_by_label("Information one").fill("x" * 1025)
    page.get_by_label("Information two").fill("🙂" * 1024)
    expect(page.locator("#info-one-count")).to_have_text("1025 / 1024")
    page.get_by_role("button", name="Add item").click()
    expect(page.locator("#info-one-error")).to_have_text(
        "Information one must be at most 1024 characters; it has 1025."
    )
    expect(page.locator("#info-two-error")).to_be_hidden()
    assert posts == [], "invalid input must not be sent"

    page.get_by_label("Information one").fill("x" * 1024)
    expect(page.locator("#info-one-error")).to_be_hidden()  # re-validated while typing
    page.get_by_role("button", name="Add item").click()
    error = page.locator("#add-error")
    expect(error).to_contain_text("Not allowed: User is not authorized to access this resource")
    expect(error).to_contain_text("data.write")
    assert len(posts) == 1
    expect(page.get_by_label("Information one")).to_have_value("x" * 1024)  # nothing typed is lost
    expect(app.rows()).to_have_count(0)


def test_server_error_and_expired_session_say_what_happened(open_app) -> None:
    app: App = open_app()
    page = app.page
    user = unique("erin")
    app.goto()
    app.sign_in(user)
    expect(page.get_by_text("No data yet")).to_be_visible()

    # A server error while loading the list: the API's message and a way to retry.
    app.allow(500, "/data")
    page.route(
        re.compile(r".*/data\?.*"),
        lambda route: route.fulfill(status=500, json={"message": "the table is unavailable"}),
    )
    page.get_by_role("button", name="Refresh").click()
    alert = page.locator("#list-state [role=alert]")
    expect(alert).to_contain_text("The server ran into a problem")
    expect(alert).to_contain_text("HTTP 500")
    expect(alert).to_contain_text("the table is unavailable")
    expect(page.locator("#chart-summary")).to_contain_text("Could not load your activity: the table is unavailable")
    page.unroute(re.compile(r".*/data\?.*"))
    alert.get_by_role("button", name="Try again").click()
    expect(page.get_by_text("No data yet")).to_be_visible()

    # A token the API no longer accepts (expired or forged): 401, so the app asks to sign in again.
    app.allow(401, "/data")
    page.evaluate(
        """() => {
          const s = JSON.parse(sessionStorage.getItem('fanout.session'));
          s.token = s.token.slice(0, -4) + 'AAAA';
          sessionStorage.setItem('fanout.session', JSON.stringify(s));
        }"""
    )
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#signin-reason")).to_have_text(
        "Your session has expired or is no longer valid. Sign in again to continue."
    )
    expect(page.get_by_label("User name")).to_have_value(user)  # prefilled for a quick return
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No data yet")).to_be_visible()


def test_missing_read_role_is_explained(open_app) -> None:
    app: App = open_app()
    page = app.page
    app.goto()
    app.allow(403, "/data")
    app.sign_in(unique("writer"), roles=("data.write",))
    alert = page.locator("#list-state [role=alert]")
    expect(alert).to_contain_text("Missing permission")
    expect(alert).to_contain_text("User is not authorized to access this resource")
    expect(alert).to_contain_text("data.read")
    expect(page.locator("#chart-summary")).to_contain_text("Nothing to chart: User is not authorized")

    # Adding still works; the app cannot look the item up, and says so instead of spinning forever.
    app.allow(403, r"/data/[0-9A-Z]{26}")
    page.get_by_label("Information one").fill("write-only")
    page.get_by_label("Information two").fill("works")
    page.get_by_role("button", name="Add item").click()
    expect(app.rows().first.locator(".badge")).to_have_text("Accepted (not checked)")


def test_a_second_user_does_not_see_the_first_users_data(open_app, stack: Stack) -> None:
    first, second = unique("ann"), unique("bob")
    [item_id] = post_items(stack, first, 1, prefix="ann's secret")

    ann: App = open_app()
    ann.goto()
    ann.sign_in(first)
    expect(ann.rows()).to_have_count(1)
    expect(ann.rows().first).to_contain_text("ann's secret 00")

    bob: App = open_app()
    bob.goto()
    bob.sign_in(second)
    expect(bob.page.get_by_text("No data yet")).to_be_visible()
    expect(bob.rows()).to_have_count(0)
    # Not even with the item's address.
    bob.allow(404, rf"/data/{item_id}")
    bob.goto(f"/#/items/{item_id}")
    expect(bob.page.get_by_role("heading", level=1)).to_have_text("Item not found")
    expect(bob.page.locator("#detail-body")).to_contain_text("There is no item with this id among your data.")
    expect(bob.page.locator("body")).not_to_contain_text("ann's secret")


def test_sign_out_forgets_the_session(open_app) -> None:
    app: App = open_app()
    page = app.page
    app.goto()
    app.sign_in(unique("sam"))
    assert page.evaluate("sessionStorage.getItem('fanout.session')") is not None

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#signin-reason")).to_have_text("You have signed out.")
    expect(page.locator("#session")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('fanout.session')") is None
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_phone_width_and_labels(open_app, stack: Stack) -> None:
    user = unique("phone")
    post_items(stack, user, 3, prefix="a rather long piece of information that has to wrap on a phone")
    app: App = open_app(viewport={"width": 360, "height": 740})
    page = app.page
    app.goto()
    app.sign_in(user)
    expect(app.rows()).to_have_count(3)
    # Nothing wider than the screen, so no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    # Every form control has a label a screen reader announces.
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select')]
                 .filter((el) => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
                 .map((el) => el.id || el.name)"""
    )
    assert unlabeled == []


def test_main_screen_chart_over_a_day_and_screenshot(open_app, stack: Stack) -> None:
    """A day of history, written to the table the way the persister writes it, so the chart has a shape.

    With FANOUT_SCREENSHOT=1 this also writes docs/screenshot.png (`make screenshot`).
    """
    from fanout_kit import ids
    from handlers.core.store import Record

    user = "demo"  # the stack is fresh for the session; a plain name reads better in the screenshot
    table_name = json.loads(stack.cli("status", "--json").stdout)["table_name"]
    now = datetime.now(UTC)
    readings = ["kitchen", "hallway", "garage", "attic", "cellar"]
    # Busier in the day than at night: 0..6 items an hour over the last 20 hours.
    shape = [1, 0, 0, 1, 2, 3, 5, 6, 4, 3, 4, 5, 3, 2, 4, 6, 5, 3, 2, 1]
    records = []
    for hours_ago, count in enumerate(reversed(shape), start=1):
        for k in range(count):
            at = now - timedelta(hours=hours_ago, minutes=7 + k * 9)
            records.append(
                Record(
                    user=user,
                    id=ids.new_id(int(at.timestamp() * 1000)),
                    information_one=f"temperature {readings[(hours_ago + k) % 5]}",
                    information_two=f"{18 + (hours_ago * 7 + k * 3) % 9}.{k} °C",
                    created_at=at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
                )
            )
    ddb = stack.boto("dynamodb")
    for i in range(0, len(records), 25):
        ddb.batch_write_item(
            RequestItems={table_name: [{"PutRequest": {"Item": r.to_dynamodb()}} for r in records[i : i + 25]]}
        )

    app: App = open_app(viewport={"width": 1280, "height": 900})
    page = app.page
    app.goto()
    app.sign_in(user)
    total = sum(shape)
    expect(page.locator("#chart-summary")).to_contain_text(f"{total} items in the last 24 hours")
    expect(page.locator("#chart svg rect.bar")).to_have_count(sum(1 for c in shape if c))
    expect(app.rows()).to_have_count(25)

    # One more, added in the UI, so the picture shows an item on its way.
    page.get_by_label("Information one").fill("temperature kitchen")
    page.get_by_label("Information two").fill("21.5 °C")
    page.get_by_role("button", name="Add item").click()
    expect(app.rows().first.locator(".badge")).to_have_text("✓ Stored")
    expect(page.locator("#chart-summary")).to_contain_text(f"{total + 1} items in the last 24 hours")

    if os.environ.get("FANOUT_SCREENSHOT") == "1":
        page.locator("#items-body").evaluate("(el) => el.closest('.card').scrollIntoView()")
        page.evaluate("window.scrollTo(0, 0)")
        page.get_by_label("Information one").blur()
        target = ROOT / "docs" / "screenshot.png"
        Path(target).parent.mkdir(exist_ok=True)
        page.screenshot(path=str(target), full_page=False)
