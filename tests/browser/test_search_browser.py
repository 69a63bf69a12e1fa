"""Bucket search in a browser: a file uploaded three folders deep is found from the bucket page."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_upload_browser import (  # noqa: F401
    BUCKET,
    assert_no_csp_violation,
    drop,
    open_folder,
    portal,
)

pytestmark = pytest.mark.browser


def test_search_finds_a_file_three_folders_deep(portal, page, real_s3):  # noqa: F811
    complaints = open_folder(page, portal, prefix="a/b/c/")
    drop(page, ("invoice-2026-03.pdf", 1234, "application/pdf"))
    expect(page.get_by_test_id("upload-summary")).to_have_text("1 file uploaded.", timeout=60_000)

    page.goto(f"{portal.url}/b/{BUCKET}/")
    page.get_by_test_id("bucket-search").fill("INVOICE-2026")
    page.get_by_test_id("bucket-search-submit").click()
    results = page.get_by_test_id("search-results")
    expect(results).to_contain_text("in browser-uploads/a/b/c/")
    expect(results.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("index-state")).to_contain_text("Never indexed")

    results.get_by_role("link", name="invoice-2026-03.pdf").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("invoice-2026-03.pdf")
    assert "key=a/b/c/invoice-2026-03.pdf" in page.url
    assert_no_csp_violation(page, complaints)
