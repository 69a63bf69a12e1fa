"""Thumbnails kept by django-storages' S3Storage in the portal's own bucket on the embedded server."""

import io
import urllib.error
import urllib.request

import pytest
from django.urls import reverse
from PIL import Image

from sharing.models import BucketGrant, Role, Thumbnail, ThumbnailState
from tests.conftest import client_for, server_client

pytestmark = pytest.mark.integration


def picture(width: int, height: int) -> bytes:
    output = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 200, 10, 128)).save(output, "PNG")
    return output.getvalue()


def test_thumbnails_live_in_the_portals_own_bucket(client, alice, real_s3, run_tasks):
    raw = server_client(real_s3)
    raw.create_bucket(Bucket="photos")
    BucketGrant.objects.create(user=alice, bucket="photos", role=Role.MANAGE)
    raw.put_object(Bucket="photos", Key="trip/beach.png", Body=picture(800, 400))
    client_for(client, alice)
    page = client.get(reverse("bucket_detail", args=["photos"]), {"prefix": "trip/"})
    assert 'data-testid="thumbnail-pending"' in page.content.decode()
    run_tasks()

    made = Thumbnail.objects.get(bucket="photos", key="trip/beach.png")
    assert made.state == ThumbnailState.READY, made.reason
    stored = raw.list_objects_v2(Bucket="s3portal-thumbnails").get("Contents", [])
    assert [item["Key"] for item in stored] == [made.storage_name]
    # Never public: the embedded server refuses an anonymous read of the portal's bucket.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{real_s3.endpoint_url}/s3portal-thumbnails/{made.storage_name}")  # noqa: S310
    assert refused.value.code == 403
    answer = client.get(reverse("thumbnail", args=["photos"]), {"key": "trip/beach.png"})
    assert answer.status_code == 200
    image = Image.open(io.BytesIO(answer.content))
    assert image.size == (256, 128) and image.mode == "RGBA"  # transparency kept

    listed = client.get(reverse("bucket_list")).content.decode()
    assert "photos" in listed and "s3portal-thumbnails" not in listed
