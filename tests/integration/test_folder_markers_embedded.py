"""Folder markers ("name/" objects from Create folder) on the real embedded server."""

import pytest
from django.urls import reverse

from sharing.models import AuditEvent, BucketGrant, Role
from tests.conftest import client_for, server_client

pytestmark = pytest.mark.integration


@pytest.fixture
def project(real_s3, client, alice):
    """A bucket with project/docs/ (made with Create folder) holding a file, and an empty folder."""
    raw = server_client(real_s3)
    for name in ("src-bucket", "dst-bucket"):
        raw.create_bucket(Bucket=name)
        BucketGrant.objects.create(user=alice, bucket=name, role=Role.MANAGE)
    client_for(client, alice)
    create = reverse("folder_create", args=["src-bucket"])
    client.post(create, {"prefix": "", "name": "project"})
    client.post(create, {"prefix": "project/", "name": "docs"})
    client.post(create, {"prefix": "", "name": "empty"})
    raw.put_object(Bucket="src-bucket", Key="project/docs/a.txt", Body=b"a")
    raw.put_object(Bucket="src-bucket", Key="project/b.txt", Body=b"bb")
    return raw


def keys_in(raw, bucket: str, prefix: str = "") -> set[str]:
    pages = raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def transfer(client, run_tasks, prefix: str, dst_key: str, mode: str) -> str:
    """Start a folder copy or move, run its job with the real worker; return the job's page."""
    url = reverse("object_transfer", args=["src-bucket"])
    response = client.post(
        f"{url}?prefix={prefix}", {"dst_bucket": "dst-bucket", "dst_key": dst_key, "mode": mode}
    )
    assert response.status_code == 302
    run_tasks()
    return client.get(response.url).content.decode()


def audit_pairs(action: str, bucket: str) -> list[tuple[str, str, str]]:
    rows = AuditEvent.objects.filter(action=action, bucket=bucket).order_by("id")
    return [(row.key, row.phase, row.outcome) for row in rows]


def test_folder_copy_copies_sub_folder_markers(client, project, run_tasks):
    page = transfer(client, run_tasks, "project/", "copy", "copy")
    assert "failed" not in page
    assert "Done: 4 of 4 files copied." in page
    assert keys_in(project, "dst-bucket") == {
        "copy/", "copy/b.txt", "copy/docs/", "copy/docs/a.txt"
    }  # fmt: skip
    pairs = audit_pairs("object.copy", "dst-bucket")
    assert ("copy/docs/", "intent", "pending") in pairs
    assert ("copy/docs/", "outcome", "success") in pairs
    assert len(pairs) == 8
    assert keys_in(project, "src-bucket", "project/") == {
        "project/", "project/b.txt", "project/docs/", "project/docs/a.txt"
    }  # fmt: skip


def test_folder_move_moves_markers_and_leaves_nothing(client, project, run_tasks):
    page = transfer(client, run_tasks, "project/", "moved", "move")
    assert "Done: 4 of 4 files moved." in page
    assert keys_in(project, "dst-bucket") == {
        "moved/", "moved/b.txt", "moved/docs/", "moved/docs/a.txt"
    }  # fmt: skip
    assert keys_in(project, "src-bucket", "project") == set()
    outcomes = [p for p in audit_pairs("object.delete", "src-bucket") if p[1] == "outcome"]
    assert sorted(outcomes) == [
        (key, "outcome", "success")
        for key in ("project/", "project/b.txt", "project/docs/", "project/docs/a.txt")
    ]


def test_empty_folder_moves(client, project, run_tasks):
    page = transfer(client, run_tasks, "empty/", "elsewhere", "move")
    assert "Done: 1 of 1 file moved." in page
    assert keys_in(project, "dst-bucket") == {"elsewhere/"}
    assert keys_in(project, "src-bucket", "empty") == set()


def test_folder_delete_removes_markers(client, project, run_tasks):
    url = reverse("folder_delete", args=["src-bucket"])
    response = client.post(f"{url}?prefix=project/")
    assert response.status_code == 302
    run_tasks()
    assert keys_in(project, "src-bucket", "project") == set()
    listing = client.get(reverse("bucket_detail", args=["src-bucket"]))
    assert "project/" not in listing.content.decode()
    outcomes = [p for p in audit_pairs("object.delete", "src-bucket") if p[1] == "outcome"]
    assert sorted(outcomes) == [
        (key, "outcome", "success")
        for key in ("project/", "project/b.txt", "project/docs/", "project/docs/a.txt")
    ]
