"""Public and private files on moto: the object-ACL path, the policy fallback, Block Public Access.

The anonymous probe is an unsigned boto3 HEAD, which moto answers and judges by the object ACL.
For bucket policies moto checks a HEAD against `s3:HeadObject`, not `s3:GetObject` as AWS does, so
tests of the policy path replay the probe as an anonymous GET (through `requests`, which moto also
answers).
"""

import json

import boto3
import pytest
import requests
from botocore.exceptions import ConnectTimeoutError
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse

from sharing import s3
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, BucketSettings
from sharing.services import public_access
from sharing.services.objects import ObjectError
from tests.conftest import audit_rows, client_for

KEY = "reports/q1 summary.pdf"


def raw():
    return boto3.client("s3", region_name="us-east-1")


def policy_of(bucket: str) -> dict | None:
    try:
        return json.loads(raw().get_bucket_policy(Bucket=bucket)["Policy"])
    except raw().exceptions.ClientError:
        return None


def acl_is_public(bucket: str, key: str) -> bool:
    grants = raw().get_object_acl(Bucket=bucket, Key=key)["Grants"]
    return any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)


def anonymous_get(bucket: str, key: str, *, timeout: float) -> int:
    response = requests.get(s3.public_url(bucket, key), stream=True, timeout=timeout)
    response.close()
    return response.status_code


@pytest.fixture
def probe(monkeypatch):
    """Replay the anonymous probe as a GET, whose policy check moto makes as AWS would."""
    monkeypatch.setattr(s3.public_access, "_anonymous_status", anonymous_get)


@pytest.fixture
def file(bucket) -> str:
    raw().put_object(Bucket=bucket, Key=KEY, Body=b"%PDF-1.7 numbers")
    return KEY


@pytest.fixture
def enforced_bucket(moto_s3, alice, probe) -> str:
    """A bucket with ACLs disabled (Object Ownership: bucket owner enforced), as new AWS buckets."""
    from sharing.models import Role

    raw().create_bucket(Bucket="no-acls", ObjectOwnership="BucketOwnerEnforced")
    raw().put_object(Bucket="no-acls", Key=KEY, Body=b"data")
    BucketGrant.objects.create(user=alice, bucket="no-acls", role=Role.MANAGE)
    BucketSettings.objects.create(bucket="no-acls", public_files=True)
    return "no-acls"


def as_actor(user) -> Actor:
    return Actor(user=user, ip="192.0.2.10", user_agent="pytest", name=user.username)


def test_owner_makes_a_file_public_by_its_acl(alice, file):
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="team-files", key=file, public=True
    )
    assert (state.public, state.method, state.explanation) == (True, "acl", "")
    assert state.url == "https://s3.amazonaws.com/team-files/reports/q1%20summary.pdf"
    assert acl_is_public("team-files", file)
    assert policy_of("team-files") is None
    assert requests.get(state.url, timeout=5).content == b"%PDF-1.7 numbers"
    assert audit_rows(key=file) == [
        ("object.set_public", "intent", "pending"),
        ("object.set_public", "outcome", "success"),
        ("object.probe_public", "intent", "pending"),
        ("object.probe_public", "outcome", "success"),
    ]
    assert (
        "object ACL" in AuditEvent.objects.get(action="object.set_public", phase="outcome").message
    )


def test_making_private_removes_the_acl_and_strangers_are_refused(alice, file):
    actor = as_actor(alice)
    public_access.object_set_public(actor=actor, bucket="team-files", key=file, public=True)
    state = public_access.object_set_public(
        actor=actor, bucket="team-files", key=file, public=False
    )
    assert (state.public, state.explanation) == (False, "")
    assert not acl_is_public("team-files", file)
    assert requests.get(state.url, timeout=5).status_code == 403
    assert ("object.set_private", "outcome", "success") in audit_rows(key=file)


def test_public_and_private_are_idempotent(alice, file):
    actor = as_actor(alice)
    for _ in range(2):
        assert public_access.object_set_public(
            actor=actor, bucket="team-files", key=file, public=True
        ).public
    for _ in range(2):
        state = public_access.object_set_public(
            actor=actor, bucket="team-files", key=file, public=False
        )
        assert state.public is False
    assert not acl_is_public("team-files", file)


def test_bucket_without_acls_uses_a_policy_statement_and_keeps_the_others(alice, enforced_bucket):
    foreign = {
        "Sid": "TeamAuditorsRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::no-acls",
    }
    raw().put_bucket_policy(
        Bucket="no-acls", Policy=json.dumps({"Version": "2012-10-17", "Statement": foreign})
    )
    actor = as_actor(alice)
    state = public_access.object_set_public(actor=actor, bucket="no-acls", key=KEY, public=True)
    assert (state.public, state.method) == (True, "policy")
    statements = policy_of("no-acls")["Statement"]
    assert foreign in statements
    ours = [s for s in statements if s["Sid"] == s3.public_read_sid(KEY)]
    assert ours[0]["Resource"] == f"arn:aws:s3:::no-acls/{KEY}"
    assert ours[0]["Principal"] == "*" and ours[0]["Action"] == "s3:GetObject"
    raw().put_object(Bucket="no-acls", Key="reports/other.pdf", Body=b"secret")
    assert requests.get(s3.public_url("no-acls", "reports/other.pdf"), timeout=5).status_code == 403

    state = public_access.object_set_public(actor=actor, bucket="no-acls", key=KEY, public=False)
    assert state.public is False
    assert policy_of("no-acls")["Statement"] == [foreign]


def test_removing_the_last_statement_deletes_the_policy(alice, enforced_bucket):
    actor = as_actor(alice)
    public_access.object_set_public(actor=actor, bucket="no-acls", key=KEY, public=True)
    public_access.object_set_public(actor=actor, bucket="no-acls", key=KEY, public=True)
    assert len(policy_of("no-acls")["Statement"]) == 1  # the same statement is never added twice
    public_access.object_set_public(actor=actor, bucket="no-acls", key=KEY, public=False)
    assert policy_of("no-acls") is None


def test_sids_are_per_key_and_alphanumeric():
    assert s3.public_read_sid("a.txt") != s3.public_read_sid("b.txt")
    assert s3.public_read_sid("dir/ü é.txt").isalnum()


def test_block_public_access_gives_a_specific_refusal_not_a_success(alice, file):
    raw().put_public_access_block(
        Bucket="team-files",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="team-files", key=file, public=True
    )
    assert (state.public, state.possible) == (False, False)
    assert "Block Public Access is on for this bucket" in state.explanation
    # moto would accept a public ACL here: the portal must not even try.
    assert not acl_is_public("team-files", file)
    assert policy_of("team-files") is None
    outcome = AuditEvent.objects.get(action="object.set_public", phase="outcome")
    assert (outcome.outcome, outcome.error_code) == ("failure", "PublicRefusedError")
    assert "Block Public Access" in outcome.message


def test_acl_stored_but_not_honoured_falls_back_to_the_policy(alice, file, monkeypatch):
    """As on SeaweedFS: the ACL is accepted, yet strangers are refused until a policy allows them."""

    def policy_only(bucket: str, key: str, *, timeout: float) -> int:
        return 200 if s3.has_public_read_statement("team-files", file) else 403

    monkeypatch.setattr(s3.public_access, "_anonymous_status", policy_only)
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="team-files", key=file, public=True
    )
    assert (state.public, state.method) == (True, "policy")
    assert not acl_is_public("team-files", file)  # the ignored ACL was withdrawn
    assert s3.has_public_read_statement("team-files", file)
    messages = list(
        AuditEvent.objects.filter(action="object.set_public", phase="outcome").values_list(
            "message", flat=True
        )
    )
    assert any("not honoured" in message for message in messages)


def test_when_nothing_makes_it_public_the_change_is_undone(alice, file, monkeypatch):
    monkeypatch.setattr(s3.public_access, "_anonymous_status", lambda bucket, key, *, timeout: 403)
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="team-files", key=file, public=True
    )
    assert (state.public, state.possible) == (False, False)
    assert "still refuses anonymous readers" in state.explanation
    assert not acl_is_public("team-files", file)
    assert not s3.has_public_read_statement("team-files", file)


def test_an_unreachable_public_endpoint_gives_unknown_not_success(alice, file, monkeypatch):
    attempts = []

    def unreachable(bucket: str, key: str, *, timeout: float) -> int:
        attempts.append(key)
        raise ConnectTimeoutError(endpoint_url=s3.public_url(bucket, key))

    monkeypatch.setattr(s3.public_access, "_anonymous_status", unreachable)
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="team-files", key=file, public=True
    )
    assert state.public is None and state.label == "unknown"
    assert "could not check" in state.explanation and "ConnectTimeoutError" in state.explanation
    # Remembered for a minute: the object page does not wait for the timeout on every view.
    again = public_access.object_public_state(actor=as_actor(alice), bucket="team-files", key=file)
    assert again.public is None and len(attempts) == 1


def test_probe_of_an_endpoint_nobody_listens_on_says_so(settings):
    settings.S3_PUBLIC_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    probe = s3.probe_anonymous("team-files", KEY)
    assert (probe.status, probe.public) == (None, None)
    assert probe.detail == "the public address did not answer: EndpointConnectionError"


def test_wildcard_names_cannot_be_made_public_by_policy(alice, enforced_bucket):
    raw().put_object(Bucket="no-acls", Key="report*.pdf", Body=b"x")
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="no-acls", key="report*.pdf", public=True
    )
    assert state.public is False and not state.possible
    assert "*, ? or ${" in state.explanation
    assert policy_of("no-acls") is None


def test_policy_that_would_grow_too_large_is_refused_with_a_reason(alice, enforced_bucket):
    filler = [
        {
            "Sid": f"Filler{index}",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::no-acls/{'x' * 200}{index}",
        }
        for index in range(75)
    ]
    raw().put_bucket_policy(
        Bucket="no-acls", Policy=json.dumps({"Version": "2012-10-17", "Statement": filler})
    )
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="no-acls", key=KEY, public=True
    )
    assert state.public is False and "policy is full" in state.explanation
    assert len(policy_of("no-acls")["Statement"]) == 75


def test_making_a_deleted_file_private_still_removes_its_statement(alice, enforced_bucket):
    actor = as_actor(alice)
    public_access.object_set_public(actor=actor, bucket="no-acls", key=KEY, public=True)
    raw().delete_object(Bucket="no-acls", Key=KEY)
    public_access.object_set_public(actor=actor, bucket="no-acls", key=KEY, public=False)
    assert policy_of("no-acls") is None


def test_making_a_missing_file_public_is_a_404(alice, bucket):
    with pytest.raises(ObjectError) as caught:
        public_access.object_set_public(
            actor=as_actor(alice), bucket=bucket, key="nope.txt", public=True
        )
    assert caught.value.status == 404


def test_reader_gets_403_and_outsider_404(bob, charlie, file):
    with pytest.raises(PermissionDenied):
        public_access.object_set_public(
            actor=as_actor(bob), bucket="team-files", key=file, public=True
        )
    with pytest.raises(Http404):
        public_access.object_set_public(
            actor=as_actor(charlie), bucket="team-files", key=file, public=True
        )
    assert audit_rows(action="object.set_public") == [
        ("object.set_public", "event", "denied"),
        ("object.set_public", "event", "denied"),
    ]
    assert not acl_is_public("team-files", file)


def test_public_state_reports_method_and_what_is_possible(alice, bob, file, enforced_bucket):
    actor = as_actor(alice)
    state = public_access.object_public_state(actor=as_actor(bob), bucket="team-files", key=file)
    assert (state.public, state.method, state.possible) == (False, "", True)
    public_access.object_set_public(actor=actor, bucket="team-files", key=file, public=True)
    state = public_access.object_public_state(actor=as_actor(bob), bucket="team-files", key=file)
    assert (state.public, state.method) == (True, "acl")
    raw().put_public_access_block(
        Bucket="no-acls",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    state = public_access.object_public_state(actor=actor, bucket="no-acls", key=KEY)
    assert not state.possible and "Block Public Access" in state.explanation
    assert ("object.public_state", "outcome", "success") in audit_rows(bucket="no-acls")


def test_a_broader_rule_is_reported_when_private_was_asked(alice, enforced_bucket):
    everything = {
        "Sid": "WholeBucketPublic",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::no-acls/*",
    }
    raw().put_bucket_policy(
        Bucket="no-acls", Policy=json.dumps({"Version": "2012-10-17", "Statement": [everything]})
    )
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket="no-acls", key=KEY, public=False
    )
    assert state.public is True
    assert "broader rule" in state.explanation
    assert policy_of("no-acls")["Statement"] == [everything]


@pytest.mark.parametrize(
    ("endpoint", "public_endpoint", "style", "region", "expected"),
    [
        ("", "", "path", "us-east-1", "https://s3.amazonaws.com/team-files/a%20b/c%2B.txt"),
        ("", "", "auto", "us-east-1", "https://team-files.s3.amazonaws.com/a%20b/c%2B.txt"),
        (
            "",
            "",
            "virtual",
            "eu-west-1",
            "https://team-files.s3.eu-west-1.amazonaws.com/a%20b/c%2B.txt",
        ),
        (
            "http://10.0.0.5:9000",
            "",
            "path",
            "us-east-1",
            "http://10.0.0.5:9000/team-files/a%20b/c%2B.txt",
        ),
        (
            "http://10.0.0.5:9000",
            "https://files.example.org",
            "path",
            "us-east-1",
            "https://files.example.org/team-files/a%20b/c%2B.txt",
        ),
        (
            "http://10.0.0.5:9000",
            "https://files.example.org",
            "virtual",
            "us-east-1",
            "https://team-files.files.example.org/a%20b/c%2B.txt",
        ),
    ],
)
def test_public_url_honours_endpoints_and_addressing(
    settings, endpoint, public_endpoint, style, region, expected
):
    settings.S3_ENDPOINT_URL = endpoint
    settings.S3_PUBLIC_ENDPOINT_URL = public_endpoint
    settings.S3_ADDRESSING_STYLE = style
    settings.S3_REGION = region
    assert s3.public_url("team-files", "a b/c+.txt") == expected


# --- Through the HTTP client -------------------------------------------------------------------


def public_post(client, key: str, *, public: str = "1", confirm: bool = True):
    data = {"key": key, "public": public}
    if confirm:
        data["confirm"] = "on"
    return client.post(reverse("object_public", args=["team-files"]), data)


def test_toggle_needs_login_and_post(client, alice, file):
    assert public_post(client, file).status_code == 302
    assert not acl_is_public("team-files", file)
    client_for(client, alice)
    assert client.get(reverse("object_public", args=["team-files"])).status_code == 405


def test_making_public_asks_for_confirmation(client, alice, file):
    response = public_post(client_for(client, alice), file, confirm=False)
    assert response.status_code == 400
    assert "Tick the box to confirm" in response.content.decode()
    assert not acl_is_public("team-files", file)


def test_toggle_public_then_private_through_the_page(client, alice, file):
    client_for(client, alice)
    response = public_post(client, file)
    assert response.status_code == 302
    assert response["Location"] == "/b/team-files/object/?key=reports%2Fq1+summary.pdf"
    page = client.get(response["Location"]).content.decode()
    assert "The file is now public." in page
    assert 'data-testid="public-url"' in page and "q1%20summary.pdf" in page
    assert acl_is_public("team-files", file)
    response = public_post(client, file, public="0", confirm=False)
    assert "The file is now private." in client.get(response["Location"]).content.decode()
    assert not acl_is_public("team-files", file)


def test_refusal_is_shown_as_an_error_message(client, alice, enforced_bucket):
    raw().put_object(Bucket="no-acls", Key="a*.txt", Body=b"x")
    client_for(client, alice)
    response = client.post(
        reverse("object_public", args=["no-acls"]),
        {"key": "a*.txt", "public": "1", "confirm": "on"},
    )
    page = client.get(response["Location"]).content.decode()
    assert "message-error" in page and "cannot name a file" in page


def test_reader_gets_403_outsider_404_on_the_toggle(client, bob, charlie, file):
    assert public_post(client_for(client, bob), file).status_code == 403
    assert public_post(client_for(client, charlie), file).status_code == 404


def test_toggle_with_storage_down_gives_503(client, alice, file, settings):
    client_for(client, alice)
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.S3_MAX_ATTEMPTS = 1
    assert public_post(client, file).status_code == 503


def test_object_page_shows_the_panel_and_only_managers_get_the_toggle(client, alice, bob, file):
    page = client_for(client, alice).get(
        reverse("object_detail", args=["team-files"]), {"key": file}
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="sharing-panel"' in html and 'data-testid="make-public"' in html
    assert "cannot be withdrawn, limited or counted" in html
    html = (
        client_for(client, bob)
        .get(reverse("object_detail", args=["team-files"]), {"key": file})
        .content.decode()
    )
    assert 'data-testid="sharing-panel"' in html and 'data-testid="make-public"' not in html
    assert 'data-testid="create-link"' not in html  # readers cannot hand out access
    BucketGrant.objects.filter(user=bob).update(role="write")
    html = (
        client_for(client, bob)
        .get(reverse("object_detail", args=["team-files"]), {"key": file})
        .content.decode()
    )
    assert 'data-testid="create-link"' in html and 'data-testid="make-public"' not in html
    assert 'data-testid="raw-presign"' not in html


def test_sharing_page_needs_access(client, charlie, file):
    url = reverse("object_sharing", args=["team-files"])
    assert client.get(url, {"key": file}).status_code == 302
    assert client_for(client, charlie).get(url, {"key": file}).status_code == 404


# --- The portal's own setting: "Allow public files" ---------------------------------------------


@pytest.fixture
def closed_bucket(moto_s3, alice, probe) -> str:
    """A bucket alice created without "Allow public files", holding one file."""
    from sharing import services

    services.bucket_create(actor=as_actor(alice), name="closed")
    raw().put_object(Bucket="closed", Key=KEY, Body=b"data")
    return "closed"


@pytest.fixture
def open_bucket(moto_s3, alice, probe) -> str:
    """A bucket alice created with "Allow public files" ticked, holding one file."""
    from sharing import services

    assert services.bucket_create(actor=as_actor(alice), name="open", allow_public=True) == []
    raw().put_object(Bucket="open", Key=KEY, Body=b"data")
    return "open"


def stranger_status(bucket: str, key: str) -> int:
    return anonymous_get(bucket, key, timeout=5)


def test_unticked_bucket_refuses_making_a_file_public(client, alice, closed_bucket):
    with pytest.raises(
        public_access.PublicFilesNotAllowedError, match="not allowed in this bucket"
    ):
        public_access.object_set_public(
            actor=as_actor(alice), bucket=closed_bucket, key=KEY, public=True
        )
    response = client_for(client, alice).post(
        reverse("object_public", args=[closed_bucket]), {"key": KEY, "public": "1", "confirm": "on"}
    )
    assert response.status_code == 403
    assert "Public files are not allowed in this bucket" in response.content.decode()
    assert stranger_status(closed_bucket, KEY) == 403
    assert not acl_is_public(closed_bucket, KEY) and policy_of(closed_bucket) is None
    # Refused before any storage call: one denied row per attempt, no intent.
    assert audit_rows(action="object.set_public") == [("object.set_public", "event", "denied")] * 2


def test_unticked_bucket_hides_public_from_the_pages(client, alice, closed_bucket):
    client_for(client, alice)
    page = client.get(reverse("bucket_detail", args=[closed_bucket])).content.decode()
    assert "Public files: <strong>not allowed in this bucket</strong>" in page
    assert 'value="public-read"' not in page and 'data-testid="upload-private-only"' in page
    assert 'data-testid="allow-public-files"' in page
    detail = client.get(reverse("object_detail", args=[closed_bucket]), {"key": KEY})
    html = detail.content.decode()
    assert 'data-testid="make-public"' not in html
    assert "Public files are not allowed in this bucket" in html


def test_unticked_bucket_refuses_public_uploads(client, alice, closed_bucket):
    response = client_for(client, alice).post(
        reverse("upload_create", args=[closed_bucket]),
        json.dumps({"key": "pub.txt", "size": 3, "type": "text/plain", "acl": "public-read"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "not allowed in this bucket" in response.json()["error"]
    assert audit_rows(action="upload.start") == [("upload.start", "event", "refused")]


def test_ticked_bucket_makes_files_public_and_says_allowed(client, alice, open_bucket):
    state = public_access.object_set_public(
        actor=as_actor(alice), bucket=open_bucket, key=KEY, public=True
    )
    assert state.public is True
    assert stranger_status(open_bucket, KEY) == 200
    page = client_for(client, alice).get(reverse("bucket_detail", args=[open_bucket]))
    html = page.content.decode()
    assert "Public files: <strong>allowed in this bucket</strong>" in html
    assert 'value="public-read"' in html
    assert "Block Public Access is off for this bucket" in html
    assert audit_rows(action="bucket.public_settings")[-1] == (
        "bucket.public_settings",
        "outcome",
        "success",
    )


def test_manager_allows_and_forbids_public_files(client, alice, closed_bucket):
    client_for(client, alice)
    url = reverse("bucket_public_files", args=[closed_bucket])
    response = client.post(url, {"public_files": "allowed"}, follow=True)
    assert "Public files are now allowed in this bucket." in response.content.decode()
    assert public_access.public_files_allowed(bucket=closed_bucket)
    assert public_access.object_set_public(
        actor=as_actor(alice), bucket=closed_bucket, key=KEY, public=True
    ).public
    client.post(url, {"public_files": "not allowed"})
    assert not public_access.public_files_allowed(bucket=closed_bucket)
    assert [row.message for row in AuditEvent.objects.filter(action="bucket.public_files")] == [
        "Public files not allowed in this bucket.",
        "Public files allowed in this bucket.",
    ]


def test_public_files_setting_refuses_bad_input_readers_outsiders_and_get(
    client, alice, bob, charlie, closed_bucket
):
    from sharing.models import BucketGrant, Role

    BucketGrant.objects.create(user=bob, bucket=closed_bucket, role=Role.WRITE)
    url = reverse("bucket_public_files", args=[closed_bucket])
    assert client_for(client, alice).post(url, {"public_files": "maybe"}).status_code == 400
    assert client_for(client, alice).get(url).status_code == 405
    assert client_for(client, bob).post(url, {"public_files": "allowed"}).status_code == 403
    assert client_for(client, charlie).post(url, {"public_files": "allowed"}).status_code == 404
    assert not public_access.public_files_allowed(bucket=closed_bucket)
    outcomes = [row[2] for row in audit_rows(action="bucket.public_files")]
    assert outcomes == ["refused", "denied", "denied"]


def test_deleting_a_bucket_forgets_its_setting(alice, open_bucket):
    from sharing import services

    raw().delete_object(Bucket=open_bucket, Key=KEY)
    services.bucket_delete(actor=as_actor(alice), name=open_bucket)
    services.bucket_create(actor=as_actor(alice), name=open_bucket)
    assert not public_access.public_files_allowed(bucket=open_bucket)
