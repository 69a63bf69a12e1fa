"""Thumbnails in the browser: upload a picture, the task makes its thumbnail, the grid shows it."""

import base64
import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from sharing.models import Thumbnail, ThumbnailState
from tests.browser.test_upload_browser import (  # noqa: F401
    BUCKET,
    assert_no_csp_violation,
    open_folder,
    portal,
    wait_until,
)

pytestmark = pytest.mark.browser
# Drops one file with the given bytes (base64) on the upload panel.
DROP_BYTES = """
([selector, name, type, encoded]) => {
  const text = atob(encoded)
  const bytes = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i)
  const transfer = new DataTransfer()
  transfer.items.add(new File([bytes], name, { type }))
  const target = document.querySelector(selector)
  for (const kind of ['dragenter', 'dragover', 'drop']) {
    target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }))
  }
}
"""


def picture(width: int, height: int) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (width, height), (230, 120, 20)).save(output, "JPEG")
    return output.getvalue()


def test_an_uploaded_picture_shows_its_thumbnail_in_the_grid(portal, page, run_tasks):  # noqa: F811
    complaints = open_folder(page, portal)
    encoded = base64.b64encode(picture(600, 300)).decode()
    page.evaluate(DROP_BYTES, ["[data-upload-drop]", "sunset.jpg", "image/jpeg", encoded])
    wait_until(page, lambda: Thumbnail.objects.filter(key="docs/sunset.jpg").exists())
    expect(
        page.get_by_test_id("object-table").get_by_role("link", name="sunset.jpg")
    ).to_be_visible()
    run_tasks()
    assert Thumbnail.objects.get(key="docs/sunset.jpg").state == ThumbnailState.READY

    page.get_by_test_id("view-grid").click()
    grid = page.get_by_test_id("object-grid")
    expect(grid).to_be_visible()
    thumbnail = grid.get_by_alt_text("Thumbnail of sunset.jpg")
    expect(thumbnail).to_have_js_property("complete", True)
    expect(thumbnail).to_have_js_property("naturalWidth", 256)
    assert thumbnail.evaluate("(image) => image.naturalHeight") == 128
    # Selecting every item works in the grid as in the list.
    page.get_by_label("Select every item on this page").check()
    boxes = grid.locator('input[name="keys"]')
    expect(boxes).to_have_count(1)
    expect(boxes.first).to_be_checked()
    # The grid stays chosen on the next visit, and the card's box does not follow the picture.
    page.reload()
    expect(page.get_by_test_id("view-grid")).to_have_attribute("aria-current", "page")
    box = grid.locator(".grid-thumb").first.bounding_box()
    assert box and abs(box["width"] - box["height"]) < 1
    page.get_by_test_id("view-list").click()
    expect(
        page.get_by_test_id("object-table").get_by_alt_text("Thumbnail of sunset.jpg")
    ).to_be_visible()
    assert_no_csp_violation(page, complaints)
