"""A folder copy started as a task finishes after the tab is closed (a live server, the real worker)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.browser.test_buckets_browser import log_in
from tests.browser.test_upload_browser import BUCKET, portal  # noqa: F401
from tests.conftest import audit_rows, server_client

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
FILES = 300


def database_url() -> str:
    """Return the URL of the test database, for a worker in another process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def worker(portal, real_s3):  # noqa: F811
    """The task worker `make run` starts (`manage.py db_worker`), on the test database and S3."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "S3_EMBEDDED": "false",
        "S3_ENDPOINT_URL": real_s3.endpoint_url,
        "S3_ACCESS_KEY_ID": real_s3.credentials.access_key,
        "S3_SECRET_ACCESS_KEY": real_s3.credentials.secret_key,
    }
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.2",
         "--no-startup-delay"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    yield process
    process.terminate()
    process.wait(30)


def test_a_folder_copy_finishes_after_the_tab_is_closed(portal, worker, browser, real_s3):  # noqa: F811
    raw = server_client(real_s3)
    for index in range(FILES):
        raw.put_object(Bucket=BUCKET, Key=f"docs/f{index:03}.txt", Body=b"x")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    log_in(page, portal, "alice")
    page.goto(f"{portal.url}/b/{BUCKET}/transfer/?prefix=docs/")
    page.get_by_label("Destination folder (empty: the top of the bucket)").fill("copied")
    page.get_by_test_id("transfer-submit").click()
    page.wait_for_url("**/jobs/*/")
    job_url = page.url
    page.close()  # the tab goes at once; the copy goes on in the worker

    later = context.new_page()
    later.goto(job_url)
    expect(later.get_by_test_id("job-summary")).to_have_text(
        f"Done: {FILES} of {FILES} files copied.", timeout=120_000
    )
    expect(later.get_by_test_id("job-progress")).to_have_attribute("value", str(FILES))
    context.close()
    listed = raw.list_objects_v2(Bucket=BUCKET, Prefix="copied/", MaxKeys=1000)
    assert listed["KeyCount"] == FILES
    assert (
        audit_rows(action="object.copy", bucket=BUCKET, phase="outcome").count(
            ("object.copy", "outcome", "success")
        )
        == FILES
    )


def test_my_jobs_lists_the_job(portal, worker, page, real_s3):  # noqa: F811
    server_client(real_s3).put_object(Bucket=BUCKET, Key="docs/one.txt", Body=b"1")
    log_in(page, portal, "alice")
    page.goto(f"{portal.url}/b/{BUCKET}/transfer/?prefix=docs/")
    page.get_by_label("Destination folder (empty: the top of the bucket)").fill("again")
    page.get_by_test_id("transfer-submit").click()
    expect(page.get_by_test_id("job-summary")).to_have_text(
        "Done: 1 of 1 file copied.", timeout=60_000
    )
    page.get_by_test_id("nav-jobs").click()
    expect(page.get_by_test_id("job-table")).to_contain_text(
        f"Copy of {BUCKET}/docs/ to {BUCKET}/again/"
    )
