"""A share link's life in the browser: made on the object page, opened by a stranger, revoked."""

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from sharing import services
from sharing.audit import Actor
from sharing.models import AuditEvent, ShareLink
from tests.browser.test_buckets_browser import log_in
from tests.conftest import server_client

pytestmark = pytest.mark.browser

KEY = "handover/notes v2.txt"
BODY = "Hand-over notes — ünïcode and all.\n".encode() * 50


@pytest.fixture
def shared_file(real_s3, alice, settings, live_server) -> str:
    settings.SITE_URL = live_server.url  # links in the page are built from SITE_URL
    services.bucket_create(
        actor=Actor(user=alice, name="alice"), name="browser-share", allow_public=True
    )
    server_client(real_s3).put_object(Bucket="browser-share", Key=KEY, Body=BODY)
    return f"{live_server.url}/b/browser-share/object/?{urlencode({'key': KEY})}"


def test_link_created_opened_downloaded_revoked_and_dead(
    page, browser, live_server, shared_file, tmp_path
):
    log_in(page, live_server, "alice")
    page.goto(shared_file)
    panel = page.get_by_test_id("link-create")
    expect(page.get_by_test_id("public-state")).to_have_text("private")
    page.get_by_test_id("link-open").click()  # the sharing tools are folded until chosen
    panel.get_by_label("1 hour").check()
    panel.get_by_label("Download limit (optional)").fill("3")
    panel.get_by_test_id("create-link").click()
    expect(page.get_by_text("Copy the link now")).to_be_visible()
    url = page.get_by_test_id("created-url").input_value()
    assert re.fullmatch(rf"{re.escape(live_server.url)}/s/[A-Za-z0-9_-]{{43}}", url)

    stranger = browser.new_context(accept_downloads=True)
    try:
        visitor = stranger.new_page()
        visitor.set_default_timeout(15_000)
        response = visitor.goto(url)
        assert response.status == 200
        assert response.headers["referrer-policy"] == "same-origin"
        expect(visitor.get_by_test_id("file-name")).to_have_text("notes v2.txt")
        expect(visitor.get_by_test_id("recipient-page")).to_contain_text("alice")
        with visitor.expect_download() as caught:
            visitor.get_by_test_id("download").click()
        download = caught.value
        assert download.suggested_filename == "notes v2.txt"
        saved = tmp_path / "saved.txt"
        download.save_as(saved)
        assert Path(saved).read_bytes() == BODY
        assert ShareLink.objects.get().downloads == 1
        row = AuditEvent.objects.filter(action="link.download", phase="event").get()
        assert row.outcome == "success" and "HeadlessChrome" in row.user_agent

        page.get_by_test_id("nav-links").click()
        row = page.get_by_test_id("link-table").get_by_role("row", name=re.compile("notes v2"))
        expect(row.get_by_test_id("link-status")).to_have_text("active")
        expect(row).to_contain_text("1 / 3")
        row.get_by_test_id("revoke-link").click()
        expect(page.get_by_text("withdrawn: it no longer works")).to_be_visible()
        expect(page.get_by_test_id("link-status")).to_have_text("revoked")

        dead = visitor.goto(url)
        assert dead.status == 410
        expect(visitor.get_by_test_id("gone-reason")).to_contain_text("withdrawn")
        expect(visitor.get_by_test_id("download")).to_have_count(0)
    finally:
        stranger.close()


def test_make_public_asks_first_and_shows_the_url(page, live_server, shared_file):
    log_in(page, live_server, "alice")
    page.goto(shared_file)
    page.get_by_test_id("make-public").click()
    page.get_by_test_id("confirm-public").click()
    expect(page.get_by_text("Tick the box to confirm")).to_be_visible()
    page.get_by_label(re.compile("anyone with the URL can read this file")).check()
    page.get_by_test_id("confirm-public").click()
    expect(page.get_by_text("The file is now public.")).to_be_visible()
    expect(page.get_by_test_id("public-state")).to_have_text("public")
    public_url = page.get_by_test_id("public-url").input_value()
    assert public_url.endswith("/browser-share/handover/notes%20v2.txt")
    page.get_by_test_id("make-private").click()
    expect(page.get_by_text("The file is now private.")).to_be_visible()
