"""A folder shared by link in the browser: made from the folder page, opened by a stranger
without login, downloaded whole as a ZIP whose files are the bytes that were shared."""

import io
import re
import zipfile

import pytest
from playwright.sync_api import expect

from sharing import services
from sharing.audit import Actor
from sharing.models import ShareLink
from tests.browser.test_buckets_browser import log_in
from tests.conftest import server_client

pytestmark = pytest.mark.browser

FILES = {
    "trip/day one.txt": "Day one — ünïcode.\n".encode() * 20,
    "trip/day two.txt": b"Day two.\n" * 30,
    "trip/maps/route.txt": b"North, then east.\n",
}


@pytest.fixture
def trip(real_s3, alice, settings, live_server) -> str:
    settings.SITE_URL = live_server.url  # links in the page are built from SITE_URL
    services.bucket_create(actor=Actor(user=alice, name="alice"), name="browser-trip")
    s3_client = server_client(real_s3)
    for key, body in FILES.items():
        s3_client.put_object(Bucket="browser-trip", Key=key, Body=body)
    s3_client.put_object(Bucket="browser-trip", Key="trip-private/secret.txt", Body=b"no")
    return f"{live_server.url}/b/browser-trip/?prefix=trip/"


def test_folder_shared_by_link_and_downloaded_whole(page, browser, live_server, trip, tmp_path):
    log_in(page, live_server, "alice")
    page.goto(trip)
    page.get_by_test_id("share-folder").click()
    expect(page.get_by_test_id("share-preview")).to_contain_text("day one.txt")
    expect(page.get_by_test_id("share-many")).to_contain_text("counts as one download")
    panel = page.get_by_test_id("link-create")
    panel.get_by_label("1 hour").check()
    panel.get_by_test_id("create-link").click()
    expect(page.get_by_text("Copy the link now")).to_be_visible()
    expect(page.get_by_test_id("back-to-file")).to_have_text("Back to the folder")
    url = page.get_by_test_id("created-url").input_value()
    assert re.fullmatch(rf"{re.escape(live_server.url)}/s/[A-Za-z0-9_-]{{43}}", url)

    stranger = browser.new_context(accept_downloads=True)
    try:
        visitor = stranger.new_page()
        visitor.set_default_timeout(15_000)
        assert visitor.goto(url).status == 200
        files = visitor.get_by_test_id("link-files")
        expect(files).to_contain_text("day one.txt")
        expect(files).to_contain_text("maps/")
        expect(visitor.get_by_test_id("recipient-page")).not_to_contain_text("secret")
        with visitor.expect_download() as caught:
            visitor.get_by_test_id("download-all").click()
        saved = tmp_path / "trip.zip"
        caught.value.save_as(saved)
        with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
            got = {name: archive.read(name) for name in archive.namelist()}
        assert got == {key.removeprefix("trip/"): body for key, body in FILES.items()}
        assert ShareLink.objects.get().downloads == 1
    finally:
        stranger.close()


def test_selection_shared_from_the_toolbar_shows_only_the_chosen(page, browser, live_server, trip):
    log_in(page, live_server, "alice")
    page.goto(trip)
    page.get_by_label("Select day one.txt").check()
    page.get_by_label("Select folder maps").check()
    page.get_by_test_id("share-selected").click()
    expect(page.get_by_test_id("share-preview")).to_contain_text("day one.txt")
    expect(page.get_by_test_id("share-preview")).not_to_contain_text("day two.txt")
    page.get_by_test_id("link-create").get_by_test_id("create-link").click()
    url = page.get_by_test_id("created-url").input_value()
    assert sorted(ShareLink.objects.get().keys) == ["trip/day one.txt", "trip/maps/"]

    stranger = browser.new_context()
    try:
        visitor = stranger.new_page()
        visitor.set_default_timeout(15_000)
        visitor.goto(url)
        files = visitor.get_by_test_id("link-files")
        expect(files).to_contain_text("day one.txt")
        expect(files).not_to_contain_text("day two.txt")
        visitor.get_by_test_id("link-folder").click()
        expect(visitor.get_by_test_id("link-files")).to_contain_text("route.txt")
    finally:
        stranger.close()
