"""The console's Events page: each event type with its schema, an example, its producers and consumers."""

from __future__ import annotations

import json
from collections.abc import Callable

import requests
from playwright.sync_api import expect

from tests.support.stack import Stack


def test_the_events_page_shows_every_type_its_producers_consumers_schema_and_example(
    open_app: Callable, stack: Stack
) -> None:
    doc = requests.get(f"{stack.api_url}/asyncapi.json", timeout=10).json()
    types = list(doc["components"]["messages"])
    assert types == ["fanout.data.generated.v1", "fanout.data.persisted.v1"]
    app = open_app()
    # Reached from the console's navigation, as a user gets there.
    app.goto("/console")
    page = app.page
    page.get_by_role("navigation", name="Console pages").get_by_role("link", name="Events").click()
    expect(page).to_have_url(f"{stack.api_url}/console/events.html")
    expect(page.locator("#ev-status")).to_contain_text("2 event types")
    for event_type in types:
        section = page.locator(f'section[data-type="{event_type}"]')
        expect(section.get_by_role("heading", name=event_type)).to_be_visible()
        example = doc["components"]["messages"][event_type]["examples"][0]["payload"]
        expect(section.locator("pre.ev-example")).to_contain_text(example["id"])
        section.get_by_text("Schema (payload)").click()
        expect(section.locator("pre.ev-schema")).to_contain_text(
            f'"$id": "https://schemas.fanout.dev/{event_type}.json"'
        )

    generated = page.locator('section[data-type="fanout.data.generated.v1"]')
    expect(generated.get_by_text("api.publish", exact=True)).to_be_visible()
    expect(generated.get_by_text("generator.publish", exact=True)).to_be_visible()
    # Every consumer of the stack's topology that receives the type, named, with its filter policy.
    persister = generated.locator('li[data-consumer="persister"]')
    expect(persister).to_contain_text(json.dumps({"type": ["fanout.data.generated.v1"]}, separators=(",", ":")))
    expect(persister).to_contain_text("handler handlers.persister:handler")
    expect(generated.locator('li[data-consumer="archive"]')).to_be_visible()
    persisted = page.locator('section[data-type="fanout.data.persisted.v1"]')
    expect(persisted.get_by_text("persister.announce", exact=True)).to_be_visible()
