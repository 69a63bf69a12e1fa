"""Thumbnails: asked for by uploads and folder pages, made by tasks, served to readers only."""

import io
import json
import re
import struct
import zlib

import boto3
import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult
from PIL import Image

from sharing.models import BucketGrant, Role, Thumbnail, ThumbnailState
from sharing.services import thumbnails
from tests.conftest import audit_rows, client_for

BUCKET = "team-files"


@pytest.fixture
def raw(bucket):
    return boto3.client("s3", region_name="us-east-1")


def picture(width: int, height: int, kind: str = "PNG") -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(output, kind)
    return output.getvalue()


def pdf(width: int = 600, height: int = 800) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 200)).save(output, "PDF")
    return output.getvalue()


def declared_png(width: int, height: int) -> bytes:
    """Return a tiny PNG whose header declares width × height pixels (a decompression bomb)."""
    small = picture(1, 1)
    header = struct.pack(">II", width, height) + small[24:29]
    chunk = b"IHDR" + header
    patched = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return small[:8] + patched + small[33:]


def upload(client, raw, key: str, body: bytes) -> None:
    """Upload a small file the way the upload panel does (start, PUT to S3, complete)."""
    data = {"key": key, "size": len(body), "type": "application/octet-stream", "multipart": False}
    started = client.post(
        reverse("upload_create", args=[BUCKET]), json.dumps(data), content_type="application/json"
    ).json()
    raw.put_object(Bucket=BUCKET, Key=key, Body=body)
    done = client.post(
        reverse("upload_complete"),
        json.dumps({"uploadId": started["uploadId"]}),
        content_type="application/json",
    )
    assert done.status_code == 200, done.content


def folder(client, **query) -> str:
    page = client.get(reverse("bucket_detail", args=[BUCKET]), query)
    assert page.status_code == 200
    return page.content.decode()


def thumbnail_url(key: str) -> str:
    return reverse("thumbnail", args=[BUCKET]) + f"?key={key}"


@pytest.mark.parametrize("kind,name", [("PNG", "photos/red.png"), ("JPEG", "photos/red.JPG")])
def test_an_uploaded_image_gets_a_thumbnail_after_the_task(
    client, alice, raw, bucket, run_tasks, kind, name
):
    upload(client_for(client, alice), raw, name, picture(1200, 600, kind))
    assert Thumbnail.objects.get(key=name).state == ThumbnailState.PENDING
    assert client.get(thumbnail_url(name)).status_code == 404  # not made yet
    run_tasks()

    made = Thumbnail.objects.get(key=name)
    assert (made.state, made.width, made.height) == (ThumbnailState.READY, 256, 128)
    answer = client.get(thumbnail_url(name))
    assert answer.status_code == 200 and answer["Content-Type"] == "image/webp"
    assert "private" in answer["Cache-Control"] and "max-age" in answer["Cache-Control"]
    assert Image.open(io.BytesIO(answer.content)).size == (256, 128)
    again = client.get(thumbnail_url(name), headers={"If-None-Match": answer["ETag"]})
    assert again.status_code == 304
    assert audit_rows(action="thumbnail.read", key=name) == [
        ("thumbnail.read", "intent", "pending"),
        ("thumbnail.read", "outcome", "success"),
    ]
    assert audit_rows(action="thumbnail.store", key=name)[-1] == (
        "thumbnail.store",
        "outcome",
        "success",
    )
    assert audit_rows(action="thumbnail.bucket") == [
        ("thumbnail.bucket", "intent", "pending"),
        ("thumbnail.bucket", "outcome", "success"),
    ]
    # One read of the stored thumbnail: the 304 needed none.
    assert audit_rows(action="thumbnail.get", key=name) == [
        ("thumbnail.get", "intent", "pending"),
        ("thumbnail.get", "outcome", "success"),
    ]


def test_a_pdf_gets_its_first_page_on_first_view(client, alice, raw, bucket, run_tasks):
    raw.put_object(Bucket=BUCKET, Key="docs/report.pdf", Body=pdf())
    page = folder(client_for(client, alice), prefix="docs/")
    assert 'data-testid="thumbnail-pending"' in page  # the page did not wait
    assert DBTaskResult.objects.count() == 1
    folder(client, prefix="docs/")
    assert DBTaskResult.objects.count() == 1  # asked once
    run_tasks()

    made = Thumbnail.objects.get(key="docs/report.pdf")
    assert (made.state, made.width, made.height) == (ThumbnailState.READY, 192, 256)
    pixel = Image.open(io.BytesIO(client.get(thumbnail_url("docs/report.pdf")).content))
    red, green, blue = pixel.convert("RGB").getpixel((96, 128))
    assert blue > 150 and red < 80  # the page's own colour
    page = folder(client, prefix="docs/")
    src = r"/b/team-files/thumbnail/\?key=docs/report.pdf&amp;v=\w+"
    assert re.search(
        f'<img class="thumb" src="{src}" alt="Thumbnail of report.pdf" loading="lazy"', page
    )


@pytest.mark.parametrize("width,height", [(30000, 30000), (10000, 10000)])
def test_a_decompression_bomb_is_refused_with_its_reason(
    client, alice, raw, bucket, run_tasks, width, height
):
    # 900 million pixels is past Pillow's error limit; 100 million past its warning: both refused.
    upload(client_for(client, alice), raw, "bomb.png", declared_png(width, height))
    run_tasks()
    refused = Thumbnail.objects.get(key="bomb.png")
    assert refused.state == ThumbnailState.REFUSED
    assert "decompression bomb" in refused.reason
    assert audit_rows(action="thumbnail.make", key="bomb.png") == [
        ("thumbnail.make", "event", "refused")
    ]
    assert audit_rows(action="thumbnail.store") == []
    assert client.get(thumbnail_url("bomb.png")).status_code == 404


def test_a_file_over_the_cap_is_skipped_without_being_read(
    client, alice, raw, bucket, run_tasks, settings
):
    settings.THUMBNAIL_MAX_SOURCE_BYTES = 1000
    upload(client_for(client, alice), raw, "large.png", picture(400, 400) + b"\0" * 1000)
    run_tasks()
    skipped = Thumbnail.objects.get(key="large.png")
    assert skipped.state == ThumbnailState.SKIPPED and "Larger than" in skipped.reason
    assert audit_rows(action="thumbnail.read") == []
    assert 'data-testid="thumbnail-pending"' not in folder(client)


def test_a_file_that_grew_past_the_cap_stops_being_read_at_the_cap(raw, bucket, settings):
    settings.THUMBNAIL_MAX_SOURCE_BYTES = 1000
    raw.put_object(Bucket=BUCKET, Key="grown.png", Body=b"x" * 5000)
    row = Thumbnail.objects.create(bucket=BUCKET, key="grown.png", version="old", source_size=10)
    assert thumbnails.thumbnail_make(thumbnail=row, storage=None) == ThumbnailState.SKIPPED


def test_a_corrupt_image_fails_cleanly(client, alice, raw, bucket, run_tasks):
    upload(client_for(client, alice), raw, "broken.png", picture(50, 50)[:60])
    upload(client, raw, "text.jpg", b"this is no picture")
    run_tasks()
    for key in ("broken.png", "text.jpg"):
        failed = Thumbnail.objects.get(key=key)
        assert failed.state == ThumbnailState.FAILED
        assert failed.reason.startswith("Not an image the portal can read")
    assert 'class="thumb thumb-icon"' in folder(client)


def test_other_files_get_no_thumbnail(client, alice, raw, bucket):
    upload(client_for(client, alice), raw, "notes.txt", b"hello")
    folder(client)
    assert not Thumbnail.objects.exists() and not DBTaskResult.objects.exists()


def test_a_changed_file_gets_a_new_thumbnail(client, alice, raw, bucket, run_tasks):
    upload(client_for(client, alice), raw, "pic.png", picture(100, 50))
    run_tasks()
    first = client.get(thumbnail_url("pic.png"))
    raw.put_object(Bucket=BUCKET, Key="pic.png", Body=picture(50, 100))  # outside the portal
    assert 'data-testid="thumbnail-pending"' in folder(client)
    run_tasks()
    second = client.get(thumbnail_url("pic.png"))
    assert second["ETag"] != first["ETag"]
    assert Image.open(io.BytesIO(second.content)).size == (50, 100)


def test_only_readers_of_the_bucket_get_thumbnails(
    client, alice, bob, charlie, raw, bucket, run_tasks
):
    upload(client_for(client, alice), raw, "pic.png", picture(10, 10))
    run_tasks()
    assert client_for(client, bob).get(thumbnail_url("pic.png")).status_code == 200
    assert client_for(client, charlie).get(thumbnail_url("pic.png")).status_code == 404
    assert audit_rows(action="thumbnail.get", actor_name="charlie") == [
        ("thumbnail.get", "event", "denied")
    ]
    assert client.post(thumbnail_url("pic.png")).status_code == 405
    client.logout()
    assert client.get(thumbnail_url("pic.png")).status_code == 302  # to the login page


def test_the_thumbnails_bucket_is_hidden(client, alice, admin_user, raw, bucket, run_tasks):
    upload(client_for(client, alice), raw, "pic.png", picture(10, 10))
    run_tasks()
    assert "s3portal-thumbnails" in [b["Name"] for b in raw.list_buckets()["Buckets"]]
    BucketGrant.objects.create(user=alice, bucket="s3portal-thumbnails", role=Role.MANAGE)
    for user in (alice, admin_user):
        client_for(client, user)
        listed = client.get(reverse("bucket_list")).content.decode()
        assert "team-files" in listed and "s3portal-thumbnails" not in listed
        assert client.get(reverse("bucket_detail", args=["s3portal-thumbnails"])).status_code == 404
        hidden = reverse("object_download", args=["s3portal-thumbnails"]) + "?key=x"
        assert client.get(hidden).status_code == 404
    page = client.get(reverse("admin:sharing_bucketgrant_add")).content.decode()
    assert "team-files" in page and "s3portal-thumbnails" not in page
    created = client.post(reverse("bucket_create"), {"name": "s3portal-thumbnails"})
    assert created.status_code == 409 and "kept for the portal" in created.content.decode()


def test_the_grid_view_shows_cards_and_keeps_sort_and_selection(
    client, alice, raw, bucket, run_tasks
):
    upload(client_for(client, alice), raw, "docs/a.png", picture(30, 30))
    raw.put_object(Bucket=BUCKET, Key="docs/b.txt", Body=b"bb")
    raw.put_object(Bucket=BUCKET, Key="docs/sub/c.txt", Body=b"c")
    run_tasks()
    grid = client.get(reverse("bucket_detail", args=[BUCKET]), {"prefix": "docs/", "view": "grid"})
    assert grid.cookies["folder_view"].value == "grid"
    page = grid.content.decode()
    assert 'data-testid="object-grid"' in page and 'data-testid="object-table"' not in page
    cards = re.findall(r'<li class="grid-card">.*?</li>', page, re.S)
    assert len(cards) == 3
    assert 'value="docs/sub/"' in cards[0] and 'value="docs/a.png"' in cards[1]
    assert 'alt="Thumbnail of a.png"' in cards[1] and "file.svg" in cards[2]
    assert "2 bytes" in cards[2]
    # The cookie keeps the grid while sorting and paging; the switch goes back to the list.
    by_size = folder(client, prefix="docs/", sort="-size")
    assert 'data-testid="object-grid"' in by_size
    assert by_size.index("a.png") < by_size.index("b.txt")
    assert 'href="?prefix=docs%2F&amp;sort=-size&amp;view=list"' in by_size
    listed = folder(client, prefix="docs/", view="list")
    assert 'data-testid="object-table"' in listed and 'data-testid="object-grid"' not in listed
    assert 'aria-label="Thumbnail of a.png"' not in listed and 'alt="Thumbnail of a.png"' in listed


def test_any_django_storage_keeps_thumbnails(
    client, alice, raw, bucket, run_tasks, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "thumbnails": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "thumbs")},
        },
    }
    upload(client_for(client, alice), raw, "pic.gif", picture(64, 32, "GIF"))
    run_tasks()
    made = Thumbnail.objects.get(key="pic.gif")
    assert (tmp_path / "thumbs" / made.storage_name).is_file()
    assert "s3portal-thumbnails" not in [b["Name"] for b in raw.list_buckets()["Buckets"]]
    assert client.get(thumbnail_url("pic.gif")).status_code == 200
    (tmp_path / "thumbs" / made.storage_name).unlink()
    assert client.get(thumbnail_url("pic.gif"), headers={"If-None-Match": "x"}).status_code == 404


def test_a_storage_failure_leaves_it_pending_to_be_asked_again(
    client, alice, raw, bucket, run_tasks, settings, tmp_path
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the storage wants a folder")
    settings.STORAGES = {
        **settings.STORAGES,
        "thumbnails": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocked)},
        },
    }
    upload(client_for(client, alice), raw, "pic.png", picture(10, 10))
    run_tasks()
    pending = Thumbnail.objects.get(key="pic.png")
    assert pending.state == ThumbnailState.PENDING and pending.reason
    assert audit_rows(action="thumbnail.store")[-1] == ("thumbnail.store", "outcome", "failure")
    Thumbnail.objects.update(requested_at=pending.requested_at - thumbnails.ASK_AGAIN_AFTER)
    tasks_before = DBTaskResult.objects.count()
    folder(client)
    assert DBTaskResult.objects.count() == tasks_before + 1


def test_unreachable_storage_gives_503(client, alice, raw, bucket, run_tasks, settings):
    upload(client_for(client, alice), raw, "pic.png", picture(10, 10))
    run_tasks()
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.S3_MAX_ATTEMPTS = 1
    settings.STORAGES = {**settings.STORAGES}  # the thumbnails' storage follows the endpoint
    answer = client.get(thumbnail_url("pic.png"))
    assert answer.status_code == 503
    assert audit_rows(action="thumbnail.get")[-1] == ("thumbnail.get", "outcome", "failure")


def test_a_deleted_file_loses_its_thumbnail_and_its_stored_image(
    client, alice, raw, bucket, run_tasks, settings
):
    name = "photos/gone.png"
    upload(client_for(client, alice), raw, name, picture(300, 300))
    run_tasks()
    stored = Thumbnail.objects.get(key=name).storage_name
    assert client.get(thumbnail_url(name)).status_code == 200
    kept = raw.list_objects_v2(Bucket=settings.THUMBNAILS_BUCKET)["KeyCount"]

    deleted = client.post(
        reverse("objects_delete", args=[BUCKET]), {"prefix": "photos/", "keys": [name]}
    )
    assert deleted.status_code == 302
    assert client.get(thumbnail_url(name)).status_code == 404
    run_tasks()
    left = raw.list_objects_v2(Bucket=settings.THUMBNAILS_BUCKET).get("Contents", [])
    assert stored not in [item["Key"] for item in left] and len(left) == kept - 1
    assert audit_rows(action="thumbnail.delete", key=stored) == [
        ("thumbnail.delete", "intent", "pending"),
        ("thumbnail.delete", "outcome", "success"),
    ]
