"""The link page in the browser: from My links to one link, its batch and their states; axe-clean."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from sharing import services
from sharing.audit import Actor
from sharing.services import link_emails
from tests.browser.test_accessibility_browser import violations_on
from tests.browser.test_buckets_browser import log_in
from tests.conftest import server_client

pytestmark = pytest.mark.browser

BUCKET = "tracked-files"
KEY = "quarterly/results with a rather long name 2026.pdf"


@pytest.fixture
def batch(real_s3, alice, settings, live_server) -> list:
    """Three links emailed at once; the second recipient opened theirs, the third downloaded."""
    settings.SITE_URL = live_server.url
    actor = Actor(user=alice, name="alice")
    services.bucket_create(actor=actor, name=BUCKET)
    server_client(real_s3).put_object(Bucket=BUCKET, Key=KEY, Body=b"results\n" * 100)
    created = link_emails.links_email(
        actor=actor,
        bucket=BUCKET,
        key=KEY,
        recipients=["ann@example.com", "ben.long-address@example.org", "cat@example.net"],
        expires_at=timezone.now() + datetime.timedelta(days=2),
        remind_before_expiry=True,
    )
    return created


def test_from_my_links_to_the_link_page(page, live_server, batch):
    ann, ben, cat = batch
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/s/{ben.token}")  # the same browser, as ben: an open
    page.goto(f"{live_server.url}/links/")
    page.locator(f'tr[data-link="{ann.link.pk}"]').get_by_test_id("link-detail").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("results with a rather long")
    expect(page.get_by_test_id("link-status")).to_have_text("active")
    table = page.get_by_test_id("batch-table")
    expect(table.locator(f'tr[data-link="{ben.link.pk}"] [data-state]')).to_have_text("opened")
    expect(table.locator(f'tr[data-link="{cat.link.pk}"] [data-state]')).to_have_text("not opened")
    page.get_by_test_id("revoke-link").click()
    expect(page.get_by_test_id("link-status")).to_have_text("revoked")


def test_link_page_is_accessible_light_and_dark_phone_and_laptop(browser, live_server, batch):
    # axe is injected as an inline script, which the portal's CSP refuses: bypassed here only.
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        log_in(page, live_server, "alice")
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}/links/{batch[1].link.pk}/")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390  # nothing sticks out sideways on a phone
        found = violations_on(context, live_server, [f"/links/{batch[1].link.pk}/", "/links/"])
        assert not found, "\n".join(found)
    finally:
        context.close()
