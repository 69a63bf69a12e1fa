"""The folder page in a browser: sort by size, select every row, copy the selection elsewhere."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_upload_browser import (  # noqa: F401
    BUCKET,
    assert_no_csp_violation,
    open_folder,
    portal,
)
from tests.conftest import audit_rows, server_client

pytestmark = pytest.mark.browser
FILES = {"docs/medium.txt": 500, "docs/big.txt": 4000, "docs/small.txt": 3}


def test_sort_by_size_select_all_and_copy(portal, page, real_s3):  # noqa: F811
    raw = server_client(real_s3)
    for key, size in FILES.items():
        raw.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)
    raw.put_object(Bucket=BUCKET, Key="docs/notes/", Body=b"")  # a folder made with Create folder
    complaints = open_folder(page, portal)

    page.get_by_test_id("sort-size").click()
    expect(page.get_by_role("columnheader", name="Size")).to_have_attribute(
        "aria-sort", "ascending"
    )
    names = page.locator('[data-testid="object-table"] tbody td:nth-child(2) a')
    expect(names).to_have_text(["notes/", "small.txt", "medium.txt", "big.txt"])

    page.get_by_label("Select every row on this page").check()
    boxes = page.locator('[data-testid="object-table"] tbody input[name="keys"]')
    expect(boxes).to_have_count(4)
    for index in range(4):
        expect(boxes.nth(index)).to_be_checked()
    page.get_by_test_id("copy-selected").click()

    expect(page.get_by_test_id("selection")).to_contain_text("big.txt")
    page.get_by_label("Destination folder (empty: the top of the bucket)").fill("copied")
    page.get_by_test_id("transfer-submit").click()
    expect(page.get_by_test_id("transfer-done")).to_have_text("Done: 4 of 4 files copied.")

    listed = raw.list_objects_v2(Bucket=BUCKET, Prefix="copied/").get("Contents", [])
    assert {item["Key"]: item["Size"] for item in listed} == {
        "copied/medium.txt": 500,
        "copied/big.txt": 4000,
        "copied/small.txt": 3,
        "copied/notes/": 0,
    }
    for key in ("copied/medium.txt", "copied/big.txt", "copied/small.txt", "copied/notes/"):
        assert audit_rows(action="object.copy", bucket=BUCKET, key=key) == [
            ("object.copy", "intent", "pending"),
            ("object.copy", "outcome", "success"),
        ]
    assert_no_csp_violation(page, complaints)


def test_download_selection_downloads_each_file(portal, page, real_s3):  # noqa: F811
    raw = server_client(real_s3)
    raw.put_object(Bucket=BUCKET, Key="docs/one.txt", Body=b"1")
    raw.put_object(Bucket=BUCKET, Key="docs/two.txt", Body=b"22")
    complaints = open_folder(page, portal)
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    page.get_by_label("Select one.txt").check()
    page.get_by_label("Select two.txt").check()
    page.get_by_test_id("download-selected").click()
    for _ in range(100):  # each download is started 0.4 s after the one before
        if len(downloads) == 2:
            break
        page.wait_for_timeout(100)
    assert sorted(download.suggested_filename for download in downloads) == ["one.txt", "two.txt"]
    assert page.url.endswith(f"/b/{BUCKET}/?prefix=docs/")  # the folder page stays open
    for key in ("docs/one.txt", "docs/two.txt"):
        outcomes = audit_rows(action="object.download", key=key, phase="outcome")
        assert outcomes == [("object.download", "outcome", "success")]
    assert_no_csp_violation(page, complaints)
