"""A person's path through the browser: log in, create a bucket, see it, delete it."""

import re

import pytest
from playwright.sync_api import expect

from sharing.models import AuditEvent
from tests.conftest import PASSWORD, server_client

pytestmark = pytest.mark.browser


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/buckets/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Buckets", exact=True)).to_be_visible()


def test_create_see_and_delete_a_bucket(page, live_server, alice, real_s3):
    log_in(page, live_server, "alice")
    page.get_by_test_id("new-bucket").click()
    page.get_by_label("Bucket name").fill("Bad_Name")
    page.get_by_role("button", name="Create bucket").click()
    expect(page.get_by_text("only contain lowercase letters")).to_be_visible()

    page.get_by_label("Bucket name").fill("browser-made")
    page.get_by_role("button", name="Create bucket").click()
    expect(page.get_by_text("Bucket “browser-made” created.")).to_be_visible()
    row = page.get_by_test_id("bucket-table").get_by_role("row", name=re.compile("browser-made"))
    expect(row).to_contain_text("manage")
    assert "browser-made" in {b["Name"] for b in server_client(real_s3).list_buckets()["Buckets"]}

    row.get_by_role("link", name="browser-made").click()
    expect(page.get_by_text("This bucket is empty")).to_be_visible()
    page.get_by_test_id("delete-bucket").click()
    page.get_by_test_id("confirm-delete").click()
    expect(page.get_by_text("Bucket “browser-made” deleted.")).to_be_visible()
    expect(page.get_by_test_id("bucket-table")).to_have_count(0)
    assert "browser-made" not in {
        b["Name"] for b in server_client(real_s3).list_buckets()["Buckets"]
    }
    assert AuditEvent.objects.filter(action="bucket.delete", outcome="success").exists()


def test_non_empty_bucket_needs_typed_name(page, live_server, alice, real_s3):
    log_in(page, live_server, "alice")
    page.get_by_test_id("new-bucket").click()
    page.get_by_label("Bucket name").fill("full-of-files")
    page.get_by_role("button", name="Create bucket").click()
    server_client(real_s3).put_object(Bucket="full-of-files", Key="keep/me.txt", Body=b"data")

    page.goto(f"{live_server.url}/b/full-of-files/delete/")
    # The type-the-name form at once: no plain delete that can only be refused.
    expect(page.get_by_text("This bucket still holds files.")).to_be_visible()
    expect(page.get_by_test_id("confirm-delete")).to_have_count(0)
    page.get_by_label("Type full-of-files to confirm").fill("full-of-files")
    page.get_by_test_id("empty-and-delete").click()
    expect(
        page.get_by_text("Bucket “full-of-files” deleted after deleting 1 file.")
    ).to_be_visible()


def test_phone_width_layout_has_no_horizontal_scroll(page, live_server, alice, real_s3):
    page.set_viewport_size({"width": 375, "height": 740})
    log_in(page, live_server, "alice")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 375
    expect(page.get_by_test_id("logout")).to_be_visible()
