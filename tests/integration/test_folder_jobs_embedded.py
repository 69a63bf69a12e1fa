"""Folder jobs on the real embedded server: folders of more than one listing page and batch."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from sharing.models import AuditEvent, BucketGrant, FolderJob, JobState, Role
from tests.conftest import client_for, server_client

pytestmark = pytest.mark.integration
COUNT = 2500  # three listing pages of 1000, three delete batches


@pytest.fixture
def big_folder(real_s3, alice):
    raw = server_client(real_s3)
    for name in ("src-bucket", "dst-bucket"):
        raw.create_bucket(Bucket=name)
        BucketGrant.objects.create(user=alice, bucket=name, role=Role.MANAGE)
    keys = ["big/"] + [f"big/d{index % 7}/f{index:05}.txt" for index in range(COUNT)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: raw.put_object(Bucket="src-bucket", Key=key, Body=b"x"), keys))
    return raw


def keys_in(raw, bucket: str, prefix: str) -> set[str]:
    pages = raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def run_job(client, run_tasks, data: dict) -> FolderJob:
    url = f"{reverse('object_transfer', args=['src-bucket'])}?prefix=big/"
    response = client.post(url, data)
    assert response.status_code == 302
    run_tasks()
    return FolderJob.objects.get(pk=response.url.rstrip("/").rsplit("/", 1)[-1])


def test_a_folder_of_thousands_copies_then_moves(client, alice, big_folder, run_tasks):
    client_for(client, alice)
    source = keys_in(big_folder, "src-bucket", "big/")
    assert len(source) == COUNT + 1
    copy = run_job(
        client, run_tasks, {"dst_bucket": "dst-bucket", "dst_key": "copy", "mode": "copy"}
    )
    assert (copy.state, copy.done, copy.failed) == (JobState.DONE, COUNT + 1, 0)
    assert keys_in(big_folder, "dst-bucket", "copy/") == {
        "copy/" + key.removeprefix("big/") for key in source
    }
    outcomes = AuditEvent.objects.filter(action="object.copy", phase="outcome", outcome="success")
    assert outcomes.count() == COUNT + 1
    move = run_job(
        client, run_tasks, {"dst_bucket": "dst-bucket", "dst_key": "moved", "mode": "move"}
    )
    assert (move.state, move.done, move.failed) == (JobState.DONE, COUNT + 1, 0)
    assert keys_in(big_folder, "src-bucket", "big") == set()
    assert len(keys_in(big_folder, "dst-bucket", "moved/")) == COUNT + 1
    deleted = AuditEvent.objects.filter(action="object.delete", phase="outcome", outcome="success")
    assert deleted.count() == COUNT + 1
