"""Bucket list, create and delete through the HTTP client, on moto."""

import re

import boto3
import pytest
from django.urls import reverse

from sharing.models import AuditEvent, BucketGrant, Role
from tests.conftest import PASSWORD, audit_rows, client_for


def without_csrf(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def s3_buckets() -> set[str]:
    return {
        b["Name"] for b in boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]
    }


def put(bucket: str, key: str, body: bytes = b"x") -> None:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body=body)


def test_bucket_list_needs_login(client):
    response = client.get(reverse("bucket_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_owner_sees_bucket_with_role(client, alice, bucket):
    response = client_for(client, alice).get(reverse("bucket_list"))
    assert response.status_code == 200
    assert b"team-files" in response.content
    assert b"badge-manage" in response.content


def test_list_shows_only_granted_buckets(client, bob, bucket):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="secret-stuff")
    content = client_for(client, bob).get(reverse("bucket_list")).content
    assert b"team-files" in content
    assert b"badge-read" in content
    assert b"secret-stuff" not in content


def test_superuser_sees_every_bucket(client, admin_user, bucket):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="secret-stuff")
    content = client_for(client, admin_user).get(reverse("bucket_list")).content
    assert b"team-files" in content and b"secret-stuff" in content


def test_person_without_grants_sees_empty_state_and_no_s3_call(client, charlie, moto_s3):
    response = client_for(client, charlie).get(reverse("bucket_list"))
    assert b"not been given access to any bucket" in response.content
    assert b"New bucket" not in response.content
    assert not AuditEvent.objects.filter(action="bucket.list").exists()


def test_create_bucket_grants_manage_and_is_audited(client, alice, moto_s3):
    response = client_for(client, alice).post(
        reverse("bucket_create"), {"name": "reports-2026", "abort_incomplete_days": "3"}
    )
    assert response.status_code == 302
    assert "reports-2026" in s3_buckets()
    assert BucketGrant.objects.get(user=alice, bucket="reports-2026").role == Role.MANAGE
    assert audit_rows(bucket="reports-2026") == [
        ("bucket.create", "intent", "pending"),
        ("bucket.create", "outcome", "success"),
        ("grant.create", "event", "success"),
        ("bucket.set_lifecycle", "intent", "pending"),
        ("bucket.set_lifecycle", "outcome", "success"),
    ]
    rules = boto3.client("s3", region_name="us-east-1").get_bucket_lifecycle_configuration(
        Bucket="reports-2026"
    )["Rules"]
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}


def test_create_bucket_with_public_files_allowed(client, alice, moto_s3):
    client_for(client, alice).post(
        reverse("bucket_create"), {"name": "public-site", "allow_public": "on"}
    )
    assert "public-site" in s3_buckets()
    assert audit_rows(action="bucket.allow_public")[-1] == (
        "bucket.allow_public",
        "outcome",
        "success",
    )


def test_create_page_shows_form(client, alice, moto_s3):
    response = client_for(client, alice).get(reverse("bucket_create"))
    assert response.status_code == 200
    assert b'name="name"' in response.content


def test_create_existing_bucket_is_refused_and_grants_nothing(client, alice, moto_s3):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="someone-elses")
    response = client_for(client, alice).post(reverse("bucket_create"), {"name": "someone-elses"})
    assert response.status_code == 409
    assert "already exists" in response.content.decode()
    assert not BucketGrant.objects.filter(bucket="someone-elses").exists()
    assert audit_rows(bucket="someone-elses")[-1] == ("bucket.create", "outcome", "failure")
    assert (
        AuditEvent.objects.filter(bucket="someone-elses").order_by("id").last().error_code
        == "BucketExistsError"
    )


def test_member_without_create_permission_gets_403(client, bob, moto_s3):
    response = client_for(client, bob).post(reverse("bucket_create"), {"name": "bobs-bucket"})
    assert response.status_code == 403
    assert "bobs-bucket" not in s3_buckets()
    assert audit_rows(bucket="bobs-bucket") == [("bucket.create", "event", "denied")]


def test_invalid_name_is_refused_before_any_s3_call(client, alice, moto_s3):
    response = client_for(client, alice).post(reverse("bucket_create"), {"name": "My_Bucket"})
    assert response.status_code == 400
    assert "lowercase letters" in response.content.decode()
    # The refusal is the only row: no intent, so S3 was never asked.
    assert audit_rows(action="bucket.create") == [("bucket.create", "event", "refused")]


def test_delete_empty_bucket(client, alice, bucket):
    response = client_for(client, alice).post(reverse("bucket_delete", args=[bucket]))
    assert response.status_code == 302
    assert bucket not in s3_buckets()
    assert not BucketGrant.objects.filter(bucket=bucket).exists()
    assert audit_rows(action="bucket.delete") == [
        ("bucket.delete", "intent", "pending"),
        ("bucket.delete", "outcome", "success"),
    ]


def test_delete_non_empty_bucket_is_refused_with_clear_message(client, alice, bucket):
    put(bucket, "a.txt")
    response = client_for(client, alice).post(reverse("bucket_delete", args=[bucket]))
    assert response.status_code == 409
    assert "not empty" in response.content.decode()
    assert b"Empty and delete" in response.content
    assert bucket in s3_buckets()
    row = AuditEvent.objects.filter(action="bucket.delete").order_by("id").last()
    assert (row.outcome, row.error_code) == ("failure", "BucketNotEmptyError")


def test_delete_page_of_a_non_empty_bucket_asks_for_the_typed_name_at_once(client, alice, bucket):
    put(bucket, "a.txt")
    response = client_for(client, alice).get(reverse("bucket_delete", args=[bucket]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="empty-and-delete"' in html and 'name="confirm_name"' in html
    assert 'data-testid="confirm-delete"' not in html  # no plain delete that can only be refused
    # Asked through the gateway, and audited.
    assert audit_rows(action="bucket.check_empty") == [
        ("bucket.check_empty", "intent", "pending"),
        ("bucket.check_empty", "outcome", "success"),
    ]
    assert AuditEvent.objects.get(action="bucket.check_empty", phase="outcome").message == (
        "The bucket holds files."
    )


def test_delete_page_of_an_empty_bucket_offers_the_plain_delete(client, alice, bucket):
    response = client_for(client, alice).get(reverse("bucket_delete", args=[bucket]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="confirm-delete"' in html and "This bucket is empty." in html
    assert 'name="confirm_name"' not in html


def test_delete_page_says_so_when_storage_is_down(client, alice, bucket, settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    response = client_for(client, alice).get(reverse("bucket_delete", args=[bucket]))
    assert response.status_code == 503
    assert audit_rows(action="bucket.check_empty")[-1] == (
        "bucket.check_empty",
        "outcome",
        "failure",
    )


def test_reader_gets_403_on_the_delete_page_and_storage_is_not_asked(client, bob, bucket):
    response = client_for(client, bob).get(reverse("bucket_delete", args=[bucket]))
    assert response.status_code == 403
    assert audit_rows(action="bucket.check_empty") == []


def test_empty_and_delete_needs_the_typed_name(client, alice, bucket):
    put(bucket, "a.txt")
    response = client_for(client, alice).post(
        reverse("bucket_delete", args=[bucket]), {"empty_first": "on", "confirm_name": "team"}
    )
    assert response.status_code == 400
    assert "type the bucket" in response.content.decode()
    assert bucket in s3_buckets()


def test_empty_and_delete_removes_everything(client, alice, bucket, monkeypatch):
    monkeypatch.setattr("sharing.s3.core.DELETE_BATCH", 4)  # several DeleteObjects batches
    for index in range(10):
        put(bucket, f"dir/{index}.txt")
    response = client_for(client, alice).post(
        reverse("bucket_delete", args=[bucket]), {"empty_first": "on", "confirm_name": bucket}
    )
    assert response.status_code == 302
    assert bucket not in s3_buckets()
    assert AuditEvent.objects.filter(action="bucket.empty", phase="outcome").get().message == (
        "10 files deleted."
    )


def test_reader_cannot_delete(client, bob, bucket):
    response = client_for(client, bob).post(reverse("bucket_delete", args=[bucket]))
    assert response.status_code == 403
    assert bucket in s3_buckets()
    assert audit_rows(action="bucket.delete") == [("bucket.delete", "event", "denied")]


@pytest.mark.parametrize("name", ["bucket_list", "bucket_create"])
def test_pages_need_login(client, name):
    assert client.get(reverse(name)).status_code == 302


@pytest.mark.parametrize("view", ["bucket_detail", "bucket_delete"])
def test_outsider_gets_404(client, charlie, bucket, view):
    response = client_for(client, charlie).get(reverse(view, args=[bucket]))
    assert response.status_code == 404
    assert b"no access" in response.content


def test_outsider_gets_same_404_for_missing_bucket(client, charlie, bucket):
    existing = client_for(client, charlie).get(reverse("bucket_detail", args=[bucket]))
    missing = client.get(reverse("bucket_detail", args=["does-not-exist"]))
    assert existing.status_code == missing.status_code == 404
    assert without_csrf(existing.content) == without_csrf(missing.content)


def test_get_on_logout_is_405(client, alice):
    assert client_for(client, alice).get(reverse("logout")).status_code == 405


def test_bucket_page_lists_folders_and_files(client, bob, bucket):
    put(bucket, "docs/readme.txt")
    put(bucket, "top.txt", b"12345")
    response = client_for(client, bob).get(reverse("bucket_detail", args=[bucket]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "docs/" in content and "top.txt" in content
    assert "Delete bucket" not in content  # bob only reads
    inner = client.get(
        reverse("bucket_detail", args=[bucket]), {"prefix": "docs/"}
    ).content.decode()
    assert "readme.txt" in inner and "top.txt" not in inner


def test_login_then_buckets(client, alice, bucket):
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("bucket_list")).status_code == 200
