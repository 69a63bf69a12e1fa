"""The search index's walk on the real embedded server: nested keys, folder markers, removals."""

import pytest
from django.urls import reverse

from sharing.models import BucketGrant, BucketIndex, IndexedObject, IndexState, Role
from sharing.services import search_index
from tests.conftest import audit_rows, client_for, server_client

pytestmark = pytest.mark.integration
BUCKET = "walked-bucket"


def test_a_walk_indexes_what_others_stored_and_drops_what_they_removed(real_s3, client, alice):
    raw = server_client(real_s3)
    raw.create_bucket(Bucket=BUCKET)
    BucketGrant.objects.create(user=alice, bucket=BUCKET, role=Role.MANAGE)
    keys = [f"deep/{n % 3}/level/{n:04d}-Scan.TIFF" for n in range(1205)]  # two pages and more
    for key in keys:
        raw.put_object(Bucket=BUCKET, Key=key, Body=b"tiff")
    raw.put_object(Bucket=BUCKET, Key="a/b/c/invoice-2026-03.pdf", Body=b"%PDF" * 100)
    client_for(client, alice).post(reverse("folder_create", args=[BUCKET]), {"name": "Empty"})

    assert search_index.bucket_index_walk(bucket=BUCKET) == len(keys) + 2
    invoice = IndexedObject.objects.get(bucket=BUCKET, key="a/b/c/invoice-2026-03.pdf")
    assert (invoice.size, invoice.kind) == (400, "pdf")
    assert IndexedObject.objects.get(bucket=BUCKET, key="Empty/").kind == "folder"
    page = client.get(reverse("bucket_search", args=[BUCKET]), {"q": "INVOICE-2026"})
    assert "invoice-2026-03.pdf" in page.content.decode()
    assert "(1,207 files)" in page.content.decode()

    raw.delete_object(Bucket=BUCKET, Key="a/b/c/invoice-2026-03.pdf")
    assert search_index.bucket_index_walk(bucket=BUCKET) == len(keys) + 1
    assert not IndexedObject.objects.filter(key="a/b/c/invoice-2026-03.pdf").exists()
    assert BucketIndex.objects.get(bucket=BUCKET).state == IndexState.IDLE
    assert audit_rows(action="bucket.index")[-1] == ("bucket.index", "outcome", "success")
