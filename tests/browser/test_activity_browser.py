"""A person does something, then finds it on My activity with a filter, at laptop and phone width."""

import re

import pytest
from playwright.sync_api import expect

from sharing import services
from sharing.audit import Actor
from tests.browser.test_buckets_browser import log_in

pytestmark = pytest.mark.browser


def test_a_new_folder_is_found_on_my_activity(page, live_server, alice, real_s3):
    services.bucket_create(actor=Actor(user=alice, name="alice"), name="activity-files")
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/b/activity-files/")
    page.get_by_label("New folder name").fill("quarterly")
    page.get_by_role("button", name="Create folder").click()
    expect(page).to_have_url(re.compile(r"prefix=quarterly%2F"))  # the new folder opens

    page.get_by_test_id("nav-activity").click()
    expect(page.get_by_role("heading", name="My activity")).to_be_visible()
    page.get_by_label("Action").fill("folder.create")
    page.get_by_test_id("activity-filter").click()
    expect(page).to_have_url(re.compile(r"action=folder\.create"))
    rows = page.get_by_test_id("activity-table").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("activity-files/quarterly/")
    expect(rows.first).to_contain_text("Success")

    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    expect(rows.first.get_by_text("activity-files/quarterly/")).to_be_visible()
    expect(rows.first.get_by_text("Success")).to_be_visible()
    table = page.get_by_test_id("activity-table")
    hidden = table.evaluate(
        "table => table.parentElement.scrollWidth - table.parentElement.clientWidth"
    )
    assert hidden <= 0, f"the table scrolls sideways on a phone ({hidden} px hidden)"
