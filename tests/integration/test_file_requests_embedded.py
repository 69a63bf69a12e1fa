"""File requests against the real embedded S3 server: signed lengths, conditional names, revoke."""

import datetime
import json
import urllib.error
import urllib.request

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing import s3, services
from sharing.audit import Actor
from sharing.models import FileRequest, PendingUpload
from sharing.services import file_requests
from tests.conftest import server_client

pytestmark = pytest.mark.integration

MIB = 1024**2
BUCKET = "real-requests"


@pytest.fixture
def bucket(real_s3, alice, settings):
    settings.UPLOAD_PART_BYTES = 5 * MIB
    settings.UPLOAD_VIA_PORTAL = False
    services.bucket_create(actor=Actor(user=alice, name="alice"), name=BUCKET)
    return BUCKET


@pytest.fixture
def new_request(alice, bucket):
    return file_requests.file_request_create(
        actor=Actor(user=alice),
        bucket=bucket,
        prefix="drop/",
        title="Photos",
        message="",
        expires_at=timezone.now() + datetime.timedelta(days=1),
        max_bytes=30 * MIB,
        max_files=4,
    )


def put(url: str, body: bytes, headers: dict | None = None) -> int:
    # Only URLs the portal signed for its own storage server are opened here.
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def call(browser: Client, visit: str, name: str, data: dict) -> tuple[int, dict]:
    url = reverse(f"file_request_upload_{name}", args=[visit])
    response = browser.post(url, json.dumps(data), content_type="application/json")
    return response.status_code, response.json()


def open_visit(browser: Client, token: str) -> str:
    assert browser.get(f"/r/{token}").status_code == 200
    return next(iter(browser.session["file_request_visits"].values()))


def content(size: int) -> bytes:
    return bytes((i * 7 + 3) % 256 for i in range(size))


def test_outsider_uploads_in_parts_and_owner_is_told(new_request, bucket, real_s3, alice):
    browser = Client()
    visit = open_visit(browser, new_request.token)
    data = content(11 * MIB + 5)
    status, started = call(
        browser, visit, "create", {"key": "film.mov", "size": len(data), "multipart": True}
    )
    assert status == 200
    for number in range(1, s3.part_count(len(data)) + 1):
        signed = call(browser, visit, "sign", {"uploadId": started["uploadId"], "part": number})
        offset = (number - 1) * 5 * MIB
        assert (
            put(signed[1]["url"], data[offset : offset + s3.part_length(len(data), number)]) == 200
        )
    status, done = call(browser, visit, "complete", {"uploadId": started["uploadId"]})
    assert status == 200 and done["key"] == "drop/film.mov"
    stored = server_client(real_s3).get_object(Bucket=bucket, Key="drop/film.mov")["Body"].read()
    assert stored == data
    browser.post(reverse("file_request_done", args=[visit]))
    assert len(mail.outbox) == 1 and "drop/film.mov" in mail.outbox[0].body


def test_a_one_request_file_goes_through_the_portal_for_its_declared_length(
    new_request, bucket, real_s3
):
    browser = Client()
    visit = open_visit(browser, new_request.token)
    status, started = call(
        browser, visit, "create", {"key": "a.txt", "size": 5, "type": "text/plain"}
    )
    # Through the portal, whose PUT to S3 is conditional (Uppy's S3 client sends no header).
    assert started["url"].startswith(f"/file-requests/visits/{visit}/uploads/proxy/")
    longer = browser.put(started["url"], b"x" * 500, content_type="text/plain")
    assert 400 <= longer.status_code < 500
    assert browser.put(started["url"], b"hello", content_type="text/plain").status_code == 200
    status, done = call(browser, visit, "complete", {"uploadId": started["uploadId"]})
    assert status == 200 and done["size"] == 5
    request = FileRequest.objects.get()
    assert (request.files_received, request.bytes_received, request.bytes_reserved) == (1, 5, 0)


def test_a_one_request_file_never_replaces_a_name_taken_meanwhile(new_request, bucket, real_s3):
    browser = Client()
    visit = open_visit(browser, new_request.token)
    status, started = call(browser, visit, "create", {"key": "note.txt", "size": 4})
    server_client(real_s3).put_object(Bucket=bucket, Key=started["key"], Body=b"theirs")
    sent = browser.put(started["url"], b"mine", content_type="application/octet-stream")
    assert 400 <= sent.status_code < 500, sent.content
    kept = server_client(real_s3).get_object(Bucket=bucket, Key=started["key"])["Body"].read()
    assert kept == b"theirs"


def test_a_name_taken_meanwhile_is_not_overwritten(new_request, bucket, real_s3):
    browser = Client()
    visit = open_visit(browser, new_request.token)
    data = content(6 * MIB)
    status, started = call(
        browser, visit, "create", {"key": "race.bin", "size": len(data), "multipart": True}
    )
    for number in (1, 2):
        signed = call(browser, visit, "sign", {"uploadId": started["uploadId"], "part": number})
        offset = (number - 1) * 5 * MIB
        put(signed[1]["url"], data[offset : offset + s3.part_length(len(data), number)])
    server_client(real_s3).put_object(Bucket=bucket, Key="drop/race.bin", Body=b"theirs")
    status, body = call(browser, visit, "complete", {"uploadId": started["uploadId"]})
    assert status == 409
    kept = server_client(real_s3).get_object(Bucket=bucket, Key="drop/race.bin")["Body"].read()
    assert kept == b"theirs"
    assert not PendingUpload.objects.exists()
    assert FileRequest.objects.get().bytes_reserved == 0


def test_revoked_request_refuses_the_remaining_parts(new_request, bucket, real_s3, alice):
    browser = Client()
    visit = open_visit(browser, new_request.token)
    data = content(11 * MIB)
    status, started = call(
        browser, visit, "create", {"key": "big.bin", "size": len(data), "multipart": True}
    )
    signed = call(browser, visit, "sign", {"uploadId": started["uploadId"], "part": 1})
    assert put(signed[1]["url"], data[: 5 * MIB]) == 200
    file_requests.file_request_revoke(actor=Actor(user=alice), request=new_request.request)
    status, body = call(browser, visit, "sign", {"uploadId": started["uploadId"], "part": 2})
    assert status == 410
    assert call(browser, visit, "complete", {"uploadId": started["uploadId"]})[0] == 410
    assert s3.head(bucket, "drop/big.bin") is None


def test_parts_pass_through_the_portal_when_configured(new_request, bucket, real_s3, settings):
    settings.UPLOAD_VIA_PORTAL = True
    browser, stranger = Client(), Client()
    visit = open_visit(browser, new_request.token)
    data = content(6 * MIB)
    status, started = call(
        browser, visit, "create", {"key": "via.bin", "size": len(data), "multipart": True}
    )
    for number in (1, 2):
        signed = call(browser, visit, "sign", {"uploadId": started["uploadId"], "part": number})
        assert signed[1]["url"].startswith(f"/file-requests/visits/{visit}/uploads/proxy/")
        offset = (number - 1) * 5 * MIB
        body = data[offset : offset + s3.part_length(len(data), number)]
        # Another browser, without the visit in its session, cannot use the signed URL.
        refused = stranger.put(signed[1]["url"], body, content_type="application/octet-stream")
        assert refused.status_code == 404
        response = browser.put(signed[1]["url"], body, content_type="application/octet-stream")
        assert response.status_code == 200, response.content
    assert call(browser, visit, "complete", {"uploadId": started["uploadId"]})[0] == 200
    stored = server_client(real_s3).get_object(Bucket=bucket, Key="drop/via.bin")["Body"].read()
    assert stored == data
