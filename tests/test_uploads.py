"""Uploads through the portal's endpoints and services, on moto (the embedded server has its own)."""

import datetime
import json
import re
import socket
import unicodedata
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing import s3
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, PendingUpload, Role
from sharing.services import upload_checks, upload_cleanup
from sharing.services import uploads as service
from sharing.services.public_access import PublicState
from tests.conftest import audit_rows, client_for, make_user

MIB = 1024**2
BUCKET = "team-files"
BAD_NAMES = [
    ("", "empty"),
    ("../../etc/passwd", "“..”"),
    ("..\\..\\win.ini", "backslash"),
    ("a\x00.jpg", "control characters"),
    ("a\r\nSet-Cookie: x=y.txt", "control characters"),
    ("invoice\u202egpj.exe", "invisible"),
    ("a\u200b.txt", "invisible"),
    ("x" * 1025, "1024 bytes"),
    ("é" * 513, "1024 bytes"),
    ("folder/", "end with"),
]


@pytest.fixture(autouse=True)
def _upload_settings(settings):
    settings.UPLOAD_PART_BYTES = 5 * MIB
    settings.UPLOAD_MAX_BYTES = 100 * MIB
    settings.UPLOAD_MAX_FILES = 5
    settings.UPLOAD_VIA_PORTAL = False
    settings.SITE_URL = "https://files.example.com"


@pytest.fixture
def raw(bucket):
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def writer(bucket):
    """dave may write to the bucket but did not create it."""
    user = make_user("dave")
    BucketGrant.objects.create(user=user, bucket=bucket, role=Role.WRITE)
    return user


def post(client, name: str, data: dict, *args) -> tuple[int, dict]:
    response = client.post(
        reverse(name, args=args), json.dumps(data), content_type="application/json"
    )
    return response.status_code, response.json()


def start(client, key: str = "docs/a.bin", size: int = 12 * MIB, **extra) -> dict:
    data = {"key": key, "size": size, "type": "application/octet-stream", "multipart": True}
    status, body = post(client, "upload_create", {**data, **extra}, BUCKET)
    assert status == 200, body
    return body


def put_parts(raw, body: dict, size: int, *, skip: tuple[int, ...] = ()) -> None:
    """Store the parts of an upload as the browser would, through boto3 (moto ignores URLs)."""
    for number in range(1, s3.part_count(size) + 1):
        if number not in skip:
            length = s3.part_length(size, number)
            raw.upload_part(
                Bucket=BUCKET,
                Key=body["key"],
                UploadId=body["uploadId"],
                PartNumber=number,
                Body=b"p" * length,
            )


def unfinished(raw) -> list:
    return raw.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


# --- The panel ----------------------------------------------------------------------------


def test_panel_is_shown_to_writers_with_its_settings(client, alice, writer, bucket):
    for user in (alice, writer):
        page = client_for(client, user).get(
            reverse("bucket_detail", args=[bucket]), {"prefix": "docs/"}
        )
        assert page.status_code == 200
        config = re.search(
            rb'<script id="upload-config" type="application/json">(.*?)</script>', page.content
        )
        settings = json.loads(config.group(1))
        assert settings["prefix"] == "docs/"
        assert settings["maxBytes"] == 100 * MIB and settings["partBytes"] == 5 * MIB
        assert settings["urls"]["create"] == reverse("upload_create", args=[bucket])
        assert b'src="/static/vendor/uppy/uppy.min.js"' in page.content
        assert b'<script src="/static/sharing/js/upload.js"' in page.content


def test_panel_is_hidden_from_readers(client, bob, bucket):
    page = client_for(client, bob).get(reverse("bucket_detail", args=[bucket]))
    assert page.status_code == 200
    assert b"upload-panel" not in page.content


def test_panel_has_no_inline_script_or_style(client, alice, bucket):
    page = client_for(client, alice).get(reverse("bucket_detail", args=[bucket])).content.decode()
    panel = page[page.index('id="upload-panel"') : page.index("upload.js")]
    assert "style=" not in panel
    assert re.findall(r"<script(?![^>]*(?:src=|type=\"application/json\"))", panel) == []


# --- Access ---------------------------------------------------------------------------------


ENDPOINTS = [
    ("upload_prepare", [BUCKET]),
    ("upload_create", [BUCKET]),
    ("upload_sign", []),
    ("upload_complete", []),
    ("upload_abort", []),
]


@pytest.mark.parametrize(("name", "args"), ENDPOINTS)
def test_endpoints_need_login_and_say_so_in_json(client, bucket, name, args):
    response = client.post(reverse(name, args=args), "{}", content_type="application/json")
    assert response.status_code == 401
    assert "log in again" in response.json()["error"]


@pytest.mark.parametrize(("name", "args"), ENDPOINTS)
def test_get_on_a_state_change_is_refused_in_json(client, alice, bucket, name, args):
    response = client_for(client, alice).get(reverse(name, args=args))
    assert response.status_code == 405
    assert response["Allow"] == "POST" and response.json()["error"] == "Use POST."


def _refuse_writes(execute, sql, params, many, context):
    if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
        raise OperationalError("database is locked")
    return execute(sql, params, many, context)


def test_a_database_failure_is_a_json_503(client, alice, bucket):
    client_for(client, alice)
    with connection.execute_wrapper(_refuse_writes):
        status, body = post(client, "upload_create", {"key": "a.txt", "size": 1}, bucket)
    assert status == 503
    assert "database is busy" in body["error"]
    assert unfinished(boto3.client("s3", region_name="us-east-1")) == []


def test_an_unexpected_failure_is_a_json_500_not_a_page(client, alice, bucket):
    client_for(client, alice)
    with connection.execute_wrapper(_fail_everything):
        status, body = post(client, "upload_prepare", {"files": []}, bucket)
    assert status == 500
    assert "went wrong" in body["error"]


def _fail_everything(execute, sql, params, many, context):
    if sql.lstrip().upper().startswith("INSERT"):
        raise RuntimeError("a bug")
    return execute(sql, params, many, context)


def test_a_database_failure_on_a_page_is_a_clear_503(client, alice, moto_s3):
    client_for(client, alice)
    with connection.execute_wrapper(_refuse_writes):
        response = client.post(reverse("bucket_create"), {"name": "fresh-bucket"})
    assert response.status_code == 503
    assert b"Database unavailable" in response.content


@pytest.mark.parametrize(("user", "status"), [("charlie", 404), ("bob", 403)])
def test_outsider_gets_404_and_reader_403(client, bucket, charlie, bob, user, status):
    client_for(client, {"charlie": charlie, "bob": bob}[user])
    for name in ("upload_prepare", "upload_create"):
        code, body = post(client, name, {"files": [], "key": "a", "size": 1}, BUCKET)
        assert code == status and body["error"]
    assert AuditEvent.objects.filter(action__startswith="upload.", outcome="denied").count() == 2
    assert unfinished(boto3.client("s3", region_name="us-east-1")) == []


def test_json_endpoints_check_csrf(alice, bucket):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    url = reverse("upload_prepare", args=[bucket])
    payload = json.dumps({"files": [{"id": "1", "path": "a.txt", "size": 1}]})
    refused = browser.post(url, payload, content_type="application/json")
    assert refused.status_code == 403
    browser.get(reverse("bucket_detail", args=[bucket]))  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    allowed = browser.post(url, payload, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert allowed.status_code == 200


def test_bad_json_is_a_clear_400(client, alice, bucket):
    client_for(client, alice)
    response = client.post(
        reverse("upload_create", args=[bucket]), "{nope", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"error": "The request was not valid JSON."}


def test_unreachable_storage_gives_503_json(client, alice, settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{port}"
    BucketGrant.objects.create(user=alice, bucket="gone", role=Role.WRITE)
    status, body = post(
        client_for(client, alice), "upload_create", {"key": "a.txt", "size": 1}, "gone"
    )
    assert status == 503
    assert "cannot be reached" in body["error"]
    assert audit_rows(action="upload.start")[-1] == ("upload.start", "outcome", "failure")


# --- Checking a batch ---------------------------------------------------------------------------


def test_prepare_reports_each_file(client, alice, raw, bucket):
    raw.put_object(Bucket=bucket, Key="docs/old.txt", Body=b"old")
    files = [
        {"id": "1", "path": "old.txt", "size": 3},
        {"id": "2", "path": "trip/day 1/photo.jpg", "size": 10},
        {"id": "3", "path": "../escape.txt", "size": 1},
        {"id": "4", "path": "huge.iso", "size": 100 * MIB + 1},
        {"id": "5", "path": unicodedata.normalize("NFD", "café.txt"), "size": 0},
    ]
    status, body = post(
        client_for(client, alice), "upload_prepare", {"prefix": "docs/", "files": files}, bucket
    )
    assert status == 200
    checks = {check["id"]: check for check in body["files"]}
    assert checks["1"] == {"id": "1", "key": "docs/old.txt", "exists": True, "problem": ""}
    assert checks["2"] == {
        "id": "2",
        "key": "docs/trip/day 1/photo.jpg",
        "exists": False,
        "problem": "",
    }
    assert "“..”" in checks["3"]["problem"]
    assert "at most 104,857,600 bytes" in checks["4"]["problem"]
    assert checks["5"]["key"] == unicodedata.normalize("NFC", "docs/café.txt")
    assert audit_rows(action="upload.check") == [
        ("upload.check", "intent", "pending"),
        ("upload.check", "outcome", "success"),
    ]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_each_bad_name_gets_its_own_reason(client, alice, bucket, name, why):
    files = [{"id": "bad", "path": name, "size": 1}, {"id": "good", "path": "fine.txt", "size": 1}]
    status, body = post(
        client_for(client, alice), "upload_prepare", {"prefix": "", "files": files}, bucket
    )
    assert status == 200
    bad, good = body["files"]
    assert why in bad["problem"]
    assert good == {"id": "good", "key": "fine.txt", "exists": False, "problem": ""}


def test_too_many_files_in_one_batch_are_refused(client, alice, bucket):
    files = [{"id": str(n), "path": f"{n}.txt", "size": 1} for n in range(6)]
    status, body = post(client_for(client, alice), "upload_prepare", {"files": files}, bucket)
    assert status == 413
    assert "At most 5 files" in body["error"]


def test_prepare_lets_the_site_origin_upload_by_cors(client, alice, raw, bucket):
    raw.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": ["https://other.example"], "AllowedMethods": ["GET"]}]
        },
    )
    client_for(client, alice)
    files = {"files": [{"id": "1", "path": "a.txt", "size": 1}]}
    assert post(client, "upload_prepare", files, bucket)[0] == 200
    rules = raw.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://other.example"]  # kept
    ours = rules[1]
    assert ours["ID"] == "s3portal-uploads"
    # SITE_URL's origin, and the request's since its host is in ALLOWED_HOSTS.
    assert ours["AllowedOrigins"] == ["https://files.example.com", "http://testserver"]
    assert ours["AllowedMethods"] == ["PUT"] and ours["ExposeHeaders"] == ["ETag"]
    assert post(client, "upload_prepare", files, bucket)[0] == 200
    assert audit_rows(action="bucket.set_cors") == [
        ("bucket.set_cors", "intent", "pending"),
        ("bucket.set_cors", "outcome", "success"),
    ]


def test_no_cors_change_when_parts_pass_through_the_portal(client, alice, raw, bucket, settings):
    settings.UPLOAD_VIA_PORTAL = True
    files = {"files": [{"id": "1", "path": "a.txt", "size": 1}]}
    assert post(client_for(client, alice), "upload_prepare", files, bucket)[0] == 200
    with pytest.raises(raw.exceptions.ClientError):
        raw.get_bucket_cors(Bucket=bucket)


def test_trusted_origins(settings):
    settings.ALLOWED_HOSTS = ["files.example.com", ".example.org"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://proxy.example.net"]
    origins = upload_checks.trusted_origins
    assert origins(request_origin="https://files.example.com") == ["https://files.example.com"]
    assert origins(request_origin="http://files.example.com:8080") == [
        "https://files.example.com",
        "http://files.example.com:8080",
    ]
    assert origins(request_origin="https://a.example.org")[1] == "https://a.example.org"
    assert origins(request_origin="https://proxy.example.net")[1] == "https://proxy.example.net"
    assert origins(request_origin="https://evil.example") == ["https://files.example.com"]
    assert origins(request_origin="javascript:alert(1)") == ["https://files.example.com"]
    settings.ALLOWED_HOSTS = ["*"]
    assert origins(request_origin="https://evil.example") == ["https://files.example.com"]


# --- Starting -----------------------------------------------------------------------------------


def test_start_refuses_an_existing_name_unless_asked(client, alice, raw, bucket):
    raw.put_object(Bucket=bucket, Key="docs/a.bin", Body=b"old")
    client_for(client, alice)
    data = {"key": "docs/a.bin", "size": 12 * MIB, "multipart": True}
    status, body = post(client, "upload_create", data, bucket)
    assert status == 409 and "already exists" in body["error"]
    assert unfinished(raw) == [] and not PendingUpload.objects.exists()
    assert audit_rows(action="upload.start")[-1] == ("upload.start", "outcome", "failure")
    status, body = post(client, "upload_create", {**data, "overwrite": True}, bucket)
    assert status == 200
    assert [u["UploadId"] for u in unfinished(raw)] == [body["uploadId"]]


@pytest.mark.parametrize(
    ("size", "status"), [(100 * MIB, 200), (100 * MIB + 1, 413), (-1, 400), ("12", 400)]
)
def test_size_limit_is_enforced_before_anything_is_stored(client, alice, raw, bucket, size, status):
    data = {"key": "big.bin", "size": size, "multipart": True}
    code, body = post(client_for(client, alice), "upload_create", data, bucket)
    assert code == status, body
    assert len(unfinished(raw)) == (1 if status == 200 else 0)
    if status != 200:
        assert AuditEvent.objects.get(action="upload.start").outcome == "refused"


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_start_refuses_bad_names(client, alice, raw, bucket, name, why):
    code, body = post(client_for(client, alice), "upload_create", {"key": name, "size": 1}, bucket)
    assert code == 400 and why in body["error"]
    assert not PendingUpload.objects.exists()


def test_start_refuses_a_bad_media_type_and_visibility(client, alice, bucket):
    client_for(client, alice)
    data = {"key": "a.txt", "size": 1}
    assert post(client, "upload_create", {**data, "type": "text/plain\r\nX: y"}, bucket)[0] == 400
    assert post(client, "upload_create", {**data, "acl": "public-read-write"}, bucket)[0] == 400


def test_multipart_start_records_the_owner_and_answers_uppy(client, alice, bucket):
    body = start(client_for(client, alice), type="video/mp4")
    upload = PendingUpload.objects.get(upload_id=body["uploadId"])
    assert (upload.user, upload.bucket, upload.key, upload.size) == (
        alice,
        BUCKET,
        "docs/a.bin",
        12 * MIB,
    )
    assert upload.content_type == "video/mp4" and upload.acl == "private"
    assert body["url"] == ""
    answer = client.post(body["answerUrl"])
    assert answer.status_code == 200 and answer["Content-Type"] == "application/xml"
    assert f"<UploadId>{body['uploadId']}</UploadId>".encode() in answer.content
    assert b"<Key>docs/a.bin</Key>" in answer.content
    assert audit_rows(action="upload.start") == [
        ("upload.start", "intent", "pending"),
        ("upload.start", "outcome", "success"),
    ]


def test_small_file_gets_one_put_url_signed_with_length_and_type(client, alice, bucket, settings):
    settings.UPLOAD_URL_SECONDS = 300
    body = start(
        client_for(client, alice),
        key="r\u00e9sum\u00e9.txt",
        size=2026,
        multipart=False,
        type="text/plain",
    )
    assert body["uploadId"].startswith(service.SINGLE_PREFIX)
    query = parse_qs(urlsplit(body["url"]).query)
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["300"]
    assert urlsplit(body["url"]).path.endswith("/r%C3%A9sum%C3%A9.txt")


# --- Signing parts ------------------------------------------------------------------------------


def test_part_urls_are_signed_for_their_exact_length(client, alice, bucket):
    body = start(client_for(client, alice), size=12 * MIB + 1)
    lengths = {}
    for part in (1, 2, 3):
        status, signed = post(client, "upload_sign", {"uploadId": body["uploadId"], "part": part})
        assert status == 200
        query = parse_qs(urlsplit(signed["url"]).query)
        assert query["partNumber"] == [str(part)]
        assert query["X-Amz-SignedHeaders"] == ["content-length;host"]
        lengths[part] = s3.part_length(12 * MIB + 1, part)
    assert lengths == {1: 5 * MIB, 2: 5 * MIB, 3: 2 * MIB + 1}
    for part in (0, 4, "1", True):
        status, refused = post(client, "upload_sign", {"uploadId": body["uploadId"], "part": part})
        assert status == 400 and "parts 1 to 3" in refused["error"]


def test_only_the_starter_may_continue_an_upload(client, alice, writer, bucket):
    body = start(client_for(client, alice))
    other = Client()
    other.force_login(writer)
    for name in ("upload_sign", "upload_complete", "upload_abort"):
        status, refused = post(other, name, {"uploadId": body["uploadId"], "part": 1})
        assert status == 404 and "someone else's" in refused["error"]
    listed = other.get(reverse("upload_parts"), {"uploadId": body["uploadId"]})
    assert listed.status_code == 404
    assert other.post(body["answerUrl"]).status_code == 404
    assert PendingUpload.objects.filter(upload_id=body["uploadId"]).exists()
    assert AuditEvent.objects.filter(actor_name="dave", outcome="denied").count() == 4


def test_losing_write_access_stops_an_upload(client, alice, bucket):
    body = start(client_for(client, alice))
    BucketGrant.objects.filter(user=alice).update(role=Role.READ)
    status, refused = post(client, "upload_sign", {"uploadId": body["uploadId"], "part": 1})
    assert status == 403 and "write" in refused["error"]


def test_unknown_upload_is_404(client, alice, bucket):
    status, body = post(client_for(client, alice), "upload_sign", {"uploadId": "nope", "part": 1})
    assert status == 404


# --- Completing -------------------------------------------------------------------------------


def test_multipart_upload_completes_with_the_parts_s3_holds(client, alice, raw, bucket):
    size = 12 * MIB + 3
    body = start(client_for(client, alice), size=size)
    put_parts(raw, body, size)
    parts = client.get(reverse("upload_parts"), {"uploadId": body["uploadId"]})
    assert parts.status_code == 200
    assert parts.content.count(b"<Part>") == 3
    status, done = post(client, "upload_complete", {"uploadId": body["uploadId"]})
    assert status == 200, done
    assert (done["key"], done["size"], done["public"], done["warning"]) == (
        "docs/a.bin",
        size,
        None,
        "",
    )
    assert raw.head_object(Bucket=bucket, Key="docs/a.bin")["ContentLength"] == size
    assert not PendingUpload.objects.exists() and unfinished(raw) == []
    answer = client.post(done["answerUrl"])
    assert (
        b"<CompleteMultipartUploadResult" in answer.content
        and b"<Key>docs/a.bin</Key>" in answer.content
    )
    assert audit_rows(action="upload.complete") == [
        ("upload.complete", "intent", "pending"),
        ("upload.complete", "outcome", "success"),
    ]


def test_missing_parts_leave_the_upload_open_for_a_resume(client, alice, raw, bucket):
    body = start(client_for(client, alice))
    put_parts(raw, body, 12 * MIB, skip=(2,))
    response = client.post(
        reverse("upload_complete"),
        json.dumps({"uploadId": body["uploadId"]}),
        content_type="application/json",
    )
    assert response.status_code == 409 and "Only 2 of 3 parts" in response.json()["error"]
    # The page's script keeps the upload for a resume only on this code.
    assert response.headers["x-amz-error-code"] == "PartsMissing"
    assert PendingUpload.objects.filter(upload_id=body["uploadId"]).exists()
    assert len(unfinished(raw)) == 1


def test_a_part_of_the_wrong_size_is_not_joined(client, alice, raw, bucket):
    body = start(client_for(client, alice))
    put_parts(raw, body, 12 * MIB, skip=(3,))
    raw.upload_part(
        Bucket=bucket, Key="docs/a.bin", UploadId=body["uploadId"], PartNumber=3, Body=b"x"
    )
    status, refused = post(client, "upload_complete", {"uploadId": body["uploadId"]})
    assert status == 409 and "Part 3 has 1 bytes" in refused["error"]
    with pytest.raises(raw.exceptions.ClientError):
        raw.head_object(Bucket=bucket, Key="docs/a.bin")


def test_a_stored_size_that_differs_is_deleted_and_audited(client, alice, raw, bucket):
    body = start(client_for(client, alice), key="small.txt", size=10, multipart=False)
    raw.put_object(Bucket=bucket, Key="small.txt", Body=b"more than ten bytes")  # a lying client
    status, refused = post(client, "upload_complete", {"uploadId": body["uploadId"]})
    assert status == 409 and "19 bytes instead of 10" in refused["error"]
    with pytest.raises(raw.exceptions.ClientError):
        raw.head_object(Bucket=bucket, Key="small.txt")
    row = AuditEvent.objects.filter(action="upload.complete", phase="outcome").get()
    assert (row.outcome, row.error_code) == ("failure", "UploadError")
    assert "19 bytes instead of 10" in row.message
    assert not PendingUpload.objects.exists()


def test_zero_byte_file(client, alice, raw, bucket):
    body = start(client_for(client, alice), key="empty.txt", size=0, multipart=False)
    raw.put_object(Bucket=bucket, Key="empty.txt", Body=b"")
    status, done = post(client, "upload_complete", {"uploadId": body["uploadId"]})
    assert status == 200 and done["size"] == 0
    assert s3.part_count(0) == 1 and s3.part_length(0, 1) == 0


def test_single_upload_not_yet_arrived_stays_open(client, alice, bucket):
    body = start(client_for(client, alice), key="later.txt", size=5, multipart=False)
    status, refused = post(client, "upload_complete", {"uploadId": body["uploadId"]})
    assert status == 409 and "did not arrive" in refused["error"]
    assert PendingUpload.objects.filter(upload_id=body["uploadId"]).exists()


def test_public_upload_asks_the_access_service(client, alice, raw, bucket, monkeypatch):
    calls = []

    def object_set_public(**kwargs):
        calls.append(kwargs)
        return PublicState(public=True, url="https://s3.example/team-files/p.txt")

    monkeypatch.setattr("sharing.services.public_access.object_set_public", object_set_public)
    body = start(client_for(client, alice), key="p.txt", size=1, multipart=False, acl="public-read")
    raw.put_object(Bucket=bucket, Key="p.txt", Body=b"p")
    status, done = post(client, "upload_complete", {"uploadId": body["uploadId"]})
    assert status == 200 and done["public"] is True
    assert [(c["bucket"], c["key"], c["public"], c["actor"].user) for c in calls] == [
        (bucket, "p.txt", True, alice)
    ]


def test_refused_public_access_is_a_warning_not_a_failure(client, alice, raw, bucket, monkeypatch):
    def refuse(**kwargs):
        raise s3.S3Error("Block Public Access is on.", status=409, code="AccessDenied")

    monkeypatch.setattr("sharing.services.public_access.object_set_public", refuse)
    body = start(client_for(client, alice), key="p.txt", size=1, multipart=False, acl="public-read")
    raw.put_object(Bucket=bucket, Key="p.txt", Body=b"p")
    status, done = post(client, "upload_complete", {"uploadId": body["uploadId"]})
    assert status == 200
    assert done["public"] is False and "stays private: Block Public Access" in done["warning"]


# --- Aborting and cleaning up -------------------------------------------------------------------


def test_abort_removes_every_part(client, alice, raw, bucket):
    body = start(client_for(client, alice))
    put_parts(raw, body, 12 * MIB, skip=(3,))
    status, done = post(client, "upload_abort", {"uploadId": body["uploadId"]})
    assert status == 200 and done == {"aborted": True}
    assert unfinished(raw) == [] and not PendingUpload.objects.exists()
    assert audit_rows(action="upload.abort") == [
        ("upload.abort", "intent", "pending"),
        ("upload.abort", "outcome", "success"),
    ]
    assert post(client, "upload_abort", {"uploadId": body["uploadId"]})[0] == 404


def test_cleanup_aborts_old_uploads_and_strays_and_keeps_fresh_ones(
    client, alice, raw, bucket, monkeypatch
):
    old = start(client_for(client, alice), key="old.bin")
    put_parts(raw, old, 12 * MIB, skip=(3,))
    start(client, key="old.txt", size=3, multipart=False)
    # moto dates every multipart upload in 2010: an untracked one is a stale stray at once.
    raw.create_multipart_upload(Bucket=bucket, Key="stray.bin")
    call_command("uploads_cleanup", "--hours", "1")
    assert [u["UploadId"] for u in unfinished(raw)] == [old["uploadId"]]  # tracked and young
    assert PendingUpload.objects.count() == 2

    later = timezone.now() + datetime.timedelta(hours=2)
    monkeypatch.setattr(upload_cleanup.timezone, "now", lambda: later)
    fresh = PendingUpload.objects.create(
        upload_id="put:fresh", bucket=bucket, key="f", user=alice, size=1
    )
    PendingUpload.objects.filter(pk=fresh.pk).update(created_at=later)
    call_command("uploads_cleanup", "--hours", "1")
    assert unfinished(raw) == []
    assert list(PendingUpload.objects.values_list("upload_id", flat=True)) == ["put:fresh"]
    aborted = AuditEvent.objects.filter(action="upload.abort", phase="outcome", outcome="success")
    assert sorted(aborted.values_list("key", flat=True)) == ["old.bin", "old.txt", "stray.bin"]
    assert set(aborted.values_list("actor_name", flat=True)) == {"uploads_cleanup"}


def test_cleanup_refuses_a_zero_age(bucket):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("uploads_cleanup", "--hours", "0")


# --- The proxied path (bytes through the portal) --------------------------------------------------


def test_proxied_start_gives_a_portal_url(client, alice, bucket, settings):
    settings.UPLOAD_VIA_PORTAL = True
    body = start(client_for(client, alice))
    status, signed = post(client, "upload_sign", {"uploadId": body["uploadId"], "part": 2})
    assert status == 200 and signed["url"].startswith("/uploads/proxy/")
    single = start(client, key="s.txt", size=3, multipart=False)
    assert single["url"].startswith("/uploads/proxy/")


def test_proxy_refuses_a_wrong_length_before_touching_s3(client, alice, raw, bucket, settings):
    settings.UPLOAD_VIA_PORTAL = True
    body = start(client_for(client, alice))
    url = post(client, "upload_sign", {"uploadId": body["uploadId"], "part": 1})[1]["url"]
    response = client.put(url, b"x" * 10, content_type="application/octet-stream")
    assert response.status_code == 400
    assert f"exactly {5 * MIB} bytes" in response.json()["error"]
    assert (
        raw.list_parts(Bucket=bucket, Key="docs/a.bin", UploadId=body["uploadId"]).get("Parts", [])
        == []
    )
    assert not AuditEvent.objects.filter(action="upload.part").exists()


def test_proxy_checks_token_and_owner(client, alice, writer, bucket, settings):
    settings.UPLOAD_VIA_PORTAL = True
    body = start(client_for(client, alice))
    url = post(client, "upload_sign", {"uploadId": body["uploadId"], "part": 1})[1]["url"]
    assert client.get(url).status_code == 405
    tampered = url.replace("/proxy/", "/proxy/x")
    assert client.put(tampered, b"x", content_type="application/octet-stream").status_code == 403
    other = Client()
    other.force_login(writer)
    assert other.put(url, b"x", content_type="application/octet-stream").status_code == 404


def test_answer_links_cannot_be_forged(client, alice, bucket):
    body = start(client_for(client, alice))
    assert client.get(body["answerUrl"]).status_code == 405
    forged = client.post(body["answerUrl"].replace("/answer/", "/answer/x"))
    assert forged.status_code == 403


# --- Part arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5 * MIB, 5 * MIB + 1, 16 * MIB * 10_000 + 1, 5 * 1024**4])
def test_parts_cover_the_file_within_s3_limits(settings, size):
    settings.UPLOAD_PART_BYTES = 16 * MIB
    count = s3.part_count(size)
    lengths = [s3.part_length(size, n) for n in range(1, count + 1)]
    assert sum(lengths) == size
    assert 1 <= count <= s3.MAX_PARTS
    assert all(length >= s3.MIN_PART_BYTES for length in lengths[:-1])


def test_service_refuses_without_a_write_grant(bucket, bob):
    with pytest.raises(PermissionDenied):
        service.upload_create(
            actor=Actor(user=bob, name="bob"),
            bucket=bucket,
            key="a.txt",
            size=1,
            content_type="",
            acl="private",
            overwrite=False,
            multipart=False,
        )
