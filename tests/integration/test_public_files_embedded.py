"""The portal's "Allow public files" setting against the real embedded SeaweedFS, which has no Block
Public Access of its own: the portal's setting alone decides, and the pages say so plainly."""

import urllib.error
import urllib.request

import pytest
from django.urls import reverse

from sharing import s3, services
from sharing.audit import Actor
from sharing.models import AuditEvent
from sharing.services import public_access
from tests.conftest import client_for, server_client

pytestmark = pytest.mark.integration

KEY = "site/index.html"
BODY = b"<h1>hello</h1>"


def anonymous_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 — the embedded S3
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def actor(user) -> Actor:
    return Actor(user=user, ip="192.0.2.30", user_agent="pytest", name=user.username)


def create(client, real_s3, name: str, **options) -> str:
    response = client.post(reverse("bucket_create"), {"name": name, **options}, follow=True)
    assert response.status_code == 200
    server_client(real_s3).put_object(Bucket=name, Key=KEY, Body=BODY)
    return response.content.decode()


def test_unticked_bucket_refuses_public_files_on_the_real_server(client, alice, real_s3):
    client_for(client, alice)
    create(client, real_s3, "closed-real")
    response = client.post(
        reverse("object_public", args=["closed-real"]), {"key": KEY, "public": "1", "confirm": "on"}
    )
    assert response.status_code == 403
    assert "Public files are not allowed in this bucket" in response.content.decode()
    assert anonymous_status(s3.public_url("closed-real", KEY)) == 403
    upload = client.post(
        reverse("upload_create", args=["closed-real"]),
        {"key": "pub.txt", "size": 3, "type": "text/plain", "acl": "public-read"},
        content_type="application/json",
    )
    assert upload.status_code == 403
    page = client.get(reverse("bucket_detail", args=["closed-real"])).content.decode()
    assert "Public files: <strong>not allowed in this bucket</strong>" in page
    assert 'value="public-read"' not in page
    detail = client.get(reverse("object_detail", args=["closed-real"]), {"key": KEY})
    assert 'data-testid="make-public"' not in detail.content.decode()


def test_ticked_bucket_allows_public_files_and_says_so(client, alice, real_s3):
    client_for(client, alice)
    created = create(client, real_s3, "open-real", allow_public="on")
    # SeaweedFS has no Block Public Access to remove: that is not a failure to report.
    assert "could not be" not in created and "message-warning" not in created
    outcome = AuditEvent.objects.get(action="bucket.allow_public", phase="outcome")
    assert (outcome.outcome, outcome.message) == (
        "success",
        "The storage does not support Block Public Access.",
    )
    page = client.get(reverse("bucket_detail", args=["open-real"])).content.decode()
    assert "Public files: <strong>allowed in this bucket</strong>" in page
    assert "The storage does not support a Block Public Access setting" in page
    assert 'value="public-read"' in page
    response = client.post(
        reverse("object_public", args=["open-real"]), {"key": KEY, "public": "1", "confirm": "on"}
    )
    assert "The file is now public." in client.get(response["Location"]).content.decode()
    assert anonymous_status(s3.public_url("open-real", KEY)) == 200


def test_turning_the_setting_on_later_makes_public_possible(client, alice, real_s3):
    client_for(client, alice)
    create(client, real_s3, "later-real")
    with pytest.raises(public_access.PublicFilesNotAllowedError):
        public_access.object_set_public(
            actor=actor(alice), bucket="later-real", key=KEY, public=True
        )
    response = client.post(
        reverse("bucket_public_files", args=["later-real"]),
        {"public_files": "allowed"},
        follow=True,
    )
    assert "Public files are now allowed in this bucket." in response.content.decode()
    assert "message-warning" not in response.content.decode()
    state = public_access.object_set_public(
        actor=actor(alice), bucket="later-real", key=KEY, public=True
    )
    assert state.public is True
    assert anonymous_status(s3.public_url("later-real", KEY)) == 200
    services.bucket_delete(actor=actor(alice), name="later-real", empty_first=True)
