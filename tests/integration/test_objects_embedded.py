"""Files against the real embedded server: downloads, copies, deletes, and its key quirks."""

import urllib.request

import pytest
from django.urls import reverse

from sharing import s3
from sharing.models import BucketGrant, Role
from tests.conftest import client_for, server_client

pytestmark = pytest.mark.integration


@pytest.fixture
def two_buckets(real_s3, alice):
    raw = server_client(real_s3)
    for name in ("src-bucket", "dst-bucket"):
        raw.create_bucket(Bucket=name)
        BucketGrant.objects.create(user=alice, bucket=name, role=Role.MANAGE)
    return raw


def test_download_url_serves_bytes_as_attachment(client, alice, two_buckets):
    body = bytes(range(256)) * 100
    two_buckets.put_object(Bucket="src-bucket", Key="docs/naïve café.bin", Body=body)
    response = client_for(client, alice).get(
        reverse("object_download", args=["src-bucket"]), {"key": "docs/naïve café.bin"}
    )
    assert response.status_code == 302
    with urllib.request.urlopen(response["Location"], timeout=10) as download:  # noqa: S310
        assert download.read() == body
        disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''na%C3%AFve%20caf%C3%A9.bin" in disposition


def test_copy_move_and_delete_on_real_server(client, alice, two_buckets, run_tasks):
    two_buckets.put_object(Bucket="src-bucket", Key="a/one.txt", Body=b"1")
    two_buckets.put_object(Bucket="src-bucket", Key="a/two.txt", Body=b"22")
    client_for(client, alice)
    url = reverse("object_transfer", args=["src-bucket"])
    moved = client.post(
        f"{url}?key=a/one.txt", {"dst_bucket": "dst-bucket", "dst_key": "b/one.txt", "mode": "move"}
    )
    assert moved.status_code == 302
    assert two_buckets.get_object(Bucket="dst-bucket", Key="b/one.txt")["Body"].read() == b"1"
    assert s3.head("src-bucket", "a/one.txt") is None
    folder = client.post(
        f"{url}?prefix=a/", {"dst_bucket": "dst-bucket", "dst_key": "copy", "mode": "copy"}
    )
    run_tasks()
    assert "Done: 1 of 1 file copied." in client.get(folder.url).content.decode()
    assert two_buckets.get_object(Bucket="dst-bucket", Key="copy/two.txt")["Body"].read() == b"22"
    client.post(
        reverse("objects_delete", args=["dst-bucket"]), {"keys": ["copy/two.txt", "b/one.txt"]}
    )
    run_tasks()
    assert two_buckets.list_objects_v2(Bucket="dst-bucket").get("KeyCount") == 0


def test_long_path_segment_is_refused_with_a_message(client, alice, two_buckets):
    two_buckets.put_object(Bucket="src-bucket", Key="a.txt", Body=b"1")
    response = client_for(client, alice).post(
        f"{reverse('object_transfer', args=['src-bucket'])}?key=a.txt",
        {"dst_bucket": "src-bucket", "dst_key": "x" * 256, "mode": "copy"},
    )
    assert response.status_code == 400
    assert "at most 255 bytes" in response.content.decode()


def test_keys_that_seaweedfs_would_mangle_are_refused(client, alice, two_buckets):
    two_buckets.put_object(Bucket="src-bucket", Key="a.txt", Body=b"1")
    client_for(client, alice)
    url = f"{reverse('object_transfer', args=['src-bucket'])}?key=a.txt"
    for bad in ("x//y.txt", "back\\slash.txt", "/lead.txt", "x/./y.txt"):
        response = client.post(url, {"dst_bucket": "src-bucket", "dst_key": bad, "mode": "copy"})
        assert response.status_code == 400, bad
    keys = {item["Key"] for item in two_buckets.list_objects_v2(Bucket="src-bucket")["Contents"]}
    assert keys == {"a.txt"}


def test_accepted_odd_names_round_trip(client, alice, two_buckets):
    odd = ["<img src=x onerror=alert(1)>.txt", 'multi-part-one";" dummy".txt', "café.txt"]
    two_buckets.put_object(Bucket="src-bucket", Key="a.txt", Body=b"1")
    client_for(client, alice)
    url = f"{reverse('object_transfer', args=['src-bucket'])}?key=a.txt"
    for name in odd:
        assert (
            client.post(
                url, {"dst_bucket": "dst-bucket", "dst_key": name, "mode": "copy"}
            ).status_code
            == 302
        )
    listing = client.get(reverse("bucket_detail", args=["dst-bucket"])).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in listing
    assert "<img src=x" not in listing
