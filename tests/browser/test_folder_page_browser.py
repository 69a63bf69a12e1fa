"""The folder page in a browser: sort by size, select every row, copy the selection elsewhere,\ndownload the selection or the folder as one ZIP."""

import zipfile

import pytest
from playwright.sync_api import expect

from tests.browser.test_folder_job_browser import worker  # noqa: F401
from tests.browser.test_upload_browser import (  # noqa: F401
    BUCKET,
    assert_no_csp_violation,
    open_folder,
    portal,
)
from tests.conftest import audit_rows, server_client

pytestmark = pytest.mark.browser
FILES = {"docs/medium.txt": 500, "docs/big.txt": 4000, "docs/small.txt": 3}


def test_sort_by_size_select_all_and_copy(portal, worker, page, real_s3):  # noqa: F811
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
    expect(page.get_by_test_id("job-summary")).to_have_text(
        "Done: 4 of 4 files copied.", timeout=60_000
    )

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


def test_download_selection_and_folder_as_one_zip(portal, page, real_s3):  # noqa: F811
    raw = server_client(real_s3)
    raw.put_object(Bucket=BUCKET, Key="docs/one.txt", Body=b"1")
    raw.put_object(Bucket=BUCKET, Key="docs/sub/two.txt", Body=b"22")
    complaints = open_folder(page, portal)
    page.get_by_label("Select one.txt").check()
    page.get_by_label("Select folder sub").check()
    with page.expect_download() as selection:
        page.get_by_test_id("download-selected").click()
    assert selection.value.suggested_filename == "docs.zip"
    with zipfile.ZipFile(selection.value.path()) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == {
            "one.txt": b"1",
            "sub/two.txt": b"22",
        }
    with page.expect_download() as folder:
        page.get_by_test_id("download-zip").click()
    assert folder.value.suggested_filename == "docs.zip"
    with zipfile.ZipFile(folder.value.path()) as archive:
        assert sorted(archive.namelist()) == ["one.txt", "sub/two.txt"]
    assert page.url.endswith(f"/b/{BUCKET}/?prefix=docs/")  # the folder page stays open
    for _ in range(50):  # the outcome row follows the last byte the browser received
        outcomes = audit_rows(action="archive.download", phase="outcome")
        if len(outcomes) == 2:
            break
        page.wait_for_timeout(100)
    assert [outcome for _, _, outcome in outcomes] == ["success", "success"]
    assert_no_csp_violation(page, complaints)
