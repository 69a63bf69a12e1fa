"""Refused form input and CSRF failures: one audit row each, saying why, never a secret."""

import datetime
import json
import re
from urllib.parse import urlencode

import boto3
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing.audit import Actor
from sharing.models import AuditEvent, ShareLink
from sharing.services import links
from tests.conftest import client_for

KEY = "docs/report.txt"
SECRET = "hunter2-is-my-secret"
SHORT_SECRET = "hunt3r!"  # 7 characters: under LINK_PASSWORD_MIN_LENGTH (8)
UA = "Mozilla/5.0 (Refusal test)"


@pytest.fixture
def file(bucket) -> str:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=KEY, Body=b"x")
    return KEY


@pytest.fixture
def new_link(alice, file) -> links.NewLink:
    actor = Actor(user=alice, name="alice")
    expires_at = timezone.now() + datetime.timedelta(hours=1)
    return links.link_create(actor=actor, bucket="team-files", key=file, expires_at=expires_at)


def refusals(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(outcome="refused", **filters).order_by("id"))


def the_refusal(action: str, user) -> AuditEvent:
    """Return the one refusal row of this action, checking who it names."""
    rows = refusals()
    assert [row.action for row in rows] == [action]
    row = rows[0]
    assert (row.actor_id, row.actor_name, row.phase) == (user.pk, user.username, "event")
    assert "\n" not in row.message and "\r" not in row.message
    return row


def assert_nowhere(*secrets: str) -> None:
    """No field of any audit row holds any of the secrets."""
    for row in AuditEvent.objects.values():
        for name, value in row.items():
            for secret in secrets:
                assert secret not in str(value), f"a secret is in the audit field {name}"


# --- Buckets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown", "why"),
    [
        ("Team_Files", "“Team_Files”", "may only contain lowercase letters"),
        ("ab", "“ab”", "3 to 63 characters"),
        ("bad\nname", "“bad\\nname”", "may only contain lowercase letters"),
        ("evil\u202etxt.exe", "“evil\\u202etxt.exe”", "may only contain lowercase letters"),
        ("x" * 200, "“" + "x" * 100 + "…”", "3 to 63 characters"),
    ],
)
def test_refused_bucket_name_is_recorded_escaped_and_cut(client, alice, moto_s3, name, shown, why):
    response = client_for(client, alice).post(reverse("bucket_create"), {"name": name})
    assert response.status_code == 400
    row = the_refusal("bucket.create", alice)
    assert row.message.startswith(f"name {shown}: ") and why in row.message
    assert row.bucket == ""


def test_refused_bucket_deletion_is_recorded(client, alice, bucket):
    response = client_for(client, alice).post(
        reverse("bucket_delete", args=[bucket]), {"empty_first": "on", "confirm_name": "team"}
    )
    assert response.status_code == 400
    row = the_refusal("bucket.delete", alice)
    assert row.bucket == bucket and "type the bucket's name exactly" in row.message


# --- Share links --------------------------------------------------------------------------------


def share(client, user, view: str, prefix: str, **fields):
    data = {f"{prefix}-{name}": value for name, value in fields.items()}
    return client_for(client, user).post(reverse(view, args=["team-files"]), data)


@pytest.mark.parametrize(
    ("amount", "unit", "why"),
    [
        ("0", "minutes", "more than zero"),
        ("-1", "hours", "more than zero"),
        ("-3", "days", "more than zero"),
        ("10081", "minutes", "at most 7 days"),
        ("8", "days", "at most 7 days"),
        ("", "hours", "Give a number"),
    ],
)
def test_bad_link_expiry_is_recorded_without_the_password(client, alice, file, amount, unit, why):
    response = share(
        client, alice, "link_create", "link", key=file, expiry="custom",
        custom_amount=amount, custom_unit=unit, password=SECRET,
    )  # fmt: skip
    assert response.status_code == 400
    row = the_refusal("link.create", alice)
    assert (row.bucket, row.key) == ("team-files", KEY) and why in row.message
    assert_nowhere(SECRET)


def test_too_short_link_password_is_recorded_without_it(client, alice, file):
    response = share(
        client, alice, "link_create", "link", key=file, expiry="1d", password=SHORT_SECRET
    )
    assert response.status_code == 400
    row = the_refusal("link.create", alice)
    assert (row.bucket, row.key) == ("team-files", KEY)
    assert "at least 8 characters" in row.message
    assert not ShareLink.objects.exists()
    assert_nowhere(SHORT_SECRET)
    # A good password afterwards is no refusal.
    assert share(client, alice, "link_create", "link", key=file, expiry="1d", password=SECRET)
    assert ShareLink.objects.count() == 1 and len(refusals()) == 1
    assert_nowhere(SHORT_SECRET, SECRET)


def test_too_long_link_password_is_recorded_without_it(client, alice, file):
    secret = "correct-horse-" * 15  # 210 characters: the form refuses it
    response = share(client, alice, "link_create", "link", key=file, expiry="1d", password=secret)
    assert response.status_code == 400
    row = the_refusal("link.create", alice)
    assert row.message == "password: Ensure this value has at most 200 characters (it has 210)."
    assert_nowhere(secret, "correct-horse-")


def test_a_password_typed_into_another_field_is_not_recorded(client, alice, file):
    response = share(
        client, alice, "link_create", "link", key=file, expiry="custom",
        custom_amount=SECRET, password=SECRET,
    )  # fmt: skip
    assert response.status_code == 400
    assert the_refusal("link.create", alice).message == (
        "custom_amount: refused (invalid); Give a number for the custom duration."
    )
    assert_nowhere(SECRET)


def test_bad_download_limit_is_recorded(client, alice, file):
    response = share(client, alice, "link_create", "link", key=file, expiry="1d", max_downloads="0")
    assert response.status_code == 400
    row = the_refusal("link.create", alice)
    assert row.message == "max_downloads “0”: Ensure this value is greater than or equal to 1."


@pytest.mark.parametrize(
    ("recipients", "why"),
    [
        ("a@b.com\nBcc: x@y", "“Bcc:” is not a valid email address."),
        ("a@b.com\r\nBcc: x@y.com", "“Bcc:” is not a valid email address."),
        ("not-an-address", "“not-an-address” is not a valid email address."),
        ("ok@example.com, a@b.com\x00", "Null characters are not allowed."),
        ("ok@example.com, a@b.com\x07", "control character"),
    ],
)
def test_bad_recipients_are_recorded(client, alice, file, recipients, why):
    response = share(
        client, alice, "links_email", "email", key=file, expiry="1d",
        recipients=recipients, password=SECRET,
    )  # fmt: skip
    assert response.status_code == 400
    row = the_refusal("link.email", alice)
    assert (row.bucket, row.key) == ("team-files", KEY) and why in row.message
    assert "\x00" not in row.message and "\x07" not in row.message
    assert not ShareLink.objects.exists()
    assert_nowhere(SECRET)


def test_too_many_recipients_are_recorded(client, alice, file, settings):
    settings.LINK_EMAIL_MAX_RECIPIENTS = 3
    addresses = ", ".join(f"p{n}@example.com" for n in range(4))
    response = share(
        client, alice, "links_email", "email", key=file, expiry="1d", recipients=addresses
    )
    assert response.status_code == 400
    assert "At most 3 recipients" in the_refusal("link.email", alice).message


def test_email_form_refusal_keeps_the_recipients_but_not_the_password(client, alice, file):
    response = share(
        client, alice, "links_email", "email", key=file, expiry="custom", custom_amount="0",
        recipients="a@b.com\nBcc: x@y", password=SECRET,
    )  # fmt: skip
    assert response.status_code == 400
    row = the_refusal("link.email", alice)
    assert row.message == "The duration must be more than zero."
    assert_nowhere(SECRET)


def test_bad_raw_url_expiry_is_recorded(client, alice, file):
    response = share(
        client, alice, "object_presign", "raw", key=file, expiry="custom",
        custom_amount="8", custom_unit="days",
    )  # fmt: skip
    assert response.status_code == 400
    row = the_refusal("object.presign", alice)
    assert (row.key, row.message) == (
        KEY,
        "A link can last at most 7 days (the limit of S3's signed URLs).",
    )


def test_unconfirmed_public_file_is_recorded(client, alice, file):
    response = client_for(client, alice).post(
        reverse("object_public", args=["team-files"]), {"key": file, "public": "1"}
    )
    assert response.status_code == 400
    row = the_refusal("object.set_public", alice)
    assert row.key == KEY and "Tick the box" in row.message


def test_bad_extension_and_extending_a_withdrawn_link_are_recorded(client, alice, new_link):
    url = reverse("link_extend", args=[new_link.link.pk])
    client_for(client, alice).post(
        url, {"expiry": "custom", "custom_amount": "9", "custom_unit": "days"}
    )
    row = the_refusal("link.extend", alice)
    assert (row.bucket, row.key) == ("team-files", KEY) and "at most 7 days" in row.message
    links.link_revoke(actor=Actor(user=alice, name="alice"), link=new_link.link)
    client.post(url, {"expiry": "1d"})
    assert [row.message for row in refusals(action="link.extend")][1] == (
        "A withdrawn link cannot be extended; create a new one."
    )
    assert_nowhere(new_link.token)


@pytest.mark.parametrize(
    "expires_at",
    [
        pytest.param(lambda now: now, id="expiry-0"),
        pytest.param(lambda now: now - datetime.timedelta(seconds=1), id="expiry-minus-1"),
        pytest.param(lambda now: now + datetime.timedelta(seconds=604801), id="604801-s"),
        pytest.param(lambda now: now - datetime.timedelta(days=1), id="yesterday"),
    ],
)
def test_bad_expiry_refused_by_the_service_is_recorded(alice, file, expires_at):
    # Callers other than the form (commands, the shell) are refused by the service, and recorded.
    actor = Actor(user=alice, name="alice")
    with pytest.raises(links.LinkError):
        links.link_create(
            actor=actor, bucket="team-files", key=file,
            expires_at=expires_at(timezone.now()), password=SECRET,
        )  # fmt: skip
    row = the_refusal("link.create", alice)
    assert (row.bucket, row.key) == ("team-files", KEY)
    assert "in the future" in row.message or "at most 7 days" in row.message
    assert_nowhere(SECRET)


def test_link_to_a_missing_file_is_a_failure_not_a_refusal(client, alice, file):
    share(
        client,
        alice,
        "link_create",
        "link",
        key="docs/gone.txt",
        expiry="1d",
        password=SHORT_SECRET,
    )
    assert "at least 8" in the_refusal("link.create", alice).message
    response = share(client, alice, "link_create", "link", key="docs/gone.txt", expiry="1d")
    assert response.status_code == 404
    outcomes = list(
        AuditEvent.objects.filter(action="link.create").values_list("outcome", flat=True)
    )
    assert sorted(outcomes) == ["failure", "pending", "refused"]


# --- Folders, copy, move, rename ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown", "why"),
    [
        ("..", "“..”", "must not contain empty"),
        ("a\u202egpj.exe", "“a\\u202egpj.exe”", "invisible or text-direction"),
        ("x\\y", "“x\\y”", "backslash"),
        ("a\x00b", "“a\\x00b”", "Null characters are not allowed."),
        ("a\x07b", "“a\\x07b”", "control characters"),
    ],
)
def test_bad_folder_name_is_recorded(client, alice, bucket, name, shown, why):
    response = client_for(client, alice).post(
        reverse("folder_create", args=[bucket]), {"prefix": "docs/", "name": name}
    )
    assert response.status_code == 302
    row = the_refusal("folder.create", alice)
    assert (row.bucket, row.key) == (bucket, "docs/")
    assert row.message.startswith(f"name {shown}: ") and why in row.message


def transfer(client, user, data: dict, **query):
    url = f"{reverse('object_transfer', args=['team-files'])}?{urlencode(query)}"
    return client_for(client, user).post(url, data)


@pytest.mark.parametrize(
    ("mode", "dst_key", "action", "why"),
    [
        ("copy", "../../etc/passwd", "object.copy", "dst_key “../../etc/passwd”: A path must"),
        ("move", "/abs", "object.move", "dst_key “/abs”: A file path must not start"),
        ("copy", "a\u200b.txt", "object.copy", "dst_key “a\\u200b.txt”: A file name must not"),
        ("move", KEY, "object.move", "The destination is the file itself"),
    ],
)
def test_bad_copy_move_and_rename_targets_are_recorded(
    client, alice, file, mode, dst_key, action, why
):
    response = transfer(
        client, alice, {"dst_bucket": "team-files", "dst_key": dst_key, "mode": mode}, key=file
    )
    assert response.status_code == 400
    row = the_refusal(action, alice)
    assert (row.bucket, row.key) == ("team-files", KEY) and why in row.message


def test_copy_into_a_bucket_not_offered_is_recorded(client, bob, file):
    response = transfer(
        client, bob, {"dst_bucket": "team-files", "dst_key": "b.txt", "mode": "copy"}, key=file
    )
    assert response.status_code == 400
    row = the_refusal("object.copy", bob)
    assert row.message.startswith("dst_bucket “team-files”: Select a valid choice.")


def test_folder_moved_into_itself_is_recorded(client, alice, file):
    response = transfer(
        client, alice, {"dst_bucket": "team-files", "dst_key": "docs/inner", "mode": "move"},
        prefix="docs/",
    )  # fmt: skip
    assert response.status_code == 400
    row = the_refusal("folder.move", alice)
    assert (row.key, row.message) == ("docs/", "A folder cannot be copied or moved into itself.")


# --- Uploads --------------------------------------------------------------------------------


def prepare(client, user, data: dict):
    url = reverse("upload_prepare", args=["team-files"])
    return client_for(client, user).post(url, json.dumps(data), content_type="application/json")


def test_upload_into_a_bad_folder_name_is_recorded(client, alice, bucket):
    files = [{"id": "1", "path": "a.txt", "size": 1}]
    response = prepare(client, alice, {"prefix": "a/../b\n", "files": files})
    assert response.status_code == 400
    row = the_refusal("upload.prepare", alice)
    assert row.key == "a/../b\\n" and "The folder is not valid" in row.message


def test_too_many_files_for_upload_is_recorded(client, alice, bucket, settings):
    settings.UPLOAD_MAX_FILES = 2
    files = [{"id": str(n), "path": f"{n}.txt", "size": 1} for n in range(3)]
    assert prepare(client, alice, {"prefix": "docs/", "files": files}).status_code == 413
    assert "At most 2 files" in the_refusal("upload.prepare", alice).message


# --- CSRF -----------------------------------------------------------------------------------


def csrf_rows() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="csrf").order_by("id"))


def test_csrf_failure_is_recorded_with_the_user(alice, moto_s3):
    strict = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA)
    strict.force_login(alice)
    response = strict.post(reverse("bucket_create"), {"name": "csrf-test"})
    assert response.status_code == 403
    [row] = csrf_rows()
    assert (row.outcome, row.actor_id, row.actor_name, row.user_agent) == (
        "denied",
        alice.pk,
        "alice",
        UA,
    )
    assert row.message == "POST /buckets/new/: CSRF cookie not set."


def test_csrf_failure_on_a_share_link_keeps_no_token(new_link):
    strict = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.9")
    url = f"/s/{new_link.token}"
    assert strict.post(url, {"password": SECRET}).status_code == 403
    page = strict.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    data = {"csrfmiddlewaretoken": token, "password": SECRET}
    assert strict.post(url, data, HTTP_ORIGIN="https://evil.example").status_code == 403
    referer = f"https://evil.example/s/{new_link.token}?X-Amz-Signature=abc123def456"
    assert strict.post(url, data, secure=True, HTTP_REFERER=referer).status_code == 403
    rows = csrf_rows()
    path = f"/s/{new_link.token[:4]}[redacted]"  # sharing/logs.py's rule, as in the logs
    assert [row.message for row in rows] == [
        f"POST {path}: CSRF cookie not set.",
        f"POST {path}: Origin checking failed - https://evil.example does not match any trusted origins.",
        f"POST {path}: Referer checking failed - https://evil.example{path}?X-Amz-Signature=[redacted]"
        " does not match any trusted origins.",
    ]
    for row in rows:
        assert (row.outcome, row.actor_id, row.actor_name) == ("denied", None, "")
        assert (row.client_ip, row.user_agent) == ("203.0.113.9", UA)
    assert_nowhere(new_link.token, SECRET, token, "abc123def456")
    assert ShareLink.objects.get().downloads == 0
