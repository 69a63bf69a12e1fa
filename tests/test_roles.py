"""Walk the README's table of roles: each action, tried through the pages by each role."""

import re
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from django.test import Client
from django.urls import reverse

from sharing import services
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, BucketIndex, IndexState, ShareLink
from tests.conftest import client_for, make_user
from tests.test_public_access import probe  # noqa: F401 (a fixture)

README = Path(__file__).resolve().parents[1] / "README.md"
BUCKET = "team-files"
OTHER = "other-files"
KEY = "docs/report.txt"


def _table() -> dict[str, dict[str, bool]]:
    text = README.read_text()
    block = text[text.index("<!-- roles -->") : text.index("<!-- /roles -->")]
    rows = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1] in ("Y", "–"):
            rows[cells[0]] = dict(
                zip(("read", "write", "manage"), (c == "Y" for c in cells[1:]), strict=True)
            )
    return rows


def raw():
    return boto3.client("s3", region_name="us-east-1")


def _object(bucket: str, key: str) -> bool:
    return "Contents" in raw().list_objects_v2(Bucket=bucket, Prefix=key)


def _browse(page: Client) -> bool:
    responses = [
        page.get(reverse("bucket_detail", args=[BUCKET])),
        page.get(reverse("object_detail", args=[BUCKET]), {"key": KEY}),
        page.get(reverse("object_download", args=[BUCKET]), {"key": KEY}),
    ]
    return all(response.status_code in (200, 302) for response in responses)


def _copy_out(page: Client) -> bool:
    page.post(
        f"{reverse('object_transfer', args=[BUCKET])}?key={KEY}",
        {"dst_bucket": OTHER, "dst_key": KEY, "mode": "copy"},
    )
    return _object(OTHER, KEY)


def _search(page: Client) -> bool:
    return page.get(reverse("bucket_search", args=[BUCKET]), {"q": "report"}).status_code == 200


def _update_index(page: Client) -> bool:
    page.post(reverse("bucket_index", args=[BUCKET]))
    return BucketIndex.objects.filter(bucket=BUCKET, state=IndexState.QUEUED).exists()


def _upload(page: Client) -> bool:
    page.post(reverse("folder_create", args=[BUCKET]), {"prefix": "", "name": "new"})
    return _object(BUCKET, "new/")


def _delete(page: Client) -> bool:
    page.post(reverse("objects_delete", args=[BUCKET]), {"keys": [KEY]})
    return not _object(BUCKET, KEY)


def _share(page: Client) -> bool:
    url = reverse("link_create", args=[BUCKET])
    page.post(url, {"link-key": KEY, "link-expiry": "1h"})
    url = reverse("links_email", args=[BUCKET])
    page.post(url, {"email-key": KEY, "email-expiry": "1h", "email-recipients": "x@example.com"})
    return ShareLink.objects.count() == 2


def _presign(page: Client) -> bool:
    url = reverse("object_presign", args=[BUCKET])
    response = page.post(url, {"raw-key": KEY, "raw-expiry": "1h"})
    return "X-Amz-Signature" in response.content.decode()


def _set_public(page: Client) -> bool:
    url = reverse("object_public", args=[BUCKET])
    response = page.post(url, {"key": KEY, "public": "1", "confirm": "on"})
    return response.status_code not in (403, 404)


def _delete_bucket(page: Client) -> bool:
    page.post(
        reverse("bucket_delete", args=[BUCKET]), {"empty_first": "on", "confirm_name": BUCKET}
    )
    return BUCKET not in {bucket["Name"] for bucket in raw().list_buckets()["Buckets"]}


ATTEMPTS: dict[str, Callable[[Client], bool]] = {
    "browse folders, see a file's details, download": _browse,
    "copy a file to another bucket (where one has write)": _copy_out,
    "search the bucket": _search,
    "upload, create folders": _upload,
    "update the search index (a walk of the whole bucket)": _update_index,
    "move, rename and delete files": _delete,
    "create share links and email them": _share,
    "make raw presigned URLs (they cannot be revoked)": _presign,
    "make files public or private": _set_public,
    "delete the bucket": _delete_bucket,
}


def test_every_row_of_the_table_is_walked():
    assert set(_table()) == set(ATTEMPTS)


@pytest.mark.parametrize("role", ["read", "write", "manage"])
@pytest.mark.parametrize("action", list(ATTEMPTS))
def test_each_role_may_do_what_the_table_says(client, moto_s3, alice, probe, action, role):  # noqa: F811
    for name in (BUCKET, OTHER):
        services.bucket_create(actor=Actor(user=alice, name="alice"), name=name, allow_public=True)
    raw().put_object(Bucket=BUCKET, Key=KEY, Body=b"quarterly figures")
    dana = make_user("dana")
    BucketGrant.objects.create(user=dana, bucket=BUCKET, role=role)
    BucketGrant.objects.create(user=dana, bucket=OTHER, role="write")
    allowed = _table()[action][role]
    assert ATTEMPTS[action](client_for(client, dana)) == allowed
    denied = AuditEvent.objects.filter(actor_name="dana", outcome="denied").exists()
    assert denied == (not allowed), "a refusal leaves a denied row, an allowed action none"


def test_the_table_says_readers_cannot_hand_out_access():
    table = _table()
    handing_out = [row for row in table if re.search("share|presigned|public", row)]
    assert handing_out and not any(table[row]["read"] for row in handing_out)
