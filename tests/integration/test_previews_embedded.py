"""Previews against the real embedded server: a 2 GB file costs its head, media URLs serve inline."""

import urllib.error
import urllib.request

import pytest
from django.urls import reverse

from sharing import s3
from sharing.audit import Actor
from sharing.models import BucketGrant, Role
from sharing.services import previews
from tests.conftest import client_for, server_client

pytestmark = pytest.mark.integration
BUCKET = "preview-files"
PART = 64 * 1024**2
HOSTILE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)" width="4" height="4">'
    b'<script>alert(2)</script><rect width="4" height="4"/></svg>'
)


@pytest.fixture
def raw(real_s3, alice):
    client = server_client(real_s3)
    client.create_bucket(Bucket=BUCKET)
    BucketGrant.objects.create(user=alice, bucket=BUCKET, role=Role.MANAGE)
    return client


def make_big_text(raw, key: str, *, parts: int) -> int:
    """Store a text object of `parts` × 64 MiB cheaply: one part uploaded, the rest copied."""
    line = b"a line of a very long log file\n"
    raw.put_object(Bucket=BUCKET, Key="part.txt", Body=(line * (PART // len(line) + 1))[:PART])
    upload = raw.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    done = []
    for number in range(1, parts + 1):
        copied = raw.upload_part_copy(
            Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number,
            CopySource={"Bucket": BUCKET, "Key": "part.txt"},
        )  # fmt: skip
        done.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
    raw.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
    )
    return parts * PART


def test_a_2_gb_text_file_costs_only_its_head(client, alice, raw, settings):
    size = make_big_text(raw, "logs/huge.log", parts=32)
    assert s3.head(BUCKET, "logs/huge.log").size == size == 2 * 1024**3
    ranges: list[str] = []

    def remember(request, **_):
        ranges.append(
            request.headers.get("Range", b"").decode() if request.headers.get("Range") else ""
        )

    # botocore's public event hooks: every GetObject the portal's client sends passes here.
    events = s3.client().meta.events
    events.register("before-send.s3.GetObject", remember, unique_id="preview-test")
    try:
        response = client_for(client, alice).get(
            reverse("object_detail", args=[BUCKET]), {"key": "logs/huge.log"}
        )
    finally:
        events.unregister("before-send.s3.GetObject", unique_id="preview-test")
    assert response.status_code == 200
    assert ranges == [f"bytes=0-{settings.PREVIEW_TEXT_BYTES - 1}"]
    text = response.content.decode()
    assert "The first 256.0\xa0KB of 2.0\xa0GB." in text
    assert "a line of a very long log file" in text
    info = s3.head(BUCKET, "logs/huge.log")
    preview = previews.object_preview(
        actor=Actor(user=alice, name="alice"), bucket=BUCKET, info=info
    )
    assert preview.read_bytes == 256 * 1024 and len(preview.text.encode()) <= 256 * 1024


def test_read_head_of_an_empty_and_a_short_file(raw):
    raw.put_object(Bucket=BUCKET, Key="empty.txt", Body=b"")
    raw.put_object(Bucket=BUCKET, Key="short.txt", Body=b"short")
    assert s3.read_head(BUCKET, "empty.txt", size=1024) == b""
    assert s3.read_head(BUCKET, "short.txt", size=1024) == b"short"
    assert s3.read_head(BUCKET, "short.txt", size=2) == b"sh"


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (127.0.0.1 only)
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_image_url_is_served_inline_by_s3_with_the_portals_type(alice, raw):
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2b4e30a0000000049454e44ae426082"
    )
    raw.put_object(Bucket=BUCKET, Key="img/dot.png", Body=png, ContentType="text/html")
    info = s3.head(BUCKET, "img/dot.png")
    preview = previews.object_preview(
        actor=Actor(user=alice, name="alice"), bucket=BUCKET, info=info
    )
    assert preview.url.startswith(raw.meta.endpoint_url)
    status, headers, body = fetch(preview.url)
    assert status == 200 and body == png
    assert headers["Content-Type"] == "image/png"  # not the stored text/html
    assert headers["Content-Disposition"].startswith('inline; filename="dot.png"')


def test_hostile_svg_url_is_an_image_type_from_s3_and_the_page_escapes_it(client, alice, raw):
    raw.put_object(Bucket=BUCKET, Key="logo.svg", Body=HOSTILE_SVG, ContentType="text/html")
    response = client_for(client, alice).get(
        reverse("object_detail", args=[BUCKET]), {"key": "logo.svg"}
    )
    text = response.content.decode()
    assert "<svg" not in text and "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    origin = raw.meta.endpoint_url
    assert f"img-src 'self' data: {origin};" in response["Content-Security-Policy"]
    info = s3.head(BUCKET, "logo.svg")
    preview = previews.object_preview(
        actor=Actor(user=alice, name="alice"), bucket=BUCKET, info=info
    )
    status, headers, body = fetch(preview.url)
    assert status == 200 and body == HOSTILE_SVG
    assert headers["Content-Type"] == "image/svg+xml"
    assert preview.origin == origin  # S3's origin: never the portal's


def test_preview_url_lifetime_is_signed(alice, raw):
    raw.put_object(Bucket=BUCKET, Key="dot.png", Body=b"\x89PNG")
    url = s3.presigned_inline(
        BUCKET, "dot.png", filename="dot.png", content_type="image/png", seconds=1
    )
    assert fetch(url)[0] == 200
    tampered = url.replace("X-Amz-Expires=1", "X-Amz-Expires=3600")
    assert fetch(tampered)[0] == 403  # the lifetime is signed: it cannot be stretched
