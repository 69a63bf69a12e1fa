"""Folder page rows: precomputed links and texts read exactly as the template filters drew them."""

import datetime

import boto3
import pytest
from botocore.utils import parse_timestamp
from django.template import engines
from django.urls import reverse
from django.utils import timezone

from sharing import s3
from sharing.s3.core import ObjectSummary, Page, _parse_timestamp
from tests.conftest import client_for

TRICKY_NAMES = [
    "plain.txt",
    "a b.txt",
    "é ü 日本.txt",
    "a+b=c.txt",
    "100%.txt",
    "%41%2F.txt",
    "a&b;c.txt",
    "#1.txt",
    "what?.txt",
    'it\'s "quoted".txt',
    "<img src=x onerror=alert(1)>.txt",
    "semi;colon,comma@at~tilde.txt",
]
# A file row and a folder row as the template drew them with {% url %} and filters, before the
# selector computed links and texts: the page must still show exactly this.
FILTERS_FILE_ROW = """{% load dates humanize %}<tr>
        <td class="select-col"><input type="checkbox" name="keys" value="{{ file.key }}" aria-label="Select {{ file.name }}"></td>
        <td><a class="icon-file" href="{% url 'object_detail' bucket %}?key={{ file.key|urlencode }}">{{ file.name }}</a></td>
        <td class="num" title="{{ file.size|intcomma }} bytes">{{ file.size|filesizeformat }}</td>
        <td class="hide-sm">{% when file.last_modified %}</td>
        <td class="row-actions"><a href="{% url 'object_download' bucket %}?key={{ file.key|urlencode }}" title="Download {{ file.name }}">Download</a>{% if can_share %} <a href="{% url 'object_detail' bucket %}?key={{ file.key|urlencode }}#share" title="Share {{ file.name }}">Share</a>{% endif %}</td>
      </tr>"""
FILTERS_FOLDER_ROW = """<tr><td class="select-col"><input type="checkbox" name="keys" value="{{ folder.prefix }}" aria-label="Select folder {{ folder.name }}"></td><td><a class="icon-folder" href="?prefix={{ folder.prefix|urlencode }}">{{ folder.name }}/</a></td><td class="num muted">folder</td><td class="hide-sm"></td><td class="row-actions"></td></tr>"""


def raw():
    return boto3.client("s3", region_name="us-east-1")


def render(source: str, **context) -> str:
    return engines["django"].from_string(source).render(context)


def page(client, bucket: str, prefix: str) -> str:
    response = client.get(reverse("bucket_detail", args=[bucket]), {"prefix": prefix})
    assert response.status_code == 200
    return response.content.decode()


def fake_listing(monkeypatch, folders: list[str], objects: list[ObjectSummary]) -> None:
    page = Page(folders=folders, objects=objects, next_token="")
    monkeypatch.setattr(s3, "list_page", lambda *args, **kwargs: page)


@pytest.mark.parametrize("time_zone", ["UTC", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("role", ["alice", "bob"])
def test_rows_read_as_the_filters_drew_them(
    client, alice, bob, bucket, monkeypatch, settings, time_zone, role
):
    settings.TIME_ZONE = time_zone
    now = timezone.now()
    # Whole-minute margins, as the page once showed "2 minutes ago" here.
    moments = [
        now - datetime.timedelta(minutes=2, seconds=30),
        now - datetime.timedelta(hours=5, minutes=10, seconds=30),
        now - datetime.timedelta(days=3, hours=5, minutes=30),
        now - datetime.timedelta(days=400, minutes=30),
        now + datetime.timedelta(days=2, minutes=30),
        datetime.datetime(2020, 2, 29, 23, 59, 59, 123456, tzinfo=datetime.UTC),
    ]
    sizes = [0, 1, 1023, 1024, 1536, 123_456_789, 5 * 1024**3, 2**60]
    objects = [
        ObjectSummary(
            key=f"docs/{name}",
            size=sizes[index % len(sizes)],
            last_modified=moments[index % len(moments)],
            etag="x",
        )
        for index, name in enumerate(TRICKY_NAMES)
    ]
    folders = ["docs/a b & c/", "docs/é+%/", "docs/<b>/"]
    fake_listing(monkeypatch, folders, [ObjectSummary("docs/", 0, now, "x"), *objects])
    user = alice if role == "alice" else bob
    content = page(client_for(client, user), bucket, "docs/")

    can_share = user == alice
    for item in objects:
        file = {**vars(item), "name": item.key.removeprefix("docs/")}
        expected = render(FILTERS_FILE_ROW, file=file, bucket=bucket, can_share=can_share)
        assert expected.removeprefix("\n") in content
    for prefix in folders:
        folder = {"prefix": prefix, "name": prefix.removeprefix("docs/").rstrip("/")}
        assert render(FILTERS_FOLDER_ROW, folder=folder) in content
    assert content.count('class="icon-file"') == len(objects)  # the marker "docs/" is no file
    assert "<img src=x" not in content


def test_tricky_keys_link_to_their_object_pages(client, alice, bucket):
    for name in TRICKY_NAMES:
        raw().put_object(Bucket=bucket, Key=f"docs/{name}", Body=b"hello")
    raw().put_object(Bucket=bucket, Key="docs/a b & c/inner.txt", Body=b"x")
    content = page(client_for(client, alice), bucket, "docs/")

    for name in TRICKY_NAMES:
        key = f"docs/{name}"
        href = render(
            "{% url 'object_detail' bucket %}?key={{ key|urlencode }}", bucket=bucket, key=key
        )
        assert f'<a class="icon-file" href="{href}">' in content
        assert render('value="{{ key }}"', key=key) in content
        detail = client.get(href.replace("&amp;", "&"))
        assert detail.status_code == 200
        assert render("{{ name }}", name=name) in detail.content.decode()
    assert '<a class="icon-folder" href="?prefix=docs/a%20b%20%26%20c/">a b &amp; c/</a>' in content


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:03:04.000Z",
        "2024-05-01T12:03:04Z",
        "2024-05-01T12:03:04.123456Z",
        "2024-05-01T12:03:04.5Z",
        "20240501T120304Z",
        "Wed, 01 May 2024 12:03:04 GMT",
        "2024-05-01T12:03:04+02:00",
        "1714565000",
        1714565000,
    ],
)
def test_timestamps_parse_as_botocore_parses_them(text):
    parsed = _parse_timestamp(text)
    assert parsed == parse_timestamp(text)
    assert parsed.utcoffset() is not None


def test_listing_and_head_give_the_aware_times_boto3_gives(bucket):
    raw().put_object(Bucket=bucket, Key="docs/a.txt", Body=b"hello")
    listed = raw().list_objects_v2(Bucket=bucket, Prefix="docs/")["Contents"][0]["LastModified"]
    headed = raw().head_object(Bucket=bucket, Key="docs/a.txt")["LastModified"]

    page_time = s3.list_page(bucket, prefix="docs/").objects[0].last_modified
    keys_time = s3.list_keys(bucket, prefix="docs/")[0].last_modified
    head_time = s3.head(bucket, "docs/a.txt").last_modified
    assert page_time == keys_time == listed
    assert head_time == headed  # an HTTP date header: botocore's own parser
    for moment in (page_time, keys_time, head_time):
        assert moment.utcoffset() == datetime.timedelta(0)
    # The listing went through the fast parser (fromisoformat gives datetime.UTC, dateutil not).
    assert page_time.tzinfo is datetime.UTC
