"""Buckets against the real embedded S3 server (what moto does not enforce)."""

import urllib.error
import urllib.request

import pytest
from django.urls import reverse

from sharing import s3
from sharing.models import AuditEvent, BucketGrant, Role
from tests.conftest import audit_rows, client_for, server_client

pytestmark = pytest.mark.integration


def test_create_list_delete_through_the_portal(client, alice, real_s3):
    client_for(client, alice)
    response = client.post(
        reverse("bucket_create"), {"name": "real-bucket", "abort_incomplete_days": "2"}
    )
    assert response.status_code == 302
    assert "real-bucket" in {b["Name"] for b in server_client(real_s3).list_buckets()["Buckets"]}
    assert b"real-bucket" in client.get(reverse("bucket_list")).content
    assert BucketGrant.objects.get(user=alice, bucket="real-bucket").role == Role.MANAGE
    assert client.post(reverse("bucket_delete", args=["real-bucket"])).status_code == 302
    assert "real-bucket" not in {
        b["Name"] for b in server_client(real_s3).list_buckets()["Buckets"]
    }
    assert audit_rows(action="bucket.delete")[-1] == ("bucket.delete", "outcome", "success")


def test_server_itself_refuses_deleting_a_non_empty_bucket(real_s3):
    raw = server_client(real_s3)
    raw.create_bucket(Bucket="full-bucket")
    raw.put_object(Bucket="full-bucket", Key="a.txt", Body=b"a")
    with pytest.raises(s3.S3Error) as caught:
        s3.delete_bucket("full-bucket")
    assert (caught.value.status, caught.value.code) == (409, "BucketNotEmpty")


def test_portal_refuses_non_empty_then_empties_and_deletes(client, alice, real_s3):
    client_for(client, alice).post(reverse("bucket_create"), {"name": "to-empty"})
    raw = server_client(real_s3)
    for index in range(3):
        raw.put_object(Bucket="to-empty", Key=f"f/{index}.txt", Body=b"x" * index)
    upload = raw.create_multipart_upload(Bucket="to-empty", Key="big.bin")
    refused = client.post(reverse("bucket_delete", args=["to-empty"]))
    assert refused.status_code == 409 and b"not empty" in refused.content
    done = client.post(
        reverse("bucket_delete", args=["to-empty"]),
        {"empty_first": "on", "confirm_name": "to-empty"},
    )
    assert done.status_code == 302
    assert "to-empty" not in {b["Name"] for b in raw.list_buckets()["Buckets"]}
    assert (
        AuditEvent.objects.get(action="bucket.empty", phase="outcome").message == "3 files deleted."
    )
    assert upload["UploadId"]


def test_wrong_keys_give_503_and_a_failure_row(client, admin_user, real_s3, settings):
    settings.S3_SECRET_ACCESS_KEY = "not-the-secret"
    response = client_for(client, admin_user).get(reverse("bucket_list"))
    assert response.status_code == 503
    assert b"credentials" in response.content
    row = AuditEvent.objects.filter(action="bucket.list").order_by("id").last()
    assert row.outcome == "failure"
    assert row.error_code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")


def test_anonymous_requests_are_denied(real_s3):
    server_client(real_s3).create_bucket(Bucket="private-one")
    server_client(real_s3).put_object(Bucket="private-one", Key="secret.txt", Body=b"secret")
    for path in ("/", "/private-one", "/private-one/secret.txt"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(real_s3.endpoint_url + path, timeout=5)  # noqa: S310
        assert caught.value.code in (401, 403)


def test_create_with_options_never_500s(client, alice, real_s3):
    response = client_for(client, alice).post(
        reverse("bucket_create"),
        {"name": "public-opts", "allow_public": "on", "abort_incomplete_days": "1"},
        follow=True,
    )
    assert response.status_code == 200
    assert "public-opts" in {b["Name"] for b in server_client(real_s3).list_buckets()["Buckets"]}
    outcomes = dict(
        AuditEvent.objects.filter(phase="outcome", bucket="public-opts").values_list(
            "action", "outcome"
        )
    )
    assert outcomes["bucket.create"] == "success"
    # Whatever the server supports, each option has an outcome row and failures are shown, not hidden.
    for action in ("bucket.allow_public", "bucket.set_lifecycle"):
        assert outcomes[action] in ("success", "failure")
        if outcomes[action] == "failure":
            assert b"message-warning" in response.content
