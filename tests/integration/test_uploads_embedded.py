"""Uploads against the real embedded S3 server: what moto does not enforce (signed lengths,
expiry, conditional writes, CORS) and the whole path, direct and through the portal."""

import datetime
import http.client
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from sharing import s3, services
from sharing.audit import Actor
from sharing.models import AuditEvent, PendingUpload
from sharing.services import upload_cleanup
from tests.conftest import audit_rows, client_for, server_client

pytestmark = pytest.mark.integration

MIB = 1024**2
BUCKET = "real-uploads"


@pytest.fixture
def bucket(real_s3, alice, settings):
    settings.UPLOAD_PART_BYTES = 5 * MIB
    settings.UPLOAD_VIA_PORTAL = False
    services.bucket_create(actor=Actor(user=alice, name="alice"), name=BUCKET, allow_public=True)
    return BUCKET


def put(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    # Only URLs the portal signed for its own storage server are opened here.
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def post(client, name: str, data: dict, *args) -> tuple[int, dict]:
    response = client.post(
        reverse(name, args=args), json.dumps(data), content_type="application/json"
    )
    return response.status_code, response.json()


def unfinished(real_s3) -> list:
    return server_client(real_s3).list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def content(size: int, seed: int = 7) -> bytes:
    return bytes((i * seed + 3) % 256 for i in range(size))


# --- What the server itself enforces --------------------------------------------------------


def test_part_url_refuses_a_body_of_another_length(bucket, real_s3):
    upload_id = s3.create_multipart(bucket, "k.bin", content_type="application/octet-stream")
    url = s3.presign_part(bucket, "k.bin", upload_id=upload_id, number=1, length=100, seconds=60)
    for body in (b"x" * 101, b"x" * 99, b""):
        status, _, answer = put(url, body)
        assert status == 403 and b"SignatureDoesNotMatch" in answer
    assert s3.list_parts(bucket, "k.bin", upload_id=upload_id) == []
    status, headers, _ = put(url, b"x" * 100)
    assert status == 200 and headers["ETag"]
    assert [(p.number, p.size) for p in s3.list_parts(bucket, "k.bin", upload_id=upload_id)] == [
        (1, 100)
    ]


def test_single_put_url_refuses_another_type_or_length(bucket, real_s3):
    url = s3.presign_put(bucket, "a.txt", length=5, content_type="text/plain", seconds=60)
    assert put(url, b"hello", {"Content-Type": "text/html"})[0] == 403
    assert put(url, b"hello!", {"Content-Type": "text/plain"})[0] == 403
    assert put(url, b"hello", {"Content-Type": "text/plain"})[0] == 200
    head = server_client(real_s3).head_object(Bucket=bucket, Key="a.txt")
    assert (head["ContentLength"], head["ContentType"]) == (5, "text/plain")


def test_expired_part_url_is_refused(bucket):
    upload_id = s3.create_multipart(bucket, "late.bin", content_type="application/octet-stream")
    url = s3.presign_part(bucket, "late.bin", upload_id=upload_id, number=1, length=3, seconds=1)
    time.sleep(2.1)
    status, _, answer = put(url, b"abc")
    assert status == 403 and b"AccessDenied" in answer


def test_completion_refuses_a_name_taken_meanwhile(bucket, real_s3):
    upload_id = s3.create_multipart(bucket, "race.bin", content_type="application/octet-stream")
    url = s3.presign_part(bucket, "race.bin", upload_id=upload_id, number=1, length=4, seconds=60)
    put(url, b"mine")
    server_client(real_s3).put_object(Bucket=bucket, Key="race.bin", Body=b"theirs")
    parts = s3.list_parts(bucket, "race.bin", upload_id=upload_id)
    with pytest.raises(s3.S3Error) as caught:
        s3.complete_multipart(
            bucket, "race.bin", upload_id=upload_id, parts=parts, if_none_match=True
        )
    assert (caught.value.status, caught.value.code) == (409, "PreconditionFailed")
    body = server_client(real_s3).get_object(Bucket=bucket, Key="race.bin")["Body"].read()
    assert body == b"theirs"


# --- The whole path through the portal's endpoints -----------------------------------------------


def test_direct_upload_through_the_endpoints(client, alice, bucket, real_s3):
    data = content(11 * MIB + 1)
    client_for(client, alice)
    status, started = post(
        client, "upload_create", {"key": "up/big.bin", "size": len(data), "multipart": True}, bucket
    )
    assert status == 200
    for number in range(1, s3.part_count(len(data)) + 1):
        url = post(client, "upload_sign", {"uploadId": started["uploadId"], "part": number})[1]
        assert url["url"].startswith(real_s3.endpoint_url)
        offset = (number - 1) * 5 * MIB
        status, _, _ = put(url["url"], data[offset : offset + s3.part_length(len(data), number)])
        assert status == 200
    status, done = post(client, "upload_complete", {"uploadId": started["uploadId"]})
    assert status == 200 and done["size"] == len(data)
    stored = server_client(real_s3).get_object(Bucket=bucket, Key="up/big.bin")["Body"].read()
    assert stored == data
    assert unfinished(real_s3) == [] and not PendingUpload.objects.exists()


def test_zero_byte_file_direct(client, alice, bucket, real_s3):
    client_for(client, alice)
    status, started = post(
        client, "upload_create", {"key": "empty.txt", "size": 0, "type": "text/plain"}, bucket
    )
    assert status == 200
    assert put(started["url"], b"", {"Content-Type": "text/plain"})[0] == 200
    status, done = post(client, "upload_complete", {"uploadId": started["uploadId"]})
    assert status == 200 and done["size"] == 0
    head = server_client(real_s3).head_object(Bucket=bucket, Key="empty.txt")
    assert head["ContentLength"] == 0


def test_completion_through_the_portal_keeps_a_file_stored_meanwhile(
    client, alice, bucket, real_s3
):
    client_for(client, alice)
    data = content(6 * MIB)
    started = post(
        client, "upload_create", {"key": "x.bin", "size": len(data), "multipart": True}, bucket
    )[1]
    for number in (1, 2):
        url = post(client, "upload_sign", {"uploadId": started["uploadId"], "part": number})[1]
        put(url["url"], data[(number - 1) * 5 * MIB : number * 5 * MIB])
    server_client(real_s3).put_object(Bucket=bucket, Key="x.bin", Body=b"someone else's")
    status, refused = post(client, "upload_complete", {"uploadId": started["uploadId"]})
    assert status == 409 and "nothing was overwritten" in refused["error"]
    stored = server_client(real_s3).get_object(Bucket=bucket, Key="x.bin")["Body"].read()
    assert stored == b"someone else's"
    assert unfinished(real_s3) == [] and not PendingUpload.objects.exists()
    row = AuditEvent.objects.filter(action="upload.complete", phase="outcome").get()
    assert (row.outcome, row.error_code) == ("failure", "PreconditionFailed")


def test_replacing_when_asked(client, alice, bucket, real_s3):
    server_client(real_s3).put_object(Bucket=bucket, Key="r.bin", Body=b"old")
    client_for(client, alice)
    data = content(6 * MIB)
    started = post(
        client,
        "upload_create",
        {"key": "r.bin", "size": len(data), "multipart": True, "overwrite": True},
        bucket,
    )[1]
    for number in (1, 2):
        url = post(client, "upload_sign", {"uploadId": started["uploadId"], "part": number})[1]
        put(url["url"], data[(number - 1) * 5 * MIB : number * 5 * MIB])
    status, _ = post(
        client, "upload_complete", {"uploadId": started["uploadId"], "overwrite": True}
    )
    assert status == 200
    assert server_client(real_s3).get_object(Bucket=bucket, Key="r.bin")["Body"].read() == data


def test_abort_leaves_no_parts(client, alice, bucket, real_s3):
    client_for(client, alice)
    started = post(
        client, "upload_create", {"key": "gone.bin", "size": 12 * MIB, "multipart": True}, bucket
    )[1]
    url = post(client, "upload_sign", {"uploadId": started["uploadId"], "part": 1})[1]["url"]
    put(url, b"z" * 5 * MIB)
    assert len(unfinished(real_s3)) == 1
    assert post(client, "upload_abort", {"uploadId": started["uploadId"]})[0] == 200
    assert unfinished(real_s3) == []
    with pytest.raises(s3.S3Error) as caught:
        s3.list_parts(bucket, "gone.bin", upload_id=started["uploadId"])
    assert caught.value.status == 404


def test_cleanup_command_on_the_real_server(client, alice, bucket, real_s3, monkeypatch):
    client_for(client, alice)
    post(client, "upload_create", {"key": "left.bin", "size": 12 * MIB, "multipart": True}, bucket)
    server_client(real_s3).create_multipart_upload(Bucket=bucket, Key="stray.bin")
    call_command("uploads_cleanup", "--hours", "1")
    assert len(unfinished(real_s3)) == 2  # both younger than an hour
    later = timezone.now() + datetime.timedelta(hours=2)
    monkeypatch.setattr(upload_cleanup.timezone, "now", lambda: later)
    call_command("uploads_cleanup", "--hours", "1")
    assert unfinished(real_s3) == [] and not PendingUpload.objects.exists()


def test_cors_rule_lets_only_the_portal_origin_upload(client, alice, bucket, real_s3, settings):
    settings.SITE_URL = "https://files.example.com"
    client_for(client, alice)
    files = {"files": [{"id": "1", "path": "a.txt", "size": 1}]}
    assert post(client, "upload_prepare", files, bucket)[0] == 200
    target = urlsplit(real_s3.endpoint_url)

    def preflight(origin: str) -> str | None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        connection.request(
            "OPTIONS",
            f"/{bucket}/a.txt",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.getheader("Access-Control-Allow-Origin")

    assert preflight("https://files.example.com") == "https://files.example.com"
    assert preflight("https://evil.example") is None


def test_public_upload_is_readable_by_strangers(client, alice, bucket, real_s3):
    client_for(client, alice)
    started = post(
        client,
        "upload_create",
        {"key": "pub.txt", "size": 6, "type": "text/plain", "acl": "public-read"},
        bucket,
    )[1]
    assert put(started["url"], b"public", {"Content-Type": "text/plain"})[0] == 200
    status, done = post(client, "upload_complete", {"uploadId": started["uploadId"]})
    assert status == 200, done
    assert done["public"] is True, done["warning"]
    anonymous = urllib.request.urlopen(f"{real_s3.endpoint_url}/{bucket}/pub.txt", timeout=10)  # noqa: S310
    assert anonymous.read() == b"public"


# --- The proxied path: parts stream through the portal ---------------------------------------------


def test_proxied_upload_streams_parts_to_s3(client, alice, bucket, real_s3, settings):
    settings.UPLOAD_VIA_PORTAL = True
    data = content(11 * MIB + 5, seed=13)
    client_for(client, alice)
    started = post(
        client, "upload_create", {"key": "p/big.bin", "size": len(data), "multipart": True}, bucket
    )[1]
    for number in range(1, 4):
        url = post(client, "upload_sign", {"uploadId": started["uploadId"], "part": number})[1]
        offset = (number - 1) * 5 * MIB
        body = data[offset : offset + s3.part_length(len(data), number)]
        response = client.put(url["url"], body, content_type="application/octet-stream")
        assert response.status_code == 200, response.content
        assert response["ETag"].strip('"')
    assert post(client, "upload_complete", {"uploadId": started["uploadId"]})[0] == 200
    stored = server_client(real_s3).get_object(Bucket=bucket, Key="p/big.bin")["Body"].read()
    assert stored == data
    assert (
        audit_rows(action="upload.part", phase="outcome")
        == [("upload.part", "outcome", "success")] * 3
    )


def test_proxied_single_put_is_a_conditional_write(client, alice, bucket, real_s3, settings):
    settings.UPLOAD_VIA_PORTAL = True
    client_for(client, alice)
    started = post(
        client, "upload_create", {"key": "c.txt", "size": 4, "type": "text/plain"}, bucket
    )[1]
    server_client(real_s3).put_object(Bucket=bucket, Key="c.txt", Body=b"first")
    response = client.put(started["url"], b"mine", content_type="text/plain")
    assert response.status_code == 409
    assert "nothing was overwritten" in response.json()["error"]
    assert server_client(real_s3).get_object(Bucket=bucket, Key="c.txt")["Body"].read() == b"first"


def test_proxied_part_of_the_wrong_length_stores_nothing(client, alice, bucket, real_s3, settings):
    settings.UPLOAD_VIA_PORTAL = True
    client_for(client, alice)
    started = post(
        client, "upload_create", {"key": "w.bin", "size": 12 * MIB, "multipart": True}, bucket
    )[1]
    url = post(client, "upload_sign", {"uploadId": started["uploadId"], "part": 3})[1]["url"]
    response = client.put(url, b"x" * (2 * MIB + 1), content_type="application/octet-stream")
    assert response.status_code == 400
    assert s3.list_parts(bucket, "w.bin", upload_id=started["uploadId"]) == []
