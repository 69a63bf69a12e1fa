"""File requests in the browser: an outsider without an account sends files; revoking stops it."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from sharing import s3
from sharing.audit import Actor
from sharing.models import PendingUpload
from sharing.services import file_requests
from tests.browser.test_upload_browser import (  # noqa: F401 (the portal fixture)
    BUCKET,
    MIB,
    drop,
    pattern,
    portal,
    stored,
    wait_until,
)

pytestmark = pytest.mark.browser


def make_request(alice, **options) -> file_requests.NewFileRequest:
    values = {
        "bucket": BUCKET,
        "prefix": "inbox/",
        "title": "Send us your scans",
        "message": "Two files, please.",
        "expires_at": timezone.now() + datetime.timedelta(days=1),
        "max_bytes": 100 * MIB,
        "max_files": 5,
    }
    values.update(options)
    return file_requests.file_request_create(actor=Actor(user=alice), **values)


@pytest.fixture
def outsider(browser):
    """A fresh browser context: no login, no cookies."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_outsider_sends_two_files_and_the_owner_is_told(portal, outsider, real_s3, alice):  # noqa: F811
    new = make_request(alice)
    outsider.goto(f"{portal.url}/r/{new.token}")
    expect(outsider.get_by_test_id("request-title")).to_have_text("Send us your scans")
    expect(outsider.locator("#upload-panel[data-ready=true]")).to_be_attached()
    drop(outsider, ("scan one.pdf", 2000, "application/pdf"), ("big.bin", 6 * MIB, ""))
    expect(outsider.get_by_test_id("upload-summary")).to_have_text(
        "2 files uploaded.", timeout=60_000
    )
    sent = outsider.get_by_test_id("request-file")
    expect(sent).to_have_count(2, timeout=15_000)
    expect(outsider.get_by_test_id("request-sent")).to_contain_text("scan one.pdf")
    assert stored(real_s3, "inbox/scan one.pdf") == pattern("scan one.pdf", 2000)
    assert stored(real_s3, "inbox/big.bin") == pattern("big.bin", 6 * MIB)
    outsider.get_by_test_id("request-done").click()
    expect(outsider.get_by_test_id("request-thanks")).to_be_visible()
    wait_until(outsider, lambda: len(mail.outbox) == 1)
    body = mail.outbox[0].body
    assert "inbox/scan one.pdf" in body and "inbox/big.bin" in body
    assert mail.outbox[0].to == [alice.email]


def test_revoked_mid_upload_refuses_the_remaining_parts(portal, outsider, real_s3, alice):  # noqa: F811
    new = make_request(alice)
    signs: list[str] = []

    def sign(route) -> None:
        signs.append(route.request.url)
        if len(signs) == 2:  # the first part is signed; withdraw before the second
            file_requests.file_request_revoke(actor=Actor(user=alice), request=new.request)
        route.continue_()

    outsider.route("**/uploads/sign/", sign)
    outsider.goto(f"{portal.url}/r/{new.token}")
    expect(outsider.locator("#upload-panel[data-ready=true]")).to_be_attached()
    drop(outsider, ("large.bin", 16 * MIB, ""))
    row = outsider.locator("[data-file-id]", has_text="large.bin")
    expect(row).to_have_attribute("data-state", "error", timeout=60_000)
    expect(row).to_contain_text("withdrawn")
    assert len(signs) >= 2
    assert s3.head(BUCKET, "inbox/large.bin") is None
    assert PendingUpload.objects.exists()  # left for the clean-up command to abort
    outsider.goto(f"{portal.url}/r/{new.token}")
    # The visit still sees its page (nothing was sent), without the upload panel.
    expect(outsider.get_by_test_id("request-full")).to_contain_text("withdrawn")
    expect(outsider.locator("#upload-panel")).to_have_count(0)
