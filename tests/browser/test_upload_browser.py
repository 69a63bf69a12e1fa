"""Uploading in the browser: drop files into a folder, watch them finish, replace, cancel, resume."""

import json
import re
import threading
import time

import pytest
from playwright.sync_api import expect
from pytest_django.live_server_helper import LiveServer

from sharing import services
from sharing.audit import Actor
from sharing.models import PendingUpload
from tests.browser.test_buckets_browser import log_in
from tests.conftest import audit_rows, server_client

pytestmark = pytest.mark.browser

BUCKET = "browser-uploads"
MIB = 1024**2
# Records every state a row goes through (across the reload that follows a finished batch) and
# every CSP violation, in sessionStorage, before any script of the page runs.
RECORDER = """
(() => {
  const keep = (name, value) => {
    const list = JSON.parse(sessionStorage.getItem(name) || '[]')
    list.push(value)
    sessionStorage.setItem(name, JSON.stringify(list))
  }
  document.addEventListener('securitypolicyviolation', (event) => {
    keep('test:csp', `${event.violatedDirective} ${event.blockedURI}`)
  })
  new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      const row = mutation.target.closest && mutation.target.closest('[data-file-id]')
      if (!row) continue
      const progress = row.querySelector('progress')
      keep('test:states', [row.querySelector('.upload-name').textContent, row.dataset.state,
        progress && progress.hasAttribute('value') ? progress.value : null,
        row.querySelector('.upload-status').textContent])
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-state', 'value'] })
})()
"""
# Builds files in the page (a deterministic byte pattern) and drops them on the upload panel.
DROP = """
([selector, files]) => {
  const transfer = new DataTransfer()
  for (const [name, size, type] of files) {
    const bytes = new Uint8Array(size)
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + name.length) % 251
    transfer.items.add(new File([bytes], name, { type }))
  }
  const target = document.querySelector(selector)
  for (const kind of ['dragenter', 'dragover', 'drop']) {
    target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }))
  }
}
"""


def pattern(name: str, size: int) -> bytes:
    """Return the bytes DROP puts in a file of that name and size."""
    return bytes((i * 31 + len(name)) % 251 for i in range(size))


class OneRequestAtATime:
    """Runs one request at a time: the live server's threads share the test's SQLite connection,
    which fails ("cannot open savepoint") when two uploads write audit rows at the same moment."""

    def __init__(self, app) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return self.app(environ, start_response)


@pytest.fixture
def portal(real_s3, transactional_db, settings, alice):
    """A live server started after settings point at the embedded S3 (its CSP names that origin)."""
    settings.UPLOAD_PART_BYTES = 5 * MIB
    services.bucket_create(actor=Actor(user=alice, name="alice"), name=BUCKET)
    server = LiveServer("localhost")
    server.thread.httpd.set_app(OneRequestAtATime(server.thread.httpd.get_app()))
    yield server
    # The browser is closed by now (tests ask for `portal` before `page`); its connections'
    # threads must end before the shared database connection stops being shareable.
    for _ in range(100):
        if not any("process_request_thread" in t.name for t in threading.enumerate()):
            break
        time.sleep(0.05)
    server.stop()


def open_folder(page, portal, prefix: str = "docs/") -> list[str]:
    """Log in and open a folder; return the list the console's CSP complaints are collected in."""
    page.add_init_script(RECORDER)
    complaints: list[str] = []
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    log_in(page, portal, "alice")
    page.goto(f"{portal.url}/b/{BUCKET}/?prefix={prefix}")
    expect(page.locator("#upload-panel[data-ready=true]")).to_be_attached()
    return complaints


def drop(page, *files: tuple[str, int, str]) -> None:
    page.evaluate(DROP, ["[data-upload-drop]", [list(f) for f in files]])


def wait_until(page, condition, seconds: float = 20) -> None:
    """Let the page run until the condition holds (route handlers run meanwhile)."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("the condition never held")


def assert_no_csp_violation(page, complaints: list[str]) -> None:
    assert session_list(page, "test:csp") == []
    assert complaints == []


def session_list(page, name: str) -> list:
    return json.loads(page.evaluate(f"sessionStorage.getItem('{name}') || '[]'"))


def multipart_uploads(real_s3) -> list:
    return server_client(real_s3).list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def stored(real_s3, key: str) -> bytes:
    return server_client(real_s3).get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_drop_two_files_into_a_folder(portal, page, real_s3):
    complaints = open_folder(page, portal)
    big = ("big data.bin", 12 * MIB + 5, "application/octet-stream")  # three parts
    small = ("résumé 2026.txt", 2026, "text/plain")  # one request
    drop(page, big, small)

    # The finished batch reloads the page, which then lists the new files.
    expect(page.get_by_test_id("upload-summary")).to_have_text("2 files uploaded.", timeout=60_000)
    table = page.get_by_test_id("object-table")
    expect(table).to_contain_text("résumé 2026.txt")
    expect(table).to_contain_text("big data.bin")
    drop(page, ("empty.txt", 0, "text/plain"))
    expect(page.get_by_test_id("upload-summary")).to_have_text("1 file uploaded.", timeout=60_000)
    expect(table).to_contain_text("empty.txt")
    assert stored(real_s3, "docs/empty.txt") == b""

    states = session_list(page, "test:states")
    big_states = [(state, value, text) for name, state, value, text in states if name == big[0]]
    # Progress went up part by part, then the row said how fast the file went.
    assert any(state == "uploading" and 0 < value < 100 for state, value, _ in big_states)
    assert big_states[-1][:2] == ("done", 100)
    assert re.fullmatch(r"Uploaded · 13 MB · [\d.]+ [KMG]?B/s", big_states[-1][2])
    assert ("done", 100) in [(s, v) for name, s, v, _ in states if name == small[0]]

    assert stored(real_s3, "docs/big data.bin") == pattern(*big[:2])
    assert stored(real_s3, "docs/résumé 2026.txt") == pattern(*small[:2])
    head = server_client(real_s3).head_object(Bucket=BUCKET, Key="docs/résumé 2026.txt")
    assert head["ContentType"] == "text/plain"
    for key in ("docs/big data.bin", "docs/résumé 2026.txt"):
        rows = audit_rows(key=key, action__startswith="upload.")
        assert ("upload.start", "outcome", "success") in rows
        assert ("upload.complete", "outcome", "success") in rows
    assert multipart_uploads(real_s3) == []
    assert PendingUpload.objects.count() == 0
    assert_no_csp_violation(page, complaints)


def test_existing_name_asks_before_replacing(portal, page, real_s3):
    server_client(real_s3).put_object(Bucket=BUCKET, Key="docs/report.txt", Body=b"the original")
    complaints = open_folder(page, portal)
    drop(page, ("report.txt", 300, "text/plain"))
    question = page.get_by_test_id("upload-overwrite")
    expect(question).to_be_visible()
    expect(question).to_contain_text("docs/report.txt")
    page.get_by_test_id("upload-skip").click()
    row = page.locator("[data-file-id]", has_text="report.txt")
    expect(row).to_have_attribute("data-state", "refused")
    expect(row).to_contain_text("Skipped")
    assert stored(real_s3, "docs/report.txt") == b"the original"

    drop(page, ("report.txt", 300, "text/plain"))
    page.get_by_test_id("upload-replace").click()
    expect(page.locator("[data-file-id][data-state=done]", has_text="report.txt")).to_be_visible()
    assert stored(real_s3, "docs/report.txt") == pattern("report.txt", 300)
    assert_no_csp_violation(page, complaints)


def test_cancel_leaves_no_parts_behind(portal, page, real_s3):
    complaints = open_folder(page, portal)
    held = []
    # Part 3 never reaches S3 until the test lets it go, so the upload is caught mid-way.
    page.route(re.compile(r"partNumber=3&"), lambda route: held.append(route))
    drop(page, ("cancel me.bin", 20 * MIB, "application/octet-stream"))
    row = page.locator("[data-file-id]", has_text="cancel me.bin")
    wait_until(page, lambda: held)
    expect(row).to_have_attribute("data-state", "uploading")
    expect(row.locator("progress")).to_have_attribute("value", re.compile(r"^[1-9]\d$"))
    assert len(multipart_uploads(real_s3)) == 1

    row.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(0)
    wait_until(page, lambda: not multipart_uploads(real_s3) and not PendingUpload.objects.exists())
    assert not PendingUpload.objects.exists()
    assert ("upload.abort", "outcome", "success") in audit_rows(key="docs/cancel me.bin")
    assert_no_csp_violation(page, complaints)


def test_interrupted_upload_resumes_after_reload(portal, page, real_s3, tmp_path):
    source = tmp_path / "resume me.bin"
    content = pattern("resume me.bin", 15 * MIB + 7)  # four parts, the last 7 bytes
    source.write_bytes(content)
    complaints = open_folder(page, portal)
    held = []
    page.route(re.compile(r"partNumber=3&"), lambda route: held.append(route))
    page.get_by_test_id("upload-input-files").set_input_files(source)
    wait_until(page, lambda: held)
    row = page.locator("[data-file-id]", has_text="resume me.bin")
    expect(row.locator("progress")).to_have_attribute("value", re.compile(r"^[1-9]\d$"))

    page.unroute(re.compile(r"partNumber=3&"))
    page.reload()  # the page closes with the upload half done
    restore = page.get_by_test_id("upload-restore")
    expect(restore).to_contain_text(
        "1 upload was interrupted. To resume, choose this file again: resume me.bin"
    )
    page.get_by_test_id("upload-input-files").set_input_files(source)
    page.get_by_test_id("upload-resume").click()
    expect(page.get_by_test_id("upload-summary")).to_have_text("1 file uploaded.", timeout=60_000)

    assert stored(real_s3, "docs/resume me.bin") == content
    rows = audit_rows(key="docs/resume me.bin", action__startswith="upload.")
    assert rows.count(("upload.start", "outcome", "success")) == 1  # resumed, not restarted
    assert ("upload.list_parts", "outcome", "success") in rows
    assert multipart_uploads(real_s3) == []
    assert_no_csp_violation(page, complaints)


def test_upload_carries_on_after_the_connection_drops(portal, page, real_s3):
    complaints = open_folder(page, portal)
    held = []
    part_3 = re.compile(r"partNumber=3&")
    page.route(part_3, lambda route: held.append(route))
    drop(page, ("flaky.bin", 16 * MIB, "application/octet-stream"))
    wait_until(page, lambda: held)
    page.context.set_offline(True)
    held[0].abort("internetdisconnected")
    row = page.locator("[data-file-id]", has_text="flaky.bin")
    expect(row).to_have_attribute("data-state", "error")
    page.unroute(part_3)
    page.context.set_offline(False)  # back online: the upload resumes by itself

    expect(page.get_by_test_id("upload-summary")).to_have_text("1 file uploaded.", timeout=60_000)
    assert stored(real_s3, "docs/flaky.bin") == pattern("flaky.bin", 16 * MIB)
    rows = audit_rows(key="docs/flaky.bin", action__startswith="upload.")
    assert rows.count(("upload.start", "outcome", "success")) == 1
    assert ("upload.list_parts", "outcome", "success") in rows
    assert multipart_uploads(real_s3) == []
    assert_no_csp_violation(page, complaints)


def test_folder_keeps_its_structure(portal, page, real_s3, tmp_path):
    (tmp_path / "trip" / "day 1").mkdir(parents=True)
    (tmp_path / "trip" / "day 1" / "photo.jpg").write_bytes(b"\xff\xd8 a photo")
    (tmp_path / "trip" / "notes.txt").write_text("packing list")
    complaints = open_folder(page, portal)
    page.get_by_test_id("upload-input-folder").set_input_files(tmp_path / "trip")
    expect(page.get_by_test_id("upload-summary")).to_have_text("2 files uploaded.", timeout=60_000)
    expect(page.get_by_test_id("object-table")).to_contain_text("trip/")
    assert stored(real_s3, "docs/trip/day 1/photo.jpg") == b"\xff\xd8 a photo"
    assert stored(real_s3, "docs/trip/notes.txt") == b"packing list"
    assert_no_csp_violation(page, complaints)


def test_parts_pass_through_the_portal_when_configured(portal, page, real_s3, settings):
    settings.UPLOAD_VIA_PORTAL = True
    complaints = open_folder(page, portal)
    drop(page, ("proxied.bin", 11 * MIB, "application/octet-stream"), ("tiny.txt", 0, "text/plain"))
    expect(page.get_by_test_id("upload-summary")).to_have_text("2 files uploaded.", timeout=60_000)
    assert stored(real_s3, "docs/proxied.bin") == pattern("proxied.bin", 11 * MIB)
    assert stored(real_s3, "docs/tiny.txt") == b""
    parts = audit_rows(key="docs/proxied.bin", action="upload.part", phase="outcome")
    assert parts == [("upload.part", "outcome", "success")] * 3
    assert_no_csp_violation(page, complaints)


def test_panel_fits_a_phone_screen(portal, page, real_s3):
    page.set_viewport_size({"width": 375, "height": 740})
    complaints = open_folder(page, portal)
    # A refused name keeps its row (and its long reason) on screen.
    drop(page, ("a rather long file name that must wrap\u200b.txt", 10, "text/plain"))
    row = page.locator("[data-file-id][data-state=refused]")
    expect(row).to_contain_text("invisible or text-direction characters")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert_no_csp_violation(page, complaints)
