"""ZIP downloads of folders and selections: contents, names, caps, access and audit rows."""

import io
import zipfile

import boto3
import pytest
from django.urls import reverse

from sharing import s3
from sharing.audit import Actor
from sharing.models import AuditEvent
from sharing.services import archives
from tests.conftest import audit_rows, client_for

FILES = {
    "docs/readme.txt": b"read me\n",
    "docs/Größe – résumé.txt": "grüße".encode() * 100,
    "docs/deep/er/nested.bin": bytes(range(256)) * 40,
    "docs/deep/sibling.txt": b"",
    "top.txt": b"at the root",
}


def raw():
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def files(bucket):
    for key, body in FILES.items():
        raw().put_object(Bucket=bucket, Key=key, Body=body)
    raw().put_object(Bucket=bucket, Key="docs/empty-folder/", Body=b"")
    return bucket


def zip_url(bucket: str, prefix: str = "") -> str:
    url = reverse("folder_zip", args=[bucket])
    return f"{url}?prefix={prefix}" if prefix else url


def unzip(response) -> dict[str, bytes]:
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_folder_downloads_as_one_zip_with_its_structure(client, bob, files):
    response = client_for(client, bob).get(zip_url(files, "docs/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="docs.zip"')
    assert unzip(response) == {
        key.removeprefix("docs/"): body for key, body in FILES.items() if key.startswith("docs/")
    }


def test_names_are_utf8_in_the_zip(client, bob, files):
    response = client_for(client, bob).get(zip_url(files, "docs/"))
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        info = archive.getinfo("Größe – résumé.txt")
        assert info.flag_bits & 0x800  # the UTF-8 name flag: every unzip tool reads it right


def test_bucket_root_downloads_every_file(client, bob, files):
    response = client_for(client, bob).get(zip_url(files))
    assert response["Content-Disposition"].startswith(f'attachment; filename="{files}.zip"')
    assert unzip(response) == FILES


def test_utf8_folder_name_gives_the_zip_its_name(client, bob, bucket):
    raw().put_object(Bucket=bucket, Key="Übersicht/a.txt", Body=b"a")
    response = client_for(client, bob).get(zip_url(bucket, "%C3%9Cbersicht/"))
    assert "filename*=UTF-8''%C3%9Cbersicht.zip" in response["Content-Disposition"]
    assert unzip(response) == {"a.txt": b"a"}


def test_audit_has_the_archive_pair_and_a_row_per_file(client, bob, files):
    response = client_for(client, bob).get(zip_url(files, "docs/deep/"))
    assert audit_rows(action="archive.download") == []  # nothing sent yet, nothing claimed
    unzip(response)
    assert audit_rows(action="archive.download") == [
        ("archive.download", "intent", "pending"),
        ("archive.download", "outcome", "success"),
    ]
    rows = AuditEvent.objects.filter(action="archive.file").order_by("id")
    assert [(row.key, row.outcome) for row in rows] == [
        ("docs/deep/er/nested.bin", "success"),
        ("docs/deep/sibling.txt", "success"),
    ]
    assert all(row.actor_name == "bob" for row in rows)
    outcome = AuditEvent.objects.get(action="archive.download", phase="outcome")
    assert outcome.key == "docs/deep/" and "2 files" in outcome.message
    assert audit_rows(action="object.list", key="docs/deep/")[-1] == (
        "object.list",
        "outcome",
        "success",
    )


def test_needs_login(client, files):
    response = client.get(zip_url(files, "docs/"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_outsider_gets_404(client, charlie, files):
    response = client_for(client, charlie).get(zip_url(files, "docs/"))
    assert response.status_code == 404
    assert audit_rows(action="archive.download") == [("archive.download", "event", "denied")]
    assert not AuditEvent.objects.filter(action="object.list").exists()


def test_post_is_405(client, bob, files):
    assert client_for(client, bob).post(zip_url(files, "docs/")).status_code == 405


def test_too_many_files_are_refused_before_any_byte(client, bob, files, settings):
    settings.ARCHIVE_MAX_FILES = 3
    response = client_for(client, bob).get(zip_url(files, "docs/"))
    assert response.status_code == 413
    content = response.content.decode()
    assert "4 files" in content and "at most 3 files" in content
    assert audit_rows(action="archive.download") == [("archive.download", "event", "refused")]
    assert not AuditEvent.objects.filter(action="archive.file").exists()


def test_too_many_bytes_are_refused_before_any_byte(client, bob, files, settings):
    settings.ARCHIVE_MAX_BYTES = 1000
    response = client_for(client, bob).get(zip_url(files, "docs/"))
    assert response.status_code == 413
    assert "at most 1000\xa0bytes" in response.content.decode()


def test_files_at_the_caps_are_accepted(client, bob, files, settings):
    docs = {key: body for key, body in FILES.items() if key.startswith("docs/")}
    settings.ARCHIVE_MAX_FILES = len(docs)
    settings.ARCHIVE_MAX_BYTES = sum(len(body) for body in docs.values())
    assert len(unzip(client_for(client, bob).get(zip_url(files, "docs/")))) == len(docs)


def test_an_empty_folder_says_there_is_nothing(client, bob, files):
    response = client_for(client, bob).get(zip_url(files, "docs/empty-folder/"))
    assert response.status_code == 404
    assert "no files to download" in response.content.decode()


def test_a_prefix_that_is_no_folder_is_refused(client, bob, files):
    response = client_for(client, bob).get(zip_url(files, "docs/readme.txt"))
    assert response.status_code == 400


def test_storage_down_is_503(client, bob, files, settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    response = client_for(client, bob).get(zip_url(files, "docs/"))
    assert response.status_code == 503


def test_folder_page_offers_the_zip_to_readers(client, bob, files):
    page = client_for(client, bob).get(reverse("bucket_detail", args=[files]), {"prefix": "docs/"})
    assert 'data-testid="download-zip"' in page.content.decode()
    assert "Download folder as ZIP" in page.content.decode()
    root = client.get(reverse("bucket_detail", args=[files])).content.decode()
    assert "Download bucket as ZIP" in root


def download_selection(client, bucket, prefix, keys):
    return client.post(reverse("objects_download", args=[bucket]), {"prefix": prefix, "keys": keys})


def test_selection_with_a_sub_folder_is_one_zip(client, bob, files):
    client_for(client, bob)
    response = download_selection(client, files, "docs/", ["docs/readme.txt", "docs/deep/"])
    assert unzip(response) == {
        "readme.txt": FILES["docs/readme.txt"],
        "deep/er/nested.bin": FILES["docs/deep/er/nested.bin"],
        "deep/sibling.txt": b"",
    }
    assert response["Content-Disposition"].startswith('attachment; filename="docs.zip"')


def test_selection_outside_its_folder_is_refused(client, bob, files):
    client_for(client, bob)
    response = download_selection(client, files, "docs/deep/", ["docs/readme.txt", "top.txt"])
    assert response.status_code == 302
    assert "inside the folder" in client.get(response["Location"]).content.decode()
    assert not AuditEvent.objects.filter(action="archive.file").exists()


def test_selection_over_the_caps_is_refused_on_the_folder_page(client, bob, files, settings):
    settings.ARCHIVE_MAX_FILES = 1
    client_for(client, bob)
    response = download_selection(client, files, "docs/", ["docs/readme.txt", "docs/deep/"])
    assert response.status_code == 302
    assert "at most 1 files" in client.get(response["Location"]).content.decode()


def test_selection_of_a_vanished_file_says_so(client, bob, files):
    client_for(client, bob)
    response = download_selection(client, files, "docs/", ["docs/readme.txt", "docs/gone.txt"])
    assert response.status_code == 302
    assert "“gone.txt” does not exist" in client.get(response["Location"]).content.decode()


def test_selection_outsider_gets_404(client, charlie, files):
    client_for(client, charlie)
    response = download_selection(client, files, "docs/", ["docs/readme.txt", "docs/deep/"])
    assert response.status_code == 404


def test_client_going_away_leaves_a_failed_outcome(bob, files):
    actor = Actor(user=bob, name="bob")
    plan = archives.folder_archive(actor=actor, bucket=files, prefix="docs/")
    chunks = archives.archive_chunks(actor=actor, plan=plan)
    next(chunks), next(chunks)  # the first file's header, then its first chunk
    chunks.close()  # what the server does when the browser goes away (GeneratorExit)
    assert audit_rows(action="archive.download") == [
        ("archive.download", "intent", "pending"),
        ("archive.download", "outcome", "failure"),
    ]
    cut = AuditEvent.objects.get(action="archive.file", outcome="failure")
    assert "stopped before" in cut.message


def test_file_deleted_while_streaming_breaks_the_archive_with_audit(bob, files):
    actor = Actor(user=bob, name="bob")
    plan = archives.folder_archive(actor=actor, bucket=files, prefix="docs/deep/")
    raw().delete_object(Bucket=files, Key="docs/deep/sibling.txt")
    with pytest.raises(s3.S3Error):
        b"".join(archives.archive_chunks(actor=actor, plan=plan))
    assert audit_rows(action="archive.download")[-1] == ("archive.download", "outcome", "failure")
    rows = AuditEvent.objects.filter(action="archive.file").order_by("id")
    assert [(row.key, row.outcome) for row in rows] == [
        ("docs/deep/er/nested.bin", "success"),
        ("docs/deep/sibling.txt", "failure"),
    ]


def test_plan_names_are_relative_to_the_base(bob, files):
    plan = archives.archive_plan(
        actor=Actor(user=bob, name="bob"), bucket=files, keys=["docs/deep/"], base="docs/deep/"
    )
    assert [name for _, name, _ in plan.entries] == ["er/nested.bin", "sibling.txt"]
    assert plan.total_bytes == len(FILES["docs/deep/er/nested.bin"])
    assert plan.filename == "deep.zip"


def test_read_chunks_streams_an_object_in_pieces(files):
    chunks = list(s3.read_chunks(files, "docs/deep/er/nested.bin", chunk_size=1000))
    assert b"".join(chunks) == FILES["docs/deep/er/nested.bin"]
    assert max(len(chunk) for chunk in chunks) <= 1000 and len(chunks) > 1
