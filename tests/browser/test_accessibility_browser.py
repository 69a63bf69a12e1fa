"""axe-core on every main page, as each persona sees it: light and dark, laptop and phone width."""

import datetime
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from sharing import services
from sharing.audit import Actor
from sharing.models import BucketGrant, BucketSettings, LinkKind, Role
from sharing.services import file_requests, folder_jobs, links
from tests.browser.test_buckets_browser import log_in
from tests.conftest import server_client

pytestmark = pytest.mark.browser

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = [(1280, 800), (390, 844)]
SCHEMES = ["light", "dark"]
BLOCKING = {"serious", "critical"}
BUCKET = "a11y-files"
KEY = "projects/2026/report-06.txt"
TABLE_KEY = "projects/2026/figures.csv"  # a table preview
# Runs axe and returns its serious and critical violations, each with the elements it names.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary)}));
}"""


@pytest.fixture
def files(real_s3, alice, bob, settings, live_server) -> str:
    """A bucket alice owns and bob reads, a file in a folder, and a share link to it."""
    settings.SITE_URL = live_server.url
    actor = Actor(user=alice, name="alice")
    services.bucket_create(actor=actor, name=BUCKET)
    BucketGrant.objects.create(user=bob, bucket=BUCKET, role=Role.READ)
    BucketSettings.objects.create(bucket=BUCKET, public_files=True)  # the upload panel's select
    server_client(real_s3).put_object(Bucket=BUCKET, Key=KEY, Body=b"Report.\n" * 300)
    server_client(real_s3).put_object(Bucket=BUCKET, Key=TABLE_KEY, Body=b"a;b\n1;2\n" * 50)
    new = links.link_create(
        actor=actor,
        bucket=BUCKET,
        key=KEY,
        expires_at=timezone.now() + datetime.timedelta(days=6, hours=23, minutes=30),
        max_downloads=3,
    )
    return f"/s/{new.token}"


def violations_on(context, live_server, paths: list[str]) -> list[str]:
    """Return one line per blocking violation on each path, width and colour scheme."""
    page = context.new_page()
    page.set_default_timeout(15_000)
    found = []
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        for scheme in SCHEMES:
            page.emulate_media(color_scheme=scheme)
            for path in paths:
                response = page.goto(live_server.url + path)
                assert response is None or response.status < 400, path  # None: only the #hash
                page.add_script_tag(path=str(AXE))
                for violation in page.evaluate(RUN_AXE):
                    assert violation["impact"] in BLOCKING
                    found.append(f"{path} {width}px {scheme}: {json.dumps(violation, indent=1)}")
    page.close()
    return found


@pytest.fixture
def new_context(browser):
    contexts = []

    def make():
        # axe is injected as an inline script, which the portal's CSP refuses: this test
        # alone bypasses it (the other browser tests run under the CSP).
        contexts.append(browser.new_context(bypass_csp=True))
        return contexts[-1]

    yield make
    for context in contexts:
        context.close()


def test_login_and_recipient_pages(new_context, live_server, files):
    context = new_context()
    found = violations_on(context, live_server, ["/login/", "/account/reset/", files])
    assert not found, "\n".join(found)


@pytest.mark.parametrize("username", ["alice", "bob"])
def test_pages_of_a_member(new_context, live_server, files, username):
    context = new_context()
    log_in(context.new_page(), live_server, username)
    folder = f"/b/{BUCKET}/?{urlencode({'prefix': 'projects/2026/'})}"
    file = f"/b/{BUCKET}/object/?{urlencode({'key': KEY})}"
    paths = ["/buckets/", folder, file, file + "#share", "/links/", "/activity/", "/account/"]
    paths += ["/jobs/"]
    paths += ["/account/password/", f"{folder}&view=grid", f"{folder}&view=list"]
    paths += [f"/b/{BUCKET}/object/?{urlencode({'key': TABLE_KEY})}"]
    paths += [f"/b/{BUCKET}/search/?{urlencode({'q': 'report', 'type': 'text'})}"]
    found = violations_on(context, live_server, paths)
    assert not found, "\n".join(found)


def test_admin_pages(new_context, live_server, files, admin_user):
    context = new_context()
    log_in(context.new_page(), live_server, "root")
    paths = ["/admin/", "/admin/sharing/auditevent/", "/admin/sharing/sharelink/"]
    paths += ["/admin/sharing/filerequest/"]
    found = violations_on(context, live_server, paths)
    assert not found, "\n".join(found)


def test_audit_changelist_columns_fit_a_laptop(page, live_server, files, admin_user):
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/sharing/auditevent/")
    headers = page.locator("#result_list thead th")
    expect(headers.first).to_be_visible()
    assert headers.count() >= 5
    for index in range(headers.count()):
        box = headers.nth(index).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 1280, headers.nth(index)
    bucket = page.locator("#result_list td.field-subject .audit-bucket").first
    assert bucket.bounding_box()["height"] < 30  # the bucket name on one line


def test_skip_link_is_the_first_tab_and_reaches_the_content(page, live_server, files):
    log_in(page, live_server, "alice")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    skip.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/buckets/#content")


def test_object_page_opens_the_sharing_tools_at_share(page, live_server, files):
    log_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/b/{BUCKET}/object/?{urlencode({'key': KEY})}")
    expect(page.get_by_test_id("create-link")).to_be_hidden()  # compact until asked
    page.get_by_test_id("share-open").click()
    expect(page.get_by_test_id("create-link")).to_be_visible()
    page.get_by_test_id("email-open").click()  # one tool open at a time
    expect(page.get_by_test_id("send-links")).to_be_visible()
    expect(page.get_by_test_id("create-link")).to_be_hidden()


def test_folder_link_and_file_request_pages(new_context, live_server, files, alice):
    actor = Actor(user=alice, name="alice")
    in_a_week = timezone.now() + datetime.timedelta(days=6)
    folder_link = links.link_create(
        actor=actor, bucket=BUCKET, key="projects/", kind=LinkKind.FOLDER, expires_at=in_a_week
    )
    request = file_requests.file_request_create(
        actor=actor,
        bucket=BUCKET,
        prefix="inbox/",
        title="Your invoices",
        message="Please send the March invoices.",
        expires_at=in_a_week,
        max_bytes=10 * 1024**2,
        max_files=3,
    )
    outsider = new_context()
    recipient_pages = [f"/s/{folder_link.token}", f"/s/{folder_link.token}?path=2026/"]
    found = violations_on(outsider, live_server, [*recipient_pages, f"/r/{request.token}"])
    member = new_context()
    log_in(member.new_page(), live_server, "alice")
    folder = urlencode({"prefix": "projects/2026/"})
    paths = [f"/b/{BUCKET}/share-many/?{folder}", f"/b/{BUCKET}/request-files/?{folder}"]
    paths += [f"/links/{folder_link.link.pk}/"]
    job = folder_jobs.folder_job_start(
        actor=actor, kind="delete", bucket=BUCKET, prefix="projects/"
    )
    paths += [f"/jobs/{job.id}/", "/jobs/"]
    found += violations_on(member, live_server, paths)
    assert not found, "\n".join(found)
