"""A person's path through files: drop two files into a folder, browse, download, copy, delete."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from sharing import services
from sharing.audit import Actor
from tests.browser.test_upload_browser import BUCKET, drop, open_folder, pattern, portal  # noqa: F401
from tests.conftest import audit_rows, server_client

pytestmark = pytest.mark.browser
ARCHIVE = "browser-archive"


def test_upload_browse_download_copy_delete(portal, page, real_s3, alice):  # noqa: F811
    services.bucket_create(actor=Actor(user=alice, name="alice"), name=ARCHIVE)
    open_folder(page, portal, prefix="reports/")
    drop(page, ("résumé 2026.txt", 3000, "text/plain"), ("plain.csv", 1500, "text/csv"))
    expect(page.get_by_test_id("upload-summary")).to_have_text("2 files uploaded.", timeout=60_000)

    page.goto(f"{portal.url}/b/{BUCKET}/")
    page.get_by_role("link", name="reports/").click()
    table = page.get_by_test_id("object-table")
    expect(table).to_contain_text("plain.csv")
    table.get_by_role("link", name="résumé 2026.txt").click()
    expect(page.get_by_test_id("metadata").get_by_title("3,000 bytes")).to_have_text("2.9 KB")

    with page.expect_download() as caught:
        page.get_by_test_id("download").click()
    download = caught.value
    assert download.suggested_filename == "résumé 2026.txt"
    assert Path(download.path()).read_bytes() == pattern("résumé 2026.txt", 3000)

    page.get_by_test_id("copy-move").click()
    page.get_by_label("Destination bucket").select_option(ARCHIVE)
    page.get_by_label("Destination path").fill("kept/résumé 2026.txt")
    page.get_by_test_id("transfer-submit").click()
    expect(page.get_by_text(f"Copied to {ARCHIVE}/kept/résumé 2026.txt.")).to_be_visible()
    copy = server_client(real_s3).get_object(Bucket=ARCHIVE, Key="kept/résumé 2026.txt")
    assert copy["Body"].read() == pattern("résumé 2026.txt", 3000)

    page.locator("summary", has_text="Delete…").click()
    page.get_by_test_id("confirm-delete-file").click()
    expect(page.get_by_text("Deleted 1 file.")).to_be_visible()
    assert server_client(real_s3).list_objects_v2(Bucket=ARCHIVE).get("KeyCount", 0) == 0
    outcomes = audit_rows(bucket=ARCHIVE, key="kept/résumé 2026.txt", phase="outcome")
    assert ("object.copy", "outcome", "success") in outcomes
    assert outcomes[-1] == ("object.delete", "outcome", "success")
