"""Previews in chromium on the embedded S3: a CSV as a table, images from S3 under the page's CSP."""

import datetime
import io
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from sharing import services
from sharing.audit import Actor
from sharing.services import links
from tests.browser.test_accessibility_browser import violations_on
from tests.browser.test_buckets_browser import log_in
from tests.conftest import server_client

pytestmark = pytest.mark.browser
BUCKET = "preview-journey"
CSV = "city;country;people\nLondon;United Kingdom;8982000\nLyon;France;522000\n"
WIDE_CSV = ",".join(f"column number {n}" for n in range(30)) + "\n" + ",".join("x" * 30) + "\n"
HOSTILE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="16" onload="alert(1)">'
    '<script>alert(2)</script><rect width="24" height="16" fill="teal"/></svg>'
)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def files(real_s3, alice, settings, live_server) -> None:
    settings.SITE_URL = live_server.url
    services.bucket_create(actor=Actor(user=alice, name="alice"), name=BUCKET)
    raw = server_client(real_s3)
    raw.put_object(Bucket=BUCKET, Key="data/cities.csv", Body=CSV.encode())
    raw.put_object(Bucket=BUCKET, Key="data/wide.csv", Body=WIDE_CSV.encode())
    raw.put_object(Bucket=BUCKET, Key="img/photo.png", Body=png(40, 30), ContentType="image/png")
    raw.put_object(Bucket=BUCKET, Key="img/logo.svg", Body=HOSTILE_SVG.encode())


def object_page(live_server, key: str) -> str:
    return f"{live_server.url}/b/{BUCKET}/object/?{urlencode({'key': key})}"


def test_a_csv_previews_as_a_table(page, live_server, alice, files):
    log_in(page, live_server, "alice")
    page.goto(object_page(live_server, "data/cities.csv"))
    table = page.get_by_test_id("preview-table")
    expect(table.get_by_role("columnheader", name="country")).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(3)
    expect(table.get_by_role("cell", name="Lyon")).to_be_visible()
    expect(table.get_by_role("cell", name="8982000")).to_be_visible()


def test_a_wide_table_scrolls_inside_its_box_on_a_phone(page, live_server, alice, files):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "alice")
    page.goto(object_page(live_server, "data/wide.csv"))
    box = page.locator(".preview-table")
    expect(box.get_by_role("columnheader", name="column number 29")).to_be_attached()
    widths = box.evaluate("(el) => [el.scrollWidth, el.clientWidth]")
    assert widths[0] > widths[1]  # the table is wider than its box, which scrolls
    right = box.evaluate("(el) => el.getBoundingClientRect().right")
    assert right <= 390  # the box itself fits the phone's width


def test_an_image_previews_from_s3(page, live_server, alice, files):
    log_in(page, live_server, "alice")
    page.goto(object_page(live_server, "img/photo.png"))
    image = page.get_by_test_id("preview-image")
    expect(image).to_be_visible()
    expect(image).to_have_js_property("naturalWidth", 40)
    expect(image).to_have_js_property("naturalHeight", 30)


def test_a_hostile_svg_shows_as_an_image_and_runs_nothing(page, live_server, alice, files):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server, "alice")
    page.goto(object_page(live_server, "img/logo.svg"))
    image = page.get_by_test_id("preview-image")
    expect(image).to_have_js_property("naturalWidth", 24)
    page.get_by_text("View source").click()
    expect(page.get_by_test_id("preview-source")).to_contain_text("<script>alert(2)</script>")
    assert dialogs == []


def test_a_link_recipient_sees_the_image_preview(browser, live_server, alice, files):
    new = links.link_create(
        actor=Actor(user=alice, name="alice"),
        bucket=BUCKET,
        key="img/photo.png",
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{new.token}")
    expect(page.get_by_test_id("file-name")).to_have_text("photo.png")
    expect(page.get_by_test_id("preview-image")).to_have_js_property("naturalWidth", 40)
    context.close()


def test_preview_pages_pass_axe(browser, live_server, alice, files, real_s3):
    server_client(real_s3).put_object(
        Bucket=BUCKET,
        Key="docs/README.md",
        Body=b"# Title\n\n*Notes*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
    )
    new = links.link_create(
        actor=Actor(user=alice, name="alice"),
        bucket=BUCKET,
        key="data/cities.csv",
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    # axe is injected as an inline script, which the portal's CSP refuses: bypassed here only.
    context = browser.new_context(bypass_csp=True)
    log_in(context.new_page(), live_server, "alice")
    paths = [
        object_page(live_server, key).removeprefix(live_server.url)
        for key in ("data/wide.csv", "img/photo.png", "img/logo.svg", "docs/README.md")
    ]
    found = violations_on(context, live_server, [*paths, f"/s/{new.token}"])
    context.close()
    assert not found, "\n".join(found)
