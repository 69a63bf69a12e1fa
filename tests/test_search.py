"""Bucket search: the index follows the portal's writes and the walk, and the page filters and pages."""

import datetime
import json
import re

import boto3
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from sharing.audit import Actor
from sharing.models import BucketGrant, BucketIndex, IndexedObject, IndexState, Role
from sharing.selectors import search as search_selectors
from sharing.services import search_index
from tests.conftest import audit_rows, client_for

BUCKET = "team-files"


@pytest.fixture
def raw(bucket):
    return boto3.client("s3", region_name="us-east-1")


def walk(bucket: str = BUCKET) -> int | None:
    return search_index.bucket_index_walk(bucket=bucket)


def found(client, bucket: str = BUCKET, **query) -> list[str]:
    page = client.get(reverse("bucket_search", args=[bucket]), query)
    assert page.status_code == 200, page.content
    return re.findall(
        r'<a class="result-name[^"]*" href="[^"]*\?(?:key|prefix)=[^"]*">([^<]*)</a>',
        page.content.decode(),
    )


def indexed(bucket: str = BUCKET) -> set[str]:
    return set(IndexedObject.objects.filter(bucket=bucket).values_list("key", flat=True))


def upload(client, raw, key: str, body: bytes, content_type: str = "application/octet-stream"):
    data = {"key": key, "size": len(body), "type": content_type, "multipart": False}
    started = client.post(
        reverse("upload_create", args=[BUCKET]), json.dumps(data), content_type="application/json"
    ).json()
    raw.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type)
    done = client.post(
        reverse("upload_complete"),
        json.dumps({"uploadId": started["uploadId"]}),
        content_type="application/json",
    )
    assert done.status_code == 200, done.content


# --- The portal's writes keep the index in step ------------------------------------------------


def test_an_upload_is_found_at_once_with_its_size_and_type(client, alice, raw, bucket):
    client_for(client, alice)
    upload(client, raw, "a/b/c/Invoice-2026-03.pdf", b"%PDF-1.7 x" * 10, "application/pdf")
    row = IndexedObject.objects.get(bucket=bucket, key="a/b/c/Invoice-2026-03.pdf")
    assert (row.size, row.kind, row.content_type) == (100, "pdf", "application/pdf")
    assert found(client, q="INVOICE-2026") == ["Invoice-2026-03.pdf"]


def test_copy_move_delete_and_new_folders_update_the_index(client, alice, raw, bucket):
    client_for(client, alice)
    upload(client, raw, "docs/report.txt", b"hello", "text/plain")
    transfer = reverse("object_transfer", args=[bucket])
    copied = client.post(
        transfer + "?key=docs/report.txt",
        {"dst_bucket": bucket, "dst_key": "copies/report.txt", "mode": "copy"},
    )
    assert copied.status_code == 302, copied.content
    copy = IndexedObject.objects.get(bucket=bucket, key="copies/report.txt")
    assert (copy.size, copy.kind) == (5, "text")  # from the source's row, no HEAD
    moved = client.post(
        transfer + "?key=copies/report.txt",
        {"dst_bucket": bucket, "dst_key": "moved/report.txt", "mode": "move"},
    )
    assert moved.status_code == 302, moved.content
    assert indexed() == {"docs/report.txt", "moved/report.txt"}
    client.post(
        reverse("objects_delete", args=[bucket]), {"prefix": "moved/", "keys": ["moved/report.txt"]}
    )
    assert indexed() == {"docs/report.txt"}
    client.post(reverse("folder_create", args=[bucket]), {"prefix": "", "name": "Projects"})
    assert IndexedObject.objects.get(bucket=bucket, key="Projects/").kind == "folder"
    assert found(client, q="project") == ["Projects/"]


def test_a_deleted_bucket_leaves_no_index(client, alice, raw, bucket):
    raw.put_object(Bucket=bucket, Key="x.txt", Body=b"x")
    walk()
    client_for(client, alice).post(
        reverse("bucket_delete", args=[bucket]), {"confirm_name": bucket, "empty_first": "on"}
    )
    assert indexed() == set() and not BucketIndex.objects.filter(bucket=bucket).exists()


# --- The walk -----------------------------------------------------------------------------------


def test_the_walk_finds_outside_writes_and_drops_removed_objects(raw, bucket, settings):
    for number in range(2500):  # three pages of ListObjectsV2
        raw.put_object(Bucket=bucket, Key=f"bulk/{number:05}.csv", Body=b"x")
    assert walk() == 2500
    assert len(indexed()) == 2500
    assert IndexedObject.objects.get(key="bulk/00007.csv").kind == "spreadsheet"
    raw.delete_object(Bucket=bucket, Key="bulk/00007.csv")
    raw.put_object(Bucket=bucket, Key="late.png", Body=b"png")
    assert walk() == 2500
    assert "bulk/00007.csv" not in indexed() and "late.png" in indexed()
    state = BucketIndex.objects.get(bucket=bucket)
    assert (state.state, state.files, state.error) == (IndexState.IDLE, 2500, "")
    assert (
        audit_rows(action="bucket.index")
        == [
            ("bucket.index", "intent", "pending"),
            ("bucket.index", "outcome", "success"),
        ]
        * 2
    )


def test_a_walk_is_not_started_twice(raw, bucket):
    now = timezone.now()
    BucketIndex.objects.create(bucket=bucket, state=IndexState.RUNNING, progress_at=now)
    assert walk() is None
    BucketIndex.objects.filter(bucket=bucket).update(progress_at=now - datetime.timedelta(hours=1))
    assert walk() == 0  # a walk silent that long died: the next one takes over


def test_a_failed_walk_says_why(raw, bucket, monkeypatch):
    BucketIndex.objects.create(bucket="gone-bucket")
    assert walk("gone-bucket") is None
    state = BucketIndex.objects.get(bucket="gone-bucket")
    assert state.state == IndexState.FAILED and "does not exist" in state.error


def test_update_the_index_queues_one_walk_for_writers(client, alice, bob, raw, bucket, run_tasks):
    raw.put_object(Bucket=bucket, Key="outside/Quarterly.xlsx", Body=b"x")
    client_for(client, alice)
    url = reverse("bucket_index", args=[bucket])
    assert client.get(url).status_code == 405
    first = client.post(url, follow=True)
    assert "being updated" in first.content.decode()
    second = client.post(url, follow=True)
    assert "already on its way" in second.content.decode()
    run_tasks()
    assert found(client, q="quarterly") == ["Quarterly.xlsx"]
    assert BucketIndex.objects.get(bucket=bucket).state == IndexState.IDLE
    assert audit_rows(action="bucket.index", phase="event") == [
        ("bucket.index", "event", "success"),
        ("bucket.index", "event", "success"),
    ]
    assert client_for(client, bob).post(url).status_code == 403  # readers search, not walk


def test_the_schedule_queues_buckets_with_an_old_index(
    alice, bucket, raw, settings, django_capture_on_commit_callbacks
):
    raw.create_bucket(Bucket="other-files")
    raw.create_bucket(Bucket=settings.THUMBNAILS_BUCKET)  # the portal's own: never walked
    BucketIndex.objects.create(bucket=bucket, walk_finished_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        call_command("search_reindex", "--older-than", "3600")
    assert len(enqueued) == 1
    assert BucketIndex.objects.get(bucket="other-files").state == IndexState.QUEUED
    assert BucketIndex.objects.get(bucket=bucket).state == IndexState.IDLE
    assert not BucketIndex.objects.filter(bucket=settings.THUMBNAILS_BUCKET).exists()
    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        call_command("search_reindex", "--older-than", "3600")
    assert enqueued == []  # still queued: not twice


# --- The search page ---------------------------------------------------------------------------


@pytest.fixture
def files(raw, bucket):
    old = datetime.datetime(2025, 1, 15, 12, tzinfo=datetime.UTC)
    entries = [
        ("photos/2026/Beach.JPG", 3_000_000, old),
        ("photos/2026/beach-notes.txt", 200, old),
        ("reports/Q1/beach-budget.xlsx", 40_000, timezone.now()),
        ("reports/Q1/summary.pdf", 2_000_000, timezone.now()),
        ("reports/", 0, old),
    ]
    for key, size, modified in entries:
        search_index.index_put(bucket=bucket, key=key, size=size, last_modified=modified)
    return entries


def test_substring_any_case_anywhere_in_the_path(client, bob, files):
    client_for(client, bob)
    assert found(client, q="BEACH") == ["Beach.JPG", "beach-notes.txt", "beach-budget.xlsx"]
    assert found(client, q="q1/sum") == ["summary.pdf"]
    assert found(client, q="nothing-like-it") == []


def test_filters_by_type_size_and_date(client, bob, files):
    client_for(client, bob)
    assert found(client, q="beach", type="image") == ["Beach.JPG"]
    assert found(client, type="pdf") == ["summary.pdf"]
    assert found(client, min_size="1 MB") == ["Beach.JPG", "summary.pdf"]
    assert found(client, q="beach", max_size="40000") == ["beach-notes.txt", "beach-budget.xlsx"]
    assert found(client, before="2025-01-31") == ["Beach.JPG", "beach-notes.txt", "reports/"]
    assert found(client, after="2025-02-01", q="beach") == ["beach-budget.xlsx"]
    assert found(client, type="folder") == ["reports/"]


def test_results_link_to_the_file_and_its_folder(client, bob, files):
    page = client_for(client, bob).get(reverse("bucket_search", args=[BUCKET]), {"q": "summary"})
    html = page.content.decode()
    assert f'href="{reverse("object_detail", args=[BUCKET])}?key=reports/Q1/summary.pdf"' in html
    assert f'href="{reverse("bucket_detail", args=[BUCKET])}?prefix=reports/Q1/"' in html
    assert "1.9\xa0MB" in html


def test_short_queries_are_matched_without_the_index(client, bob, files):
    client_for(client, bob)
    assert found(client, q="Q1") == ["beach-budget.xlsx", "summary.pdf"]
    assert found(client, q="j") == ["Beach.JPG"]


def test_short_queries_look_through_a_window_of_names(client, bob, bucket, monkeypatch):
    monkeypatch.setattr(search_selectors, "SHORT_QUERY_SCAN", 3)
    for key in ["a1", "a2", "a3", "b1", "b2", "zz"]:
        search_index.index_put(bucket=bucket, key=key, size=1)
    client_for(client, bob)
    page = client.get(reverse("bucket_search", args=[BUCKET]), {"q": "b"})
    assert "Nothing found so far" in page.content.decode()
    assert 'data-testid="search-next"' in page.content.decode()
    assert found(client, q="b", cursor="b1") == ["b1", "b2"]


def test_pages_by_cursor(client, bob, bucket, monkeypatch):
    monkeypatch.setattr(search_selectors, "PAGE_SIZE", 2)
    for number in range(5):
        search_index.index_put(bucket=bucket, key=f"logs/run-{number}.log", size=1)
    client_for(client, bob)
    assert found(client, q="run-") == ["run-0.log", "run-1.log"]
    assert found(client, q="run-", cursor="logs/run-2.log") == ["run-2.log", "run-3.log"]
    assert found(client, q="run-", cursor="logs/run-4.log") == ["run-4.log"]
    page = client.get(reverse("bucket_search", args=[BUCKET]), {"q": "run-"})
    assert "cursor=logs%2Frun-2.log" in page.content.decode()


def test_bad_parameters_get_a_clear_message_and_are_recorded(client, bob, bucket):
    client_for(client, bob)
    for query, message in [
        ({"min_size": "lots"}, "Write a size such as"),
        ({"min_size": "2 GB", "max_size": "1 GB"}, "smallest size is larger"),
        ({"after": "2026-13-45"}, "Enter a valid date"),
        ({"after": "2026-03-02", "before": "2026-03-01"}, "first day comes after"),
        ({"type": "spaceship"}, "Select a valid choice"),
        ({"max_size": "9" * 30}, "larger than any file"),
    ]:
        page = client.get(reverse("bucket_search", args=[BUCKET]), query)
        assert page.status_code == 400 and message in page.content.decode(), query
    assert {row[2] for row in audit_rows(action="object.search")} == {"refused"}


def test_results_respect_grants(client, charlie, bob, files):
    url = reverse("bucket_search", args=[BUCKET])
    assert client.get(url).status_code == 302  # login first
    assert client_for(client, charlie).get(url, {"q": "beach"}).status_code == 404
    assert audit_rows(action="object.search") == [("object.search", "event", "denied")]
    BucketGrant.objects.create(user=charlie, bucket="other-bucket", role=Role.MANAGE)
    assert client.get(url, {"q": "beach"}).status_code == 404
    search_index.index_put(bucket="other-bucket", key="beach-secret.txt", size=1)
    assert "beach-secret" not in "".join(found(client_for(client, bob), q="beach"))


def test_the_page_says_how_fresh_the_index_is(client, alice, bucket):
    client_for(client, alice)
    url = reverse("bucket_search", args=[BUCKET])
    assert "Never indexed" in client.get(url).content.decode()
    BucketIndex.objects.create(
        bucket=bucket, files=12345, walk_finished_at=timezone.now() - datetime.timedelta(minutes=3)
    )
    assert "Index updated 3\xa0minutes ago (12,345 files)." in client.get(url).content.decode()
    BucketIndex.objects.filter(bucket=bucket).update(state=IndexState.RUNNING)
    assert "An update is running." in client.get(url).content.decode()


def test_the_bucket_page_has_the_search_box(client, alice, bob, bucket):
    page = client_for(client, alice).get(reverse("bucket_detail", args=[bucket])).content.decode()
    assert f'action="{reverse("bucket_search", args=[bucket])}"' in page
    assert 'data-testid="update-index-bucket"' in page
    page = client_for(client, bob).get(reverse("bucket_detail", args=[bucket])).content.decode()
    assert 'data-testid="bucket-search"' in page and "update-index-bucket" not in page


def test_file_kinds_from_type_or_extension():
    kind = search_index.file_kind
    assert kind("a/b/", "") == "folder"
    assert kind("x.bin", "image/png") == "image"
    assert kind("clip.MP4") == "video"
    assert kind("deck.pptx") == "presentation"
    assert kind("letter.docx", "application/octet-stream") == "document"
    assert kind("data.tar.gz") == "archive"
    assert kind("notes.md") == "text"
    assert kind("mystery") == "other"
    assert Actor.system(search_index.WALKER).label == "search-index"
