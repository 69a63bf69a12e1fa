"""The folder page: sorting, selecting rows and acting on the selection, and what readers see."""

import io
import re
import zipfile

import boto3
import pytest
from django.urls import reverse

from sharing.models import AuditEvent, BucketGrant, Role
from tests.conftest import audit_rows, client_for

SIZES = {"b-big.txt": 3000, "a-mid.txt": 200, "c-small.txt": 1}


def raw():
    return boto3.client("s3", region_name="us-east-1")


def put(bucket: str, key: str, body: bytes = b"x") -> None:
    raw().put_object(Bucket=bucket, Key=key, Body=body)


def keys(bucket: str, prefix: str = "") -> set[str]:
    listed = raw().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {item["Key"] for item in listed}


def folder(client, bucket: str, **params) -> str:
    response = client.get(reverse("bucket_detail", args=[bucket]), params)
    assert response.status_code == 200
    return response.content.decode()


def row_names(content: str) -> list[str]:
    return re.findall(r'class="icon-(?:file|folder)" href="[^"]*">([^<]*)</a>', content)


@pytest.fixture
def docs(bucket):
    for name, size in SIZES.items():
        put(bucket, f"docs/{name}", b"x" * size)
    put(bucket, "docs/zeta/inner.txt")
    put(bucket, "docs/alpha/")
    return bucket


@pytest.fixture
def second(bucket, alice):
    raw().create_bucket(Bucket="archive")
    BucketGrant.objects.create(user=alice, bucket="archive", role=Role.MANAGE)
    return "archive"


@pytest.fixture
def bob_writes_elsewhere(bob, moto_s3):
    """bob reads team-files and may write to a bucket of his own."""
    raw().create_bucket(Bucket="bob-box")
    BucketGrant.objects.create(user=bob, bucket="bob-box", role=Role.WRITE)
    return "bob-box"


# Sorting


def test_name_order_by_default_folders_first(client, bob, docs):
    content = folder(client_for(client, bob), docs, prefix="docs/")
    assert row_names(content) == ["alpha/", "zeta/", "a-mid.txt", "b-big.txt", "c-small.txt"]
    assert '<th aria-sort="ascending"><a href="?prefix=docs%2F&amp;sort=-name"' in content


def test_sort_by_size_both_ways_keeps_folders_first(client, bob, docs):
    client_for(client, bob)
    ascending = folder(client, docs, prefix="docs/", sort="size")
    assert row_names(ascending) == ["alpha/", "zeta/", "c-small.txt", "a-mid.txt", "b-big.txt"]
    assert 'class="num" aria-sort="ascending"><a href="?prefix=docs%2F&amp;sort=-size"' in ascending
    descending = folder(client, docs, prefix="docs/", sort="-size")
    assert row_names(descending) == ["alpha/", "zeta/", "b-big.txt", "a-mid.txt", "c-small.txt"]
    assert 'aria-sort="descending"' in descending
    assert descending.count("aria-sort=") == 1


def test_sort_by_name_descending_turns_folders_round_too(client, bob, docs):
    content = folder(client_for(client, bob), docs, prefix="docs/", sort="-name")
    assert row_names(content) == ["zeta/", "alpha/", "c-small.txt", "b-big.txt", "a-mid.txt"]


def test_sort_by_date(client, bob, docs):
    content = folder(client_for(client, bob), docs, prefix="docs/", sort="-modified")
    assert 'class="hide-sm" aria-sort="descending"' in content
    assert len(row_names(content)) == 5


def test_an_unknown_sort_is_name_order(client, bob, docs):
    content = folder(client_for(client, bob), docs, prefix="docs/", sort="<script>")
    assert row_names(content)[2:] == ["a-mid.txt", "b-big.txt", "c-small.txt"]
    assert "&lt;script&gt;" not in content and '<script>"' not in content


def test_sorting_a_paged_folder_sorts_the_page_and_says_so(client, bob, bucket, monkeypatch):
    monkeypatch.setattr("sharing.selectors.PAGE_SIZE", 2)
    for name, size in (("a.txt", 5), ("b.txt", 1), ("c.txt", 9)):
        put(bucket, name, b"x" * size)
    client_for(client, bob)
    first = folder(client, bucket, sort="size")
    assert row_names(first) == ["b.txt", "a.txt"]  # the first two names, sorted by size
    assert 'data-testid="sort-note"' in first
    token = re.search(r'href="\?([^"]*token=[^"]*)" role="button"', first).group(1)
    assert "sort=size" in token  # the next page is sorted the same way
    second = client.get(reverse("bucket_detail", args=[bucket]) + "?" + token.replace("&amp;", "&"))
    assert row_names(second.content.decode()) == ["c.txt"]
    assert 'data-testid="sort-note"' not in folder(client, bucket)  # name order: nothing to say


# What readers are offered


def test_reader_who_writes_nowhere_is_offered_no_copy_or_move(client, bob, docs):
    client_for(client, bob)
    content = folder(client, docs, prefix="docs/")
    for action in ("copy-selected", "move-selected", "delete-selected", "transfer-folder"):
        assert f'data-testid="{action}"' not in content
    assert ">Share</a>" not in content and ">Download</a>" in content
    page = client.get(reverse("object_detail", args=[docs]), {"key": "docs/a-mid.txt"})
    assert 'data-testid="copy-move"' not in page.content.decode()


def test_reader_who_writes_elsewhere_may_copy_not_move(client, bob, docs, bob_writes_elsewhere):
    client_for(client, bob)
    content = folder(client, docs, prefix="docs/")
    assert 'data-testid="copy-selected"' in content and "Copy folder…" in content
    assert 'data-testid="move-selected"' not in content and "Copy or move" not in content
    page = client.get(reverse("object_detail", args=[docs]), {"key": "docs/a-mid.txt"})
    assert re.search(r'data-testid="copy-move">Copy…</a>', page.content.decode())
    form = client.get(reverse("object_transfer", args=[docs]), {"key": "docs/a-mid.txt"})
    assert 'value="copy"' in form.content.decode() and 'value="move"' not in form.content.decode()


def test_writer_is_offered_everything(client, alice, docs):
    content = folder(client_for(client, alice), docs, prefix="docs/")
    for action in ("copy-selected", "move-selected", "delete-selected", "download-selected"):
        assert f'data-testid="{action}"' in content
    assert "#share" in content and "Copy or move folder…" in content
    page = client.get(reverse("object_detail", args=[docs]), {"key": "docs/a-mid.txt"})
    assert "Copy, move or rename…" in page.content.decode()


def test_reader_cannot_move_a_selection(client, bob, docs, bob_writes_elsewhere):
    response = client_for(client, bob).post(
        reverse("selection_transfer", args=[docs]),
        {"prefix": "docs/", "keys": ["docs/a-mid.txt"], "dst_bucket": bob_writes_elsewhere,
         "dst_key": "", "mode": "move"},
    )  # fmt: skip
    assert response.status_code == 400
    assert keys(docs, "docs/a-mid.txt") == {"docs/a-mid.txt"}


# Copy and move a selection


def start(client, bucket: str, mode: str, selected: list[str], prefix: str = "docs/"):
    return client.post(
        reverse("selection_transfer", args=[bucket]),
        {"prefix": prefix, "keys": selected, "start": mode},
    )


def run(client, bucket: str, selected: list[str], **data):
    form = {"prefix": "docs/", "keys": selected, "mode": "copy", **data}
    return client.post(reverse("selection_transfer", args=[bucket]), form)


def test_start_shows_the_form_and_changes_nothing(client, alice, docs):
    response = start(client_for(client, alice), docs, "move", ["docs/a-mid.txt", "docs/zeta/"])
    content = response.content.decode()
    assert response.status_code == 200
    assert "Copy or move 2 selected items" in content
    assert '<input type="hidden" name="keys" value="docs/zeta/"' in content
    assert re.search(r'value="move"[^>]*checked', content)
    assert keys(docs, "docs/") == {f"docs/{n}" for n in SIZES} | {
        "docs/zeta/inner.txt",
        "docs/alpha/",
    }
    assert not AuditEvent.objects.filter(action="object.copy").exists()


def test_start_without_a_selection_goes_back_with_a_message(client, alice, docs):
    response = start(client_for(client, alice), docs, "copy", [])
    assert response.status_code == 302
    follow = client.get(response["Location"])
    assert "Select at least one file or folder." in follow.content.decode()


def finished(client, response, run_tasks) -> str:
    """Run the job the form started with the real worker; return its progress page."""
    assert response.status_code == 302 and response.url.startswith("/jobs/")
    run_tasks()
    return client.get(response.url).content.decode()


def test_copy_selection_with_a_folder_one_audit_pair_per_object(
    client, alice, docs, second, run_tasks
):
    client_for(client, alice)
    selected = ["docs/a-mid.txt", "docs/c-small.txt", "docs/zeta/"]
    response = run(client, docs, selected, dst_bucket=second, dst_key="kept")
    body = finished(client, response, run_tasks)
    assert "Done: 3 of 3 files copied." in body
    assert keys(second) == {"kept/a-mid.txt", "kept/c-small.txt", "kept/zeta/inner.txt"}
    assert keys(docs, "docs/zeta/") == {"docs/zeta/inner.txt"}  # a copy leaves the originals
    for key in keys(second):
        assert audit_rows(action="object.copy", bucket=second, key=key) == [
            ("object.copy", "intent", "pending"),
            ("object.copy", "outcome", "success"),
        ]


def test_move_selection_removes_the_originals(client, alice, docs, run_tasks):
    client_for(client, alice)
    response = run(
        client, docs, ["docs/b-big.txt", "docs/alpha/"], dst_bucket=docs, dst_key="old", mode="move"
    )
    assert "Done: 2 of 2 files moved." in finished(client, response, run_tasks)
    assert keys(docs, "old/") == {"old/b-big.txt", "old/alpha/"}
    assert keys(docs, "docs/b-big.txt") == set() and keys(docs, "docs/alpha/") == set()
    deleted = audit_rows(action="object.delete", bucket=docs, phase="outcome")
    assert deleted == [("object.delete", "outcome", "success")] * 2


def test_clashes_are_asked_about_then_replaced(client, alice, docs, second, run_tasks):
    put(second, "kept/a-mid.txt", b"old")
    client_for(client, alice)
    asked = run(client, docs, ["docs/a-mid.txt"], dst_bucket=second, dst_key="kept")
    assert asked.status_code == 409
    assert "<code>kept/a-mid.txt</code>" in asked.content.decode()
    assert '<input type="hidden" name="keys" value="docs/a-mid.txt"' in asked.content.decode()
    replaced = run(client, docs, ["docs/a-mid.txt"], dst_bucket=second, dst_key="kept",
                   overwrite="on")  # fmt: skip
    assert "Done: 1 of 1 file copied." in finished(client, replaced, run_tasks)
    assert raw().get_object(Bucket=second, Key="kept/a-mid.txt")["ContentLength"] == 200


@pytest.mark.parametrize(
    ("selected", "dst_key", "said"),
    [
        (["docs/a-mid.txt"], "docs", "That is the folder they are in"),
        (["docs/zeta/"], "docs/zeta/deeper", "into itself"),
        (["elsewhere.txt"], "new", "inside the folder it was made in"),
        ([], "new", "Select at least one file or folder."),
    ],
)
def test_bad_selections_are_refused_with_a_message(client, alice, docs, selected, dst_key, said):
    response = run(client_for(client, alice), docs, selected, dst_bucket=docs, dst_key=dst_key)
    assert response.status_code == 400
    assert said in response.content.decode()
    assert audit_rows(action="object.copy", outcome="refused") == [
        ("object.copy", "event", "refused")
    ]


def test_selection_transfer_needs_post_and_access(client, alice, charlie, docs):
    url = reverse("selection_transfer", args=[docs])
    assert client_for(client, alice).get(url).status_code == 405
    assert start(client_for(client, charlie), docs, "copy", ["docs/a-mid.txt"]).status_code == 404


# Delete and download a selection


def test_delete_selection_with_a_folder_deletes_everything_in_it(client, alice, docs, run_tasks):
    response = client_for(client, alice).post(
        reverse("objects_delete", args=[docs]),
        {"prefix": "docs/", "keys": ["docs/zeta/", "docs/a-mid.txt"]},
    )
    assert "Done: 2 of 2 files deleted." in finished(client, response, run_tasks)
    assert keys(docs, "docs/") == {"docs/b-big.txt", "docs/c-small.txt", "docs/alpha/"}
    assert (
        sorted(audit_rows(action="object.delete", phase="outcome", bucket=docs))
        == [("object.delete", "outcome", "success")] * 2
    )


def test_delete_refuses_keys_outside_the_folder(client, alice, docs):
    response = client_for(client, alice).post(
        reverse("objects_delete", args=[docs]), {"prefix": "docs/zeta/", "keys": ["docs/a-mid.txt"]}
    )
    assert response.status_code == 302
    assert keys(docs, "docs/a-mid.txt") == {"docs/a-mid.txt"}


def test_download_one_selected_file_redirects_to_its_download(client, bob, docs):
    response = client_for(client, bob).post(
        reverse("objects_download", args=[docs]), {"prefix": "docs/", "keys": ["docs/a-mid.txt"]}
    )
    assert response.status_code == 302
    download = client.get(response["Location"])
    assert download.status_code == 302 and "X-Amz-Signature" in download["Location"]
    assert audit_rows(action="object.download", key="docs/a-mid.txt", phase="outcome") == [
        ("object.download", "outcome", "success")
    ]


def test_download_several_answers_one_zip(client, bob, docs):
    response = client_for(client, bob).post(
        reverse("objects_download", args=[docs]),
        {"prefix": "docs/", "keys": ["docs/a-mid.txt", "docs/b-big.txt", "docs/zeta/"]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert sorted(archive.namelist()) == ["a-mid.txt", "b-big.txt", "zeta/inner.txt"]
        assert archive.read("b-big.txt") == b"x" * SIZES["b-big.txt"]


def test_download_of_one_folder_answers_its_zip(client, bob, docs):
    response = client_for(client, bob).post(
        reverse("objects_download", args=[docs]), {"prefix": "docs/", "keys": ["docs/zeta/"]}
    )
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert archive.namelist() == ["zeta/inner.txt"]


def test_download_selection_needs_post_and_access(client, bob, charlie, docs):
    url = reverse("objects_download", args=[docs])
    assert client_for(client, bob).get(url).status_code == 405
    response = client_for(client, charlie).post(url, {"keys": ["docs/a-mid.txt"]})
    assert response.status_code == 404
