"""The bucket list: each person's role, and sizes only where they are cheap to know."""

import re

import boto3
from django.core.cache import cache
from django.urls import reverse

from sharing import s3, selectors, services
from sharing.audit import Actor
from sharing.models import BucketGrant, Role
from tests.conftest import audit_rows, client_for


def put_files(bucket: str, count: int, body: bytes = b"12345") -> None:
    client = boto3.client("s3", region_name="us-east-1")
    for number in range(count):
        client.put_object(Bucket=bucket, Key=f"data/{number:05d}.txt", Body=body)


def usage_cells(response) -> dict[str, str]:
    """Return {bucket: the text of its Files cell}, as the page shows it."""
    cells = re.findall(
        r'<a href="/b/([^/]+)/">.*?data-testid="bucket-usage">(.*?)</td>',
        response.content.decode(),
        re.S,
    )
    return {name: re.sub(r"<[^>]+>", "", cell).replace("\xa0", " ") for name, cell in cells}


def test_counts_and_sizes_of_a_small_bucket_and_the_role_of_each_person(client, alice, bob, bucket):
    put_files(bucket, 3)
    response = client_for(client, alice).get(reverse("bucket_list"))
    assert usage_cells(response) == {"team-files": "3 files, 15 bytes"}
    assert b"badge-manage" in response.content
    cache.clear()
    response = client_for(client, bob).get(reverse("bucket_list"))
    assert b"badge-read" in response.content
    assert usage_cells(response) == {"team-files": "3 files, 15 bytes"}


def test_an_empty_bucket_says_0_files(client, alice, bucket):
    assert usage_cells(client_for(client, alice).get(reverse("bucket_list"))) == {
        "team-files": "0 files"
    }


def test_past_the_first_page_of_keys_the_list_says_more_than(client, alice, bucket, monkeypatch):
    # 1,000 in the portal; 3 here, so that the test needs 4 files instead of 1,001.
    monkeypatch.setattr(selectors, "BUCKET_USAGE_LIMIT", 3)
    put_files(bucket, 4)
    response = client_for(client, alice).get(reverse("bucket_list"))
    assert usage_cells(response) == {"team-files": "more than 3 files"}


def test_each_probe_is_audited_and_cached_for_a_minute(client, alice, bucket):
    client_for(client, alice).get(reverse("bucket_list"))
    client.get(reverse("bucket_list"))
    assert audit_rows(action="bucket.usage") == [
        ("bucket.usage", "intent", "pending"),
        ("bucket.usage", "outcome", "success"),
    ]


def test_a_few_buckets_are_probed_per_visit_the_rest_on_later_visits(client, alice, moto_s3):
    actor = Actor(user=alice, name="alice")
    for number in range(7):
        services.bucket_create(actor=actor, name=f"bucket-{number}")
    client_for(client, alice)
    first = usage_cells(client.get(reverse("bucket_list")))
    assert sorted(first.values()) == ["0 files"] * 5 + ["—"] * 2
    second = usage_cells(client.get(reverse("bucket_list")))
    assert list(second.values()) == ["0 files"] * 7
    assert len(audit_rows(action="bucket.usage", phase="outcome")) == 7


def test_a_failed_probe_leaves_the_list_usable_and_a_failure_row(
    client, alice, bucket, monkeypatch
):
    def refuse(name: str, *, limit: int) -> s3.BucketUsage:
        raise s3.S3Error("Access denied by the storage.", status=403, code="AccessDenied")

    monkeypatch.setattr(s3, "bucket_usage", refuse)
    response = client_for(client, alice).get(reverse("bucket_list"))
    assert response.status_code == 200
    assert usage_cells(response) == {"team-files": "—"}
    assert audit_rows(action="bucket.usage")[-1] == ("bucket.usage", "outcome", "failure")


def test_nothing_is_probed_for_someone_without_buckets(client, charlie, bucket):
    response = client_for(client, charlie).get(reverse("bucket_list"))
    assert b"You have not been given access to any bucket" in response.content
    assert audit_rows(action="bucket.usage") == []


def test_a_bucket_not_granted_is_not_probed(client, bob, bucket, alice):
    services.bucket_create(actor=Actor(user=alice, name="alice"), name="alice-only")
    BucketGrant.objects.filter(user=bob).update(role=Role.WRITE)
    response = client_for(client, bob).get(reverse("bucket_list"))
    assert list(usage_cells(response)) == ["team-files"]
    assert b"badge-write" in response.content
    assert {row for row in audit_rows(action="bucket.usage", bucket="alice-only")} == set()


def test_a_change_made_through_the_portal_is_counted_at_once(client, alice, bucket):
    actor = Actor(user=alice, name="alice")
    client_for(client, alice)
    assert usage_cells(client.get(reverse("bucket_list"))) == {"team-files": "0 files"}
    services.objects.folder_create(actor=actor, bucket=bucket, prefix="", name="docs")
    assert usage_cells(client.get(reverse("bucket_list"))) == {"team-files": "1 file, 0 bytes"}
    services.objects.objects_delete(actor=actor, bucket=bucket, keys=["docs/"])
    assert usage_cells(client.get(reverse("bucket_list"))) == {"team-files": "0 files"}
