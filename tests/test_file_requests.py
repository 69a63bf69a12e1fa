"""File requests: upload-only links for outsiders, on moto."""

import datetime
import json

import boto3
import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing import s3
from sharing.audit import Actor
from sharing.models import (
    AuditEvent,
    BucketGrant,
    FileRequest,
    FileRequestVisit,
    Outcome,
    PendingUpload,
    RequestStatus,
    Role,
)
from sharing.services import file_requests as service
from tests.conftest import client_for, make_user

MIB = 1024**2
BUCKET = "team-files"
IP = "203.0.113.9"
AGENT = "OutsiderBrowser/1.0"


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


def create(user, **options) -> service.NewFileRequest:
    values = {
        "bucket": BUCKET,
        "prefix": "inbox/",
        "title": "Your invoices",
        "message": "Please send the March invoices.",
        "expires_at": timezone.now() + datetime.timedelta(days=2),
        "max_bytes": 50 * MIB,
        "max_files": 3,
        "password": "",
    }
    values.update(options)
    return service.file_request_create(actor=Actor(user=user), **values)


def outsider() -> Client:
    return Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)


def open_visit(browser: Client, token: str) -> str:
    page = browser.get(f"/r/{token}")
    assert page.status_code == 200, page.content[:500]
    visits = browser.session["file_request_visits"]
    return next(iter(visits.values()))


def call(browser: Client, visit: str, name: str, data: dict) -> tuple[int, dict]:
    url = reverse(f"file_request_upload_{name}", args=[visit])
    response = browser.post(url, json.dumps(data), content_type="application/json")
    return response.status_code, response.json()


def send_small(raw, browser, visit: str, name: str, body: bytes) -> tuple[int, dict]:
    """Upload one small file as the panel would: start, PUT (through boto3), complete."""
    status, started = call(
        browser, visit, "create", {"key": name, "size": len(body), "type": "text/plain"}
    )
    assert status == 200, started
    raw.put_object(Bucket=BUCKET, Key=started["key"], Body=body)
    return call(browser, visit, "complete", {"uploadId": started["uploadId"]})


def status_of(request: FileRequest) -> str:
    return FileRequest.objects.with_status(timezone.now()).get(pk=request.pk).status


# --- Creating -----------------------------------------------------------------------------


def test_writer_creates_a_request_from_the_folder_page(client, alice, bucket):
    page = client_for(client, alice).get(
        reverse("bucket_detail", args=[bucket]), {"prefix": "inbox/"}
    )
    assert b'data-testid="request-files"' in page.content
    url = reverse("file_request_create", args=[bucket]) + "?prefix=inbox/"
    form = {
        "request-title": "Scans",
        "request-message": "",
        "request-expiry": "1d",
        "request-max_mib": "10",
        "request-max_files": "4",
        "request-password": "",
    }
    response = client.post(url, form)
    assert response.status_code == 200
    request = FileRequest.objects.get()
    assert (request.prefix, request.max_bytes, request.max_files) == ("inbox/", 10 * MIB, 4)
    assert response.context["new"].url.startswith("https://files.example.com/r/")
    assert response["Cache-Control"] == "no-store"
    row = AuditEvent.objects.get(action="file_request.create")
    assert row.outcome == Outcome.SUCCESS and row.actor_id == alice.pk


def test_reader_gets_403_and_stranger_404(client, bob, charlie, bucket):
    url = reverse("file_request_create", args=[bucket])
    assert client_for(client, bob).get(url).status_code == 403
    assert client_for(client, charlie).get(url).status_code == 404
    with pytest.raises(PermissionDenied):
        create(bob)
    assert not FileRequest.objects.exists()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"expires_at": timezone.now() + datetime.timedelta(days=8)}, "at most 7 days"),
        ({"expires_at": timezone.now() - datetime.timedelta(minutes=1)}, "future"),
        ({"max_bytes": 0}, "size cap"),
        ({"max_files": 0}, "file cap"),
        ({"title": "  "}, "title"),
        ({"password": "abc"}, "at least"),
    ],
)
def test_bad_options_are_refused_with_a_reason(alice, bucket, options, words):
    with pytest.raises(service.FileRequestError) as refused:
        create(alice, **options)
    assert words in refused.value.message
    assert not FileRequest.objects.exists()
    assert AuditEvent.objects.get(action="file_request.create").outcome == Outcome.REFUSED


# --- The one status rule ------------------------------------------------------------------


def test_status_rule_names_the_first_reason(alice, bucket):
    writer = make_user("dave")
    BucketGrant.objects.create(user=writer, bucket=BUCKET, role=Role.WRITE)
    request = create(writer).request
    assert status_of(request) == RequestStatus.ACTIVE
    FileRequest.objects.filter(pk=request.pk).update(files_received=3)
    assert status_of(request) == RequestStatus.FULL
    FileRequest.objects.filter(pk=request.pk).update(files_received=0)
    BucketGrant.objects.filter(user=writer).update(role=Role.READ)
    assert status_of(request) == RequestStatus.DISABLED
    BucketGrant.objects.filter(user=writer).update(role=Role.WRITE)
    writer.is_active = False
    writer.save()
    assert status_of(request) == RequestStatus.DISABLED
    FileRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now())
    assert status_of(request) == RequestStatus.EXPIRED
    service.file_request_revoke(actor=Actor(user=writer), request=request)
    assert status_of(request) == RequestStatus.REVOKED
    assert list(FileRequest.objects.usable(timezone.now())) == []


def test_closed_request_shows_why(alice, bucket):
    new = create(alice)
    service.file_request_revoke(actor=Actor(user=alice), request=new.request)
    page = outsider().get(f"/r/{new.token}")
    assert page.status_code == 410
    assert b"withdrawn" in page.content
    assert outsider().get("/r/not-a-token").status_code == 404


# --- The outsider -------------------------------------------------------------------------


def test_password_comes_first_and_wrong_ones_are_audited(alice, bucket):
    new = create(alice, password="s3cret-words")
    browser = outsider()
    page = browser.get(f"/r/{new.token}")
    assert page.status_code == 200 and b'name="password"' in page.content
    assert b"March invoices" not in page.content
    wrong = browser.post(f"/r/{new.token}", {"password": "nope"})
    assert wrong.status_code == 403 and b"Wrong password" in wrong.content
    row = AuditEvent.objects.get(action="file_request.password")
    assert (row.outcome, row.client_ip, row.user_agent) == (Outcome.FAILURE, IP, AGENT)
    right = browser.post(f"/r/{new.token}", {"password": "s3cret-words"})
    assert right.status_code == 302
    page = browser.get(f"/r/{new.token}")
    assert b"March invoices" in page.content and b'id="upload-config"' in page.content
    assert page["Referrer-Policy"] == "same-origin"


def test_visit_sees_only_its_own_files(raw, alice, bucket):
    raw.put_object(Bucket=BUCKET, Key="inbox/secret-plan.txt", Body=b"x")
    new = create(alice)
    first, second = outsider(), outsider()
    visit = open_visit(first, new.token)
    status, done = send_small(raw, first, visit, "mine.txt", b"hello")
    assert status == 200 and done["key"] == "inbox/mine.txt"
    page = first.get(f"/r/{new.token}").content
    assert b"mine.txt" in page and b"secret-plan" not in page
    other = open_visit(second, new.token)
    assert other != visit
    page = second.get(f"/r/{new.token}").content
    assert b"mine.txt" not in page and b"secret-plan" not in page
    # Another browser cannot use the first visit's endpoints.
    status, body = call(second, visit, "create", {"key": "x.txt", "size": 1})
    assert status == 404


def test_nothing_is_overwritten(raw, alice, bucket):
    raw.put_object(Bucket=BUCKET, Key="inbox/report.pdf", Body=b"original")
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    status, checks = call(
        browser, visit, "prepare", {"files": [{"id": "f1", "path": "report.pdf", "size": 3}]}
    )
    assert status == 200 and checks["files"][0]["key"] == "inbox/report (2).pdf"
    assert checks["files"][0]["exists"] is False
    status, done = send_small(raw, browser, visit, "report.pdf", b"new")
    assert status == 200 and done["key"] == "inbox/report (2).pdf"
    original = raw.get_object(Bucket=BUCKET, Key="inbox/report.pdf")["Body"].read()
    assert original == b"original"
    status, body = call(browser, visit, "create", {"key": "../report.pdf", "size": 3})
    assert status == 400 and "“..”" in body["error"]
    assert FileRequest.objects.get().bytes_reserved == 0


def test_declared_size_over_the_cap_is_refused(raw, alice, bucket):
    new = create(alice, max_bytes=10, max_files=2)
    browser = outsider()
    visit = open_visit(browser, new.token)
    status, body = call(browser, visit, "create", {"key": "big.bin", "size": 11})
    assert status == 413 and "10 more bytes" in body["error"]
    assert send_small(raw, browser, visit, "a.txt", b"12345")[0] == 200
    assert send_small(raw, browser, visit, "b.txt", b"12345")[0] == 200
    status, body = call(browser, visit, "create", {"key": "c.txt", "size": 0})
    assert status == 410 and "all the files" in body["error"]
    request = FileRequest.objects.get()
    assert (request.bytes_received, request.files_received) == (10, 2)
    assert (request.bytes_reserved, request.files_reserved) == (0, 0)
    refused = AuditEvent.objects.filter(action="file_request.upload", outcome=Outcome.REFUSED)
    assert refused.count() == 2 and {row.client_ip for row in refused} == {IP}


def test_stored_size_over_the_declared_is_removed(raw, alice, bucket):
    new = create(alice, max_bytes=10)
    browser = outsider()
    visit = open_visit(browser, new.token)
    status, started = call(browser, visit, "create", {"key": "a.txt", "size": 5})
    assert status == 200
    # A browser that sends more than it announced (S3 without signed lengths would keep it).
    raw.put_object(Bucket=BUCKET, Key=started["key"], Body=b"x" * 40)
    status, body = call(browser, visit, "complete", {"uploadId": started["uploadId"]})
    assert status == 409 and "deleted" in body["error"]
    assert s3.head(BUCKET, "inbox/a.txt") is None
    request = FileRequest.objects.get()
    assert (request.bytes_received, request.bytes_reserved, request.files_reserved) == (0, 0, 0)
    removal = AuditEvent.objects.get(action="file_request.over_cap")
    assert (removal.client_ip, removal.user_agent) == (IP, AGENT)


def test_revoke_stops_part_signing_mid_upload(raw, alice, bucket):
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    size = 12 * MIB
    status, started = call(
        browser, visit, "create", {"key": "big.bin", "size": size, "multipart": True}
    )
    assert status == 200 and started["answerUrl"]
    answer = browser.post(started["answerUrl"])
    assert answer.status_code == 200 and started["uploadId"].encode() in answer.content
    status, signed = call(browser, visit, "sign", {"uploadId": started["uploadId"], "part": 1})
    assert status == 200 and signed["url"].startswith("https://")
    pending = PendingUpload.objects.get()
    raw.upload_part(
        Bucket=BUCKET, Key=pending.key, UploadId=pending.upload_id, PartNumber=1, Body=b"x" * MIB
    )
    service.file_request_revoke(actor=Actor(user=alice), request=new.request)
    # The part already stored is removed at once; the outsider's next steps are told why.
    assert not raw.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    status, body = call(browser, visit, "sign", {"uploadId": started["uploadId"], "part": 2})
    assert status == 410 and "withdrawn" in body["error"]
    status, body = call(browser, visit, "complete", {"uploadId": started["uploadId"]})
    assert status == 410
    denied = AuditEvent.objects.filter(action="upload.sign", outcome=Outcome.DENIED).get()
    assert denied.client_ip == IP


def test_abort_frees_the_reserved_room(raw, alice, bucket):
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    status, started = call(
        browser, visit, "create", {"key": "big.bin", "size": 12 * MIB, "multipart": True}
    )
    assert FileRequest.objects.get().bytes_reserved == 12 * MIB
    status, _ = call(browser, visit, "abort", {"uploadId": started["uploadId"]})
    assert status == 200
    assert FileRequest.objects.get().bytes_reserved == 0
    assert not PendingUpload.objects.exists()


def test_multipart_upload_completes_and_is_counted(raw, alice, bucket):
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    size = 12 * MIB
    status, started = call(
        browser, visit, "create", {"key": "big.bin", "size": size, "multipart": True}
    )
    for number in range(1, s3.part_count(size) + 1):
        raw.upload_part(
            Bucket=BUCKET,
            Key=started["key"],
            UploadId=started["uploadId"],
            PartNumber=number,
            Body=b"p" * s3.part_length(size, number),
        )
    status, done = call(browser, visit, "complete", {"uploadId": started["uploadId"]})
    assert status == 200 and done["size"] == size
    request = FileRequest.objects.get()
    assert (request.bytes_received, request.files_received, request.bytes_reserved) == (size, 1, 0)


# --- The owner's email ---------------------------------------------------------------------


def test_one_email_per_visit(raw, alice, bucket):
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    send_small(raw, browser, visit, "one.txt", b"1")
    send_small(raw, browser, visit, "two.txt", b"22")
    done = browser.post(reverse("file_request_done", args=[visit]))
    assert done.status_code == 200
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [alice.email]
    assert "inbox/one.txt" in message.body and "inbox/two.txt" in message.body
    assert IP in message.body
    browser.post(reverse("file_request_done", args=[visit]))
    later = timezone.now() + datetime.timedelta(hours=1)
    assert service.file_requests_report(now=later) == 0
    assert len(mail.outbox) == 1
    row = AuditEvent.objects.get(action="file_request.report")
    assert row.outcome == Outcome.SUCCESS


def test_periodic_report_sends_for_idle_visits_only(raw, alice, bucket):
    new = create(alice)
    browser, empty = outsider(), outsider()
    visit = open_visit(browser, new.token)
    open_visit(empty, new.token)
    send_small(raw, browser, visit, "one.txt", b"1")
    assert service.file_requests_report(now=timezone.now()) == 0
    later = timezone.now() + datetime.timedelta(minutes=service.REPORT_IDLE_MINUTES + 1)
    call_command("file_requests_report", "--once", "--now", later.isoformat())
    assert len(mail.outbox) == 1 and "one.txt" in mail.outbox[0].body
    assert FileRequestVisit.objects.filter(reported_at__isnull=False).count() == 1
    assert service.file_requests_report(now=later) == 0


def test_done_with_no_files_sends_nothing(alice, bucket):
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    assert browser.post(reverse("file_request_done", args=[visit])).status_code == 200
    assert mail.outbox == []
    assert browser.get(reverse("file_request_done", args=[visit])).status_code == 405


# --- Audit ----------------------------------------------------------------------------------


def test_every_step_is_audited_with_address_and_browser(raw, alice, bucket):
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    send_small(raw, browser, visit, "one.txt", b"1")
    actions = set(
        AuditEvent.objects.filter(client_ip=IP, user_agent=AGENT).values_list("action", flat=True)
    )
    assert {"file_request.open", "file_request.upload", "upload.start", "upload.complete"} <= (
        actions
    )
    assert not AuditEvent.objects.filter(action="upload.start", actor__isnull=False).exists()


# --- My links and revoking -----------------------------------------------------------------


def test_my_links_lists_requests_and_revokes(client, alice, bob, bucket):
    new = create(alice)
    page = client_for(client, alice).get(reverse("link_list"))
    assert b"Your invoices" in page.content and b'data-testid="file-requests"' in page.content
    url = reverse("file_request_revoke", args=[new.request.pk])
    assert client.get(url).status_code == 405
    assert client_for(Client(), bob).post(url).status_code == 404
    assert client.post(url).status_code == 302
    assert status_of(new.request) == RequestStatus.REVOKED


def test_request_button_is_only_for_writers(client, bob, bucket):
    page = client_for(client, bob).get(reverse("bucket_detail", args=[bucket]))
    assert page.status_code == 200 and b'data-testid="request-files"' not in page.content


def test_cleanup_of_a_forgotten_upload_frees_its_room(raw, alice, bucket):
    new = create(alice)
    browser = outsider()
    visit = open_visit(browser, new.token)
    call(browser, visit, "create", {"key": "big.bin", "size": 12 * MIB, "multipart": True})
    assert FileRequest.objects.get().bytes_reserved == 12 * MIB
    PendingUpload.objects.update(created_at=timezone.now() - datetime.timedelta(days=3))
    call_command("uploads_cleanup", "--hours", "24")
    assert not PendingUpload.objects.exists()
    request = FileRequest.objects.get()
    assert (request.bytes_reserved, request.files_reserved) == (0, 0)


def test_admin_lists_requests_with_their_status(client, admin_user, alice, bucket):
    new = create(alice)
    service.file_request_revoke(actor=Actor(user=alice), request=new.request)
    client_for(client, admin_user)
    listing = client.get(reverse("admin:sharing_filerequest_changelist"), {"status": "revoked"})
    assert listing.status_code == 200 and b"Your invoices" in listing.content
    listing = client.get(reverse("admin:sharing_filerequest_changelist"), {"status": "active"})
    assert b"Your invoices" not in listing.content
    detail = client.get(reverse("admin:sharing_filerequest_change", args=[new.request.pk]))
    assert detail.status_code == 200 and b'name="title"' not in detail.content


def test_a_visit_that_filled_the_request_still_sees_its_files_and_says_done(raw, alice, bucket):
    new = create(alice, max_files=1)
    browser = outsider()
    visit = open_visit(browser, new.token)
    assert send_small(raw, browser, visit, "only.txt", b"1")[0] == 200
    page = browser.get(f"/r/{new.token}")
    assert page.status_code == 200
    assert b"only.txt" in page.content and b'id="upload-config"' not in page.content
    assert b"all the files" in page.content
    assert outsider().get(f"/r/{new.token}").status_code == 410
    browser.post(reverse("file_request_done", args=[visit]))
    assert len(mail.outbox) == 1
