"""Share links and public files against the real embedded S3 server (what moto does not enforce):
presigned URLs that really expire, tampered signatures, the bucket-policy path for public files."""

import datetime
import json
import re
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from sharing import s3, services
from sharing.audit import Actor
from sharing.services import links, public_access
from tests.conftest import client_for, server_client

pytestmark = pytest.mark.integration

KEY = "reports/année 2026.csv"
BODY = b"id;total\n1;42\n"


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, dict]:
    """Return status, body and headers of a plain, anonymous request."""
    request = urllib.request.Request(url, method=method)  # noqa: S310 — http(s) URLs of S3
    try:
        with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def actor(user) -> Actor:
    return Actor(user=user, ip="192.0.2.20", user_agent="pytest", name=user.username)


@pytest.fixture
def shared(real_s3, alice) -> str:
    services.bucket_create(actor=actor(alice), name="real-share", allow_public=True)
    server_client(real_s3).put_object(Bucket="real-share", Key=KEY, Body=BODY)
    return "real-share"


def test_presigned_url_really_expires(shared):
    url = s3.presigned_get(shared, KEY, filename="année 2026.csv", seconds=1)
    status, body, headers = fetch(url)
    assert (status, body) == (200, BODY)
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''ann%C3%A9e%202026.csv" in headers["Content-Disposition"]
    time.sleep(2.5)
    status, body, _ = fetch(url)
    assert status == 403 and b"expired" in body.lower()


def test_tampered_signature_and_widened_expiry_fail(shared):
    url = s3.presigned_get(shared, KEY, filename="x.csv", seconds=60)
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert fetch(url.replace(signature, flipped))[0] == 403
    assert fetch(url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"))[0] == 403
    other = url.replace("ann%C3%A9e%202026.csv", "other.csv")
    assert fetch(other)[0] == 403  # the signature covers the key: no reaching beyond it
    assert fetch(url)[0] == 200


def test_anonymous_request_is_refused_without_a_grant(shared):
    assert fetch(s3.public_url(shared, KEY))[0] == 403


def test_share_link_download_end_to_end(client, alice, shared):
    new = links.link_create(
        actor=actor(alice),
        bucket=shared,
        key=KEY,
        expires_at=timezone.now() + datetime.timedelta(hours=1),
        max_downloads=1,
    )
    page = client.get(f"/s/{new.token}")
    assert page.status_code == 200 and "année 2026.csv" in page.content.decode()
    origin = s3.download_origin(shared, KEY)
    assert f"form-action 'self' {origin}" in page["Content-Security-Policy"]
    response = client.post(f"/s/{new.token}")
    assert response.status_code == 302 and response["Location"].startswith(origin)
    status, body, headers = fetch(response["Location"])
    assert (status, body) == (200, BODY)
    assert headers["Content-Disposition"].startswith("attachment;")
    assert client.post(f"/s/{new.token}").status_code == 410


def test_policy_path_makes_public_then_private(alice, shared, real_s3):
    raw = server_client(real_s3)
    raw.put_object(Bucket=shared, Key="reports/other.csv", Body=b"stays private")
    raw.put_bucket_policy(
        Bucket=shared,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "KeepMe",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:DeleteObject",
                        "Resource": f"arn:aws:s3:::{shared}/locked/*",
                    }
                ],
            }
        ),
    )
    url = s3.public_url(shared, KEY)
    state = public_access.object_set_public(actor=actor(alice), bucket=shared, key=KEY, public=True)
    # SeaweedFS reports "bucket owner enforced" and ignores object ACLs: the policy path is used.
    assert (state.public, state.method, state.explanation) == (True, "policy", "")
    assert fetch(url)[:2] == (200, BODY)
    assert fetch(s3.public_url(shared, "reports/other.csv"))[0] == 403
    sids = {
        s["Sid"] for s in json.loads(raw.get_bucket_policy(Bucket=shared)["Policy"])["Statement"]
    }
    assert sids == {"KeepMe", s3.public_read_sid(KEY)}
    assert (
        public_access.object_public_state(actor=actor(alice), bucket=shared, key=KEY).public is True
    )

    state = public_access.object_set_public(
        actor=actor(alice), bucket=shared, key=KEY, public=False
    )
    assert state.public is False
    assert fetch(url)[0] == 403
    sids = {
        s["Sid"] for s in json.loads(raw.get_bucket_policy(Bucket=shared)["Policy"])["Statement"]
    }
    assert sids == {"KeepMe"}


def test_acl_from_an_upload_is_not_trusted_and_is_cleared(alice, shared, real_s3):
    """SeaweedFS stores a public-read ACL without enforcing it; the page must not call it public."""
    raw = server_client(real_s3)
    raw.put_object_acl(Bucket=shared, Key=KEY, ACL="public-read")
    state = public_access.object_public_state(actor=actor(alice), bucket=shared, key=KEY)
    assert state.public is False  # measured, not read from the ACL
    public_access.object_set_public(actor=actor(alice), bucket=shared, key=KEY, public=False)
    grants = raw.get_object_acl(Bucket=shared, Key=KEY)["Grants"]
    assert not any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)


def test_toggle_through_the_page_on_the_real_server(client, alice, shared):
    client_for(client, alice)
    response = client.post(
        reverse("object_public", args=[shared]), {"key": KEY, "public": "1", "confirm": "on"}
    )
    page = client.get(response["Location"]).content.decode()
    assert "The file is now public." in page
    assert 'data-testid="public-url"' in page
    assert fetch(s3.public_url(shared, KEY))[0] == 200
    client.post(reverse("object_public", args=[shared]), {"key": KEY, "public": "0"})
    assert fetch(s3.public_url(shared, KEY))[0] == 403


def test_raw_presigned_url_from_the_page_works(client, alice, shared):
    response = client_for(client, alice).post(
        reverse("object_presign", args=[shared]),
        {"raw-key": KEY, "raw-expiry": "1h"},
    )
    found = re.search(r'value="([^"]+)" id="created-url"', response.content.decode())
    url = found[1].replace("&amp;", "&")
    assert "X-Amz-Expires=3600" in url
    assert fetch(url)[:2] == (200, BODY)
