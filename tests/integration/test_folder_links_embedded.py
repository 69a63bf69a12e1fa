"""Folder and selection share links against the real embedded S3 server: the presigned URL of
one file of a folder really serves that file (and only it), and "Download all" streams a ZIP."""

import datetime
import io
import urllib.error
import urllib.request
import zipfile

import pytest
from django.test import Client
from django.utils import timezone

from sharing import services
from sharing.audit import Actor
from sharing.models import ShareLink
from sharing.services import links
from tests.conftest import server_client

pytestmark = pytest.mark.integration

FILES = {
    "album/one.txt": b"first file",
    "album/deep/two.txt": b"second file",
    "album-private/secret.txt": b"do not share",
}


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 — S3's http URL
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def album(real_s3, alice) -> str:
    services.bucket_create(actor=Actor(user=alice, name="alice"), name="real-album")
    s3_client = server_client(real_s3)
    for key, body in FILES.items():
        s3_client.put_object(Bucket="real-album", Key=key, Body=body)
    return "real-album"


def folder_link(alice, bucket: str) -> links.NewLink:
    return links.link_create(
        actor=Actor(user=alice, name="alice"),
        bucket=bucket,
        key="album/",
        kind="folder",
        expires_at=timezone.now() + datetime.timedelta(hours=1),
        max_downloads=3,
    )


def test_one_file_of_a_folder_link_downloads_from_real_s3(alice, album):
    new = folder_link(alice, album)
    client = Client()
    page = client.get(f"/s/{new.token}")
    assert page.status_code == 200 and b"one.txt" in page.content
    assert b"secret" not in page.content
    response = client.post(f"/s/{new.token}/file", {"name": "deep/two.txt"})
    assert response.status_code == 302
    assert fetch(response["Location"]) == (200, b"second file")
    # The signature covers the key: the URL cannot be bent to reach the private sibling.
    bent = response["Location"].replace("album/deep/two.txt", "album-private/secret.txt")
    assert fetch(bent)[0] == 403
    refused = client.post(f"/s/{new.token}/file", {"name": "../album-private/secret.txt"})
    assert refused.status_code == 404
    assert ShareLink.objects.get().downloads == 1


def test_download_all_streams_the_folder_from_real_s3(alice, album):
    new = folder_link(alice, album)
    response = Client().post(f"/s/{new.token}/all", {"path": ""})
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == {
            "one.txt": b"first file",
            "deep/two.txt": b"second file",
        }
    assert ShareLink.objects.get().downloads == 1
