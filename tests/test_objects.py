"""Files on moto: browse, details, download, folders, copy, move, rename, delete."""

from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from django.urls import reverse

from sharing import s3
from sharing.models import AuditEvent, BucketGrant, Role
from sharing.s3.objects import content_disposition
from tests.conftest import audit_rows, client_for


def raw():
    return boto3.client("s3", region_name="us-east-1")


def put(bucket: str, key: str, body: bytes = b"x", **extra) -> None:
    raw().put_object(Bucket=bucket, Key=key, Body=body, **extra)


def keys(bucket: str) -> set[str]:
    return {item["Key"] for item in raw().list_objects_v2(Bucket=bucket).get("Contents", [])}


def detail(bucket: str, key: str) -> str:
    return f"{reverse('object_detail', args=[bucket])}?key={key}"


@pytest.fixture
def second(bucket, alice):
    """Another bucket alice manages: a copy destination."""
    raw().create_bucket(Bucket="archive")
    BucketGrant.objects.create(user=alice, bucket="archive", role=Role.MANAGE)
    return "archive"


def test_folder_page_shows_folders_files_and_hides_marker(client, bob, bucket):
    put(bucket, "docs/")
    put(bucket, "docs/readme.txt", b"hello")
    put(bucket, "docs/img/a.png")
    response = client_for(client, bob).get(
        reverse("bucket_detail", args=[bucket]), {"prefix": "docs/"}
    )
    content = response.content.decode()
    assert response.status_code == 200
    assert ">readme.txt</a>" in content and ">img/</a>" in content
    assert 'value="docs/"' not in content.replace('name="prefix" value="docs/"', "")
    # bob only reads and writes nowhere: he may select to download, not to copy, move or delete.
    assert 'data-testid="download-selected"' in content
    for action in ("copy-selected", "move-selected", "delete-selected", "delete-folder"):
        assert f'data-testid="{action}"' not in content


def test_breadcrumbs_link_every_level(client, bob, bucket):
    put(bucket, "a/b/c/file.txt")
    content = (
        client_for(client, bob)
        .get(reverse("bucket_detail", args=[bucket]), {"prefix": "a/b/c/"})
        .content.decode()
    )
    for crumb in ("a/", "a/b/", "a/b/c/"):
        assert f'?prefix={crumb}"' in content


def test_filter_by_name_prefix(client, bob, bucket):
    for name in ("report-1.txt", "report-2.txt", "photo.jpg"):
        put(bucket, f"docs/{name}")
    content = (
        client_for(client, bob)
        .get(reverse("bucket_detail", args=[bucket]), {"prefix": "docs/", "q": "rep"})
        .content.decode()
    )
    assert "report-1.txt" in content and "report-2.txt" in content and "photo.jpg" not in content


def test_pagination_by_continuation_token(client, bob, bucket, monkeypatch):
    monkeypatch.setattr("sharing.selectors.PAGE_SIZE", 2)
    for index in range(5):
        put(bucket, f"f{index}.txt")
    client_for(client, bob)
    seen, url = [], reverse("bucket_detail", args=[bucket])
    query = {}
    for _ in range(3):
        response = client.get(url, query)
        files = [
            line
            for line in ("f0", "f1", "f2", "f3", "f4")
            if f">{line}.txt</a>" in response.content.decode()
        ]
        seen += files
        if b"next-page" not in response.content:
            break
        token = response.context["page"].next_token
        query = {"token": token}
    assert seen == ["f0", "f1", "f2", "f3", "f4"]


def test_object_page_shows_metadata(client, bob, bucket):
    put(
        bucket,
        "docs/q1.pdf",
        b"%PDF-1.7",
        ContentType="application/pdf",
        Metadata={"owner": "finance"},
    )
    response = client_for(client, bob).get(detail(bucket, "docs/q1.pdf"))
    content = response.content.decode()
    assert response.status_code == 200
    for expected in (
        "q1.pdf",
        "application/pdf",
        "<dd>8\xa0bytes</dd>",  # the size once (no exact bytes to add under 1 KB)
        "x-amz-meta-owner",
        "finance",
        "STANDARD",
    ):
        assert expected in content
    assert s3.head(bucket, "docs/q1.pdf").etag in content
    assert "Delete this file" not in content  # read-only role


def test_missing_object_is_404(client, bob, bucket):
    assert client_for(client, bob).get(detail(bucket, "nope.txt")).status_code == 404


def test_outsider_gets_404_on_object_and_download(client, charlie, bucket):
    put(bucket, "a.txt")
    client_for(client, charlie)
    assert client.get(detail(bucket, "a.txt")).status_code == 404
    assert client.get(f"{reverse('object_download', args=[bucket])}?key=a.txt").status_code == 404


def test_download_redirects_to_short_attachment_url(client, bob, bucket):
    put(bucket, "docs/résumé 2026.txt", b"cv")
    response = client_for(client, bob).get(
        reverse("object_download", args=[bucket]), {"key": "docs/résumé 2026.txt"}
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    disposition = query["response-content-disposition"][0]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%202026.txt" in disposition
    assert audit_rows(action="object.download")[-1] == ("object.download", "outcome", "success")


def test_download_of_missing_file_is_404_and_audited(client, bob, bucket):
    response = client_for(client, bob).get(
        reverse("object_download", args=[bucket]), {"key": "gone.txt"}
    )
    assert response.status_code == 404
    assert "That file does not exist (any more)." in response.content.decode()
    assert audit_rows(action="object.download")[-1] == ("object.download", "outcome", "failure")
    row = AuditEvent.objects.filter(action="object.download", phase="outcome").get()
    assert (row.error_code, row.message) == ("ObjectError", "That file does not exist (any more).")


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ('multi-part-one";" dummy".txt', 'filename="multi-part-one_;_ dummy_.txt"'),
        ("a\r\nSet-Cookie: x=y.txt", 'filename="a__Set-Cookie: x=y.txt"'),
        ("naïve.txt", 'filename="na_ve.txt"'),
    ],
)
def test_content_disposition_is_rfc6266(name, fallback):
    header = content_disposition(name)
    assert header.startswith("attachment; ") and fallback in header
    assert "\r" not in header and "\n" not in header
    assert unquote(header.split("filename*=UTF-8''")[1]) == name


def test_create_folder(client, alice, bucket):
    response = client_for(client, alice).post(
        reverse("folder_create", args=[bucket]), {"prefix": "docs/", "name": "2026"}
    )
    assert response.status_code == 302 and "prefix=docs%2F2026%2F" in response["Location"]
    assert "docs/2026/" in keys(bucket)
    assert audit_rows(action="folder.create")[-1] == ("folder.create", "outcome", "success")


@pytest.mark.parametrize("name", ["..", "a\x00b", "bad\\name", "x\u202egpj"])
def test_create_folder_refuses_bad_names(client, alice, bucket, name):
    response = client_for(client, alice).post(
        reverse("folder_create", args=[bucket]), {"prefix": "", "name": name}, follow=True
    )
    assert b"message-error" in response.content
    assert keys(bucket) == set()


def test_existing_folder_is_not_created_again(client, alice, bucket):
    client = client_for(client, alice)
    data = {"prefix": "", "name": "docs"}
    client.post(reverse("folder_create", args=[bucket]), data)
    response = client.post(reverse("folder_create", args=[bucket]), data, follow=True)
    assert "A folder with that name already exists." in response.content.decode()
    row = AuditEvent.objects.filter(action="folder.create", phase="outcome").order_by("id").last()
    assert (row.outcome, row.error_code) == ("failure", "ObjectError")


def test_reader_cannot_create_folder(client, bob, bucket):
    response = client_for(client, bob).post(reverse("folder_create", args=[bucket]), {"name": "x"})
    assert response.status_code == 403


def transfer(client, bucket, data, **query):
    return client.post(
        f"{reverse('object_transfer', args=[bucket])}?{'&'.join(f'{k}={v}' for k, v in query.items())}",
        data,
    )


def test_copy_to_another_bucket(client, alice, bucket, second):
    put(bucket, "a.txt", b"payload")
    client_for(client, alice)
    response = transfer(
        client,
        bucket,
        {"dst_bucket": second, "dst_key": "copies/a.txt", "mode": "copy"},
        key="a.txt",
    )
    assert response.status_code == 302
    assert raw().get_object(Bucket=second, Key="copies/a.txt")["Body"].read() == b"payload"
    assert "a.txt" in keys(bucket)
    assert audit_rows(action="object.copy")[-1] == ("object.copy", "outcome", "success")


def test_move_renames_within_bucket(client, alice, bucket):
    put(bucket, "old.txt", b"v")
    client_for(client, alice)
    response = transfer(
        client, bucket, {"dst_bucket": bucket, "dst_key": "new.txt", "mode": "move"}, key="old.txt"
    )
    assert response.status_code == 302
    assert keys(bucket) == {"new.txt"}
    actions = [row[0] for row in audit_rows(phase="outcome") if row[0].startswith("object.")]
    assert actions[-2:] == ["object.copy", "object.delete"]


def test_existing_destination_asks_before_overwrite(client, alice, bucket):
    put(bucket, "a.txt", b"new")
    put(bucket, "b.txt", b"old")
    client_for(client, alice)
    data = {"dst_bucket": bucket, "dst_key": "b.txt", "mode": "copy"}
    response = transfer(client, bucket, data, key="a.txt")
    assert response.status_code == 409
    assert b"already exist" in response.content
    assert raw().get_object(Bucket=bucket, Key="b.txt")["Body"].read() == b"old"
    assert transfer(client, bucket, {**data, "overwrite": "on"}, key="a.txt").status_code == 302
    assert raw().get_object(Bucket=bucket, Key="b.txt")["Body"].read() == b"new"


def test_move_says_so_when_delete_fails(client, alice, bucket, monkeypatch):
    put(bucket, "a.txt")

    def refuse(bucket, key):
        raise s3.S3Error("access denied", status=403, code="AccessDenied")

    monkeypatch.setattr("sharing.s3.delete", refuse)
    client_for(client, alice)
    response = transfer(
        client, bucket, {"dst_bucket": bucket, "dst_key": "b.txt", "mode": "move"}, key="a.txt"
    )
    follow = client.get(response["Location"])
    assert b"could not be deleted" in follow.content
    assert keys(bucket) == {"a.txt", "b.txt"}
    assert audit_rows(action="object.delete")[-1] == ("object.delete", "outcome", "failure")


def test_reader_cannot_copy_into_a_bucket_they_only_read(client, bob, bucket):
    put(bucket, "a.txt")
    client_for(client, bob)
    response = transfer(
        client, bucket, {"dst_bucket": bucket, "dst_key": "b.txt", "mode": "copy"}, key="a.txt"
    )
    assert response.status_code == 400
    assert keys(bucket) == {"a.txt"}


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "/abs", "a\x00.jpg", "x/../y", "a\u200b.txt", "", "é" * 513]
)
def test_copy_refuses_bad_destination_keys(client, alice, bucket, bad):
    put(bucket, "a.txt")
    client_for(client, alice)
    response = transfer(
        client, bucket, {"dst_bucket": bucket, "dst_key": bad, "mode": "copy"}, key="a.txt"
    )
    assert response.status_code == 400
    assert b"form-errors" in response.content
    assert keys(bucket) == {"a.txt"}


def test_folder_copy_runs_as_a_job_with_one_audit_pair_per_file(
    client, alice, bucket, second, run_tasks
):
    for name in ("docs/a.txt", "docs/b.txt", "docs/sub/c.txt"):
        put(bucket, name)
    client_for(client, alice)
    response = transfer(
        client, bucket, {"dst_bucket": second, "dst_key": "backup", "mode": "copy"}, prefix="docs/"
    )
    assert response.status_code == 302 and response.url.startswith("/jobs/")
    run_tasks()
    body = client.get(response.url).content.decode()
    assert "Done: 3 of 3 files copied." in body
    assert keys(second) == {"backup/a.txt", "backup/b.txt", "backup/sub/c.txt"}
    assert (
        audit_rows(action="object.copy", phase="outcome").count(
            ("object.copy", "outcome", "success")
        )
        == 3
    )


def test_folder_move_into_itself_is_refused(client, alice, bucket):
    put(bucket, "docs/a.txt")
    client_for(client, alice)
    response = transfer(
        client,
        bucket,
        {"dst_bucket": bucket, "dst_key": "docs/inner", "mode": "move"},
        prefix="docs/",
    )
    assert response.status_code == 400 and b"into itself" in response.content


def test_delete_selection_one_audit_pair_per_file(client, alice, bucket, run_tasks):
    for name in ("a.txt", "b.txt", "c.txt"):
        put(bucket, name)
    response = client_for(client, alice).post(
        reverse("objects_delete", args=[bucket]), {"keys": ["a.txt", "b.txt"], "prefix": ""}
    )
    assert response.status_code == 302
    run_tasks()
    assert keys(bucket) == {"c.txt"}
    rows = AuditEvent.objects.filter(action="object.delete").values_list("key", "phase", "outcome")
    assert sorted(rows) == sorted(
        [
            ("a.txt", "intent", "pending"),
            ("b.txt", "intent", "pending"),
            ("a.txt", "outcome", "success"),
            ("b.txt", "outcome", "success"),
        ]
    )


def test_delete_in_batches(client, alice, bucket, monkeypatch, run_tasks):
    monkeypatch.setattr("sharing.s3.core.DELETE_BATCH", 2)
    names = [f"f{i}.txt" for i in range(5)]
    for name in names:
        put(bucket, name)
    client_for(client, alice).post(reverse("objects_delete", args=[bucket]), {"keys": names})
    run_tasks()
    assert keys(bucket) == set()


def test_reader_cannot_delete_files(client, bob, bucket):
    put(bucket, "a.txt")
    assert (
        client_for(client, bob)
        .post(reverse("objects_delete", args=[bucket]), {"keys": ["a.txt"]})
        .status_code
        == 403
    )
    assert keys(bucket) == {"a.txt"}


def test_folder_delete_confirms_then_deletes_everything(client, alice, bucket, run_tasks):
    for name in ("docs/", "docs/a.txt", "docs/sub/b.txt", "keep.txt"):
        put(bucket, name, b"12")
    client_for(client, alice)
    url = f"{reverse('folder_delete', args=[bucket])}?prefix=docs/"
    page = client.get(url)
    assert b"3 files" in page.content
    assert keys(bucket) == {"docs/", "docs/a.txt", "docs/sub/b.txt", "keep.txt"}
    assert client.post(url).status_code == 302
    run_tasks()
    assert keys(bucket) == {"keep.txt"}


@pytest.mark.parametrize("name", ["objects_delete", "folder_create"])
def test_get_on_post_views_is_405(client, alice, bucket, name):
    assert client_for(client, alice).get(reverse(name, args=[bucket])).status_code == 405


def test_storage_down_on_object_page_is_503(client, bob, bucket, settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    response = client_for(client, bob).get(detail(bucket, "a.txt"))
    assert response.status_code == 503
    assert audit_rows(action="object.head")[-1] == ("object.head", "outcome", "failure")


def test_destination_key_is_stored_in_nfc(client, alice, bucket):
    put(bucket, "a.txt")
    client_for(client, alice)
    nfd = "cafe\u0301.txt"
    transfer(client, bucket, {"dst_bucket": bucket, "dst_key": nfd, "mode": "copy"}, key="a.txt")
    assert keys(bucket) == {"a.txt", "caf\u00e9.txt"}


def test_key_of_1024_bytes_is_accepted_and_1025_refused(client, alice, bucket):
    put(bucket, "a.txt")
    client_for(client, alice)
    ok = transfer(
        client, bucket, {"dst_bucket": bucket, "dst_key": "k" * 1024, "mode": "copy"}, key="a.txt"
    )
    too_long = transfer(
        client, bucket, {"dst_bucket": bucket, "dst_key": "k" * 1025, "mode": "copy"}, key="a.txt"
    )
    assert (ok.status_code, too_long.status_code) == (302, 400)
    assert "k" * 1024 in keys(bucket)


def test_deleting_a_public_file_removes_its_policy_statement(client, alice, bucket):
    put(bucket, "pub.txt")
    put(bucket, "other.txt")
    s3.grant_public_read(bucket, "pub.txt")
    s3.grant_public_read(bucket, "other.txt")
    client_for(client, alice).post(reverse("objects_delete", args=[bucket]), {"keys": ["pub.txt"]})
    assert not s3.has_public_read_statement(bucket, "pub.txt")
    assert s3.has_public_read_statement(bucket, "other.txt")
    assert audit_rows(action="bucket.policy_cleanup")[-1] == (
        "bucket.policy_cleanup",
        "outcome",
        "success",
    )


@pytest.mark.parametrize(
    ("names", "said"),
    [(["a.txt"], "Deleted 1 file."), (["a.txt", "b.txt"], "Done: 2 of 2 files deleted.")],
)
def test_the_delete_message_counts_in_plain_english(client, alice, bucket, names, said, run_tasks):
    for name in names:
        put(bucket, name)
    response = client_for(client, alice).post(
        reverse("objects_delete", args=[bucket]), {"keys": names, "prefix": ""}
    )
    run_tasks()  # one file is deleted at once, several by a job
    assert said in client.get(response.url).content.decode()
