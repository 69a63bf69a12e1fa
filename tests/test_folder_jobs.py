"""Folder and selection copy, move and delete as background jobs (moto, the real worker)."""

import io
import json

import boto3
import pytest
from django.core.management import call_command
from django.urls import reverse

from sharing import s3
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, FolderJob, JobState, Role
from sharing.services import folder_jobs
from tests.conftest import audit_rows, client_for

FILES = ("docs/", "docs/a.txt", "docs/b.txt", "docs/sub/", "docs/sub/c.txt", "keep.txt")


def raw():
    return boto3.client("s3", region_name="us-east-1")


def put(bucket: str, key: str, body: bytes = b"x") -> None:
    raw().put_object(Bucket=bucket, Key=key, Body=body)


def keys(bucket: str) -> set[str]:
    pages = raw().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


@pytest.fixture
def second(bucket, alice):
    """Another bucket alice manages: a copy destination."""
    raw().create_bucket(Bucket="archive")
    BucketGrant.objects.create(user=alice, bucket="archive", role=Role.MANAGE)
    return "archive"


@pytest.fixture
def docs(bucket):
    for name in FILES:
        put(bucket, name)
    return bucket


def transfer_url(bucket: str, prefix: str) -> str:
    return f"{reverse('object_transfer', args=[bucket])}?prefix={prefix}"


def start_copy(client, bucket, dst_bucket, *, mode="copy", dst_key="backup", **extra):
    data = {"dst_bucket": dst_bucket, "dst_key": dst_key, "mode": mode, **extra}
    return client.post(transfer_url(bucket, "docs/"), data)


def the_job() -> FolderJob:
    return FolderJob.objects.get()


def pairs_per_key(action: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for row in AuditEvent.objects.filter(action=action).order_by("id"):
        found.setdefault(row.key, []).append((row.phase, row.outcome))
    return found


def test_folder_copy_runs_as_a_job_with_one_audit_pair_per_object(
    client, alice, docs, second, run_tasks
):
    response = start_copy(client_for(client, alice), docs, second)
    job = the_job()
    assert response.status_code == 302 and response.url == reverse("folder_job", args=[job.id])
    assert job.state == JobState.QUEUED and job.planned == 5 and job.task_id
    run_tasks()
    job.refresh_from_db()
    assert job.state == JobState.DONE and (job.done, job.failed) == (5, 0)
    assert keys(second) == {
        "backup/",
        "backup/a.txt",
        "backup/b.txt",
        "backup/sub/",
        "backup/sub/c.txt",
    }
    assert keys(docs) == set(FILES)
    pairs = pairs_per_key("object.copy")
    assert len(pairs) == 5
    assert all(pair == [("intent", "pending"), ("outcome", "success")] for pair in pairs.values())
    page = client.get(reverse("folder_job", args=[job.id])).content.decode()
    assert "Done: 5 of 5 files copied." in page


def test_folder_move_deletes_each_original_after_its_copy(client, alice, docs, second, run_tasks):
    start_copy(client_for(client, alice), docs, second, mode="move")
    run_tasks()
    job = the_job()
    assert job.state == JobState.DONE and (job.done, job.failed) == (5, 0)
    assert keys(docs) == {"keep.txt"}
    assert len(keys(second)) == 5
    copies, deletes = pairs_per_key("object.copy"), pairs_per_key("object.delete")
    assert set(deletes) == set(FILES) - {"keep.txt"}
    assert all(pair == [("intent", "pending"), ("outcome", "success")] for pair in deletes.values())
    assert len(copies) == 5
    # Each original is deleted only after its copy succeeded.
    for key in deletes:
        copy_done = AuditEvent.objects.get(
            action="object.copy", phase="outcome", key=key.replace("docs/", "backup/", 1)
        )
        delete_asked = AuditEvent.objects.get(action="object.delete", phase="intent", key=key)
        assert copy_done.id < delete_asked.id


def test_folder_delete_runs_as_a_job(client, alice, docs, run_tasks):
    url = f"{reverse('folder_delete', args=[docs])}?prefix=docs/"
    response = client_for(client, alice).post(url)
    job = the_job()
    assert response.url == reverse("folder_job", args=[job.id])
    run_tasks()
    job.refresh_from_db()
    assert keys(docs) == {"keep.txt"}
    assert (job.state, job.planned, job.done) == (JobState.DONE, 5, 5)
    deletes = pairs_per_key("object.delete")
    assert set(deletes) == set(FILES) - {"keep.txt"}
    assert all(pair == [("intent", "pending"), ("outcome", "success")] for pair in deletes.values())
    status = json.loads(client.get(reverse("folder_job_status", args=[job.id])).content)
    assert status["summary"] == "Done: 5 of 5 files deleted." and status["finished"]


def test_selection_copy_and_delete_run_as_jobs(client, alice, docs, second, run_tasks):
    client_for(client, alice)
    response = client.post(
        reverse("selection_transfer", args=[docs]),
        {"prefix": "docs/", "keys": ["docs/a.txt", "docs/sub/"], "dst_bucket": second,
         "dst_key": "picked/", "mode": "copy"},
    )  # fmt: skip
    assert response.status_code == 302
    run_tasks()
    assert keys(second) == {"picked/a.txt", "picked/sub/", "picked/sub/c.txt"}
    response = client.post(
        reverse("objects_delete", args=[docs]),
        {"prefix": "docs/", "keys": ["docs/b.txt", "docs/sub/"]},
    )
    job = FolderJob.objects.filter(kind="delete").get()
    assert response.url == reverse("folder_job", args=[job.id])
    run_tasks()
    assert keys(docs) == {"docs/", "docs/a.txt", "keep.txt"}
    job.refresh_from_db()
    assert (job.planned, job.done, job.failed) == (3, 3, 0)


def test_a_single_file_is_deleted_at_once(client, alice, docs):
    response = client_for(client, alice).post(
        reverse("objects_delete", args=[docs]), {"prefix": "", "keys": ["keep.txt"]}
    )
    assert response.status_code == 302 and "keep.txt" not in keys(docs)
    assert not FolderJob.objects.exists()


def test_clashes_are_asked_about_before_the_job_starts(client, alice, docs, second):
    put(second, "backup/a.txt")
    response = start_copy(client_for(client, alice), docs, second)
    assert response.status_code == 409 and b"already exist" in response.content
    assert not FolderJob.objects.exists()
    response = start_copy(client, docs, second, overwrite="on")
    assert response.status_code == 302 and the_job().overwrite


def test_reader_cannot_move_or_delete_and_outsider_gets_404(client, bob, charlie, docs, second):
    client_for(client, bob)
    assert start_copy(client, docs, docs, mode="move", dst_key="elsewhere").status_code in (
        400,
        403,
    )
    url = f"{reverse('folder_delete', args=[docs])}?prefix=docs/"
    assert client.post(url).status_code == 403
    client_for(client, charlie)
    assert client.post(url).status_code == 404
    assert not FolderJob.objects.exists()


def test_only_the_owner_sees_the_job(client, alice, bob, admin_user, docs, second):
    start_copy(client_for(client, alice), docs, second)
    job = the_job()
    urls = [reverse(name, args=[job.id]) for name in ("folder_job", "folder_job_status")]
    for url in urls:
        assert client.get(url).status_code == 200
    client_for(client, bob)
    for url in urls:
        assert client.get(url).status_code == 404
    assert client.post(reverse("folder_job_resume", args=[job.id])).status_code == 404
    client_for(client, admin_user)
    assert client.get(urls[0]).status_code == 200
    assert client.get("/jobs/not-a-uuid/").status_code == 404


def test_job_list_shows_ones_own_jobs(client, alice, bob, docs, second):
    start_copy(client_for(client, alice), docs, second)
    page = client.get(reverse("folder_jobs")).content.decode()
    assert "Copy of team-files/docs/ to archive/backup/" in page
    assert "Copy of" not in client_for(client, bob).get(reverse("folder_jobs")).content.decode()


def test_resume_is_post_only_and_csrf_protected(client, alice, docs, second):
    start_copy(client_for(client, alice), docs, second)
    url = reverse("folder_job_resume", args=[the_job().id])
    assert client.get(url).status_code == 405
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(url).status_code == 403


def test_resume_of_a_job_not_stopped_is_refused(client, alice, docs, second):
    start_copy(client_for(client, alice), docs, second)
    response = client.post(reverse("folder_job_resume", args=[the_job().id]), follow=True)
    assert b"nothing to resume" in response.content


def kill_after(monkeypatch, calls: int, name: str) -> None:
    # The worker's second Ctrl-C raises SystemExit inside the running task: here, just after
    # S3 did the work of the call after the `calls` first ones, before the job could record it.
    real = getattr(s3, name)
    made = {"count": 0}

    def dying(*args, **kwargs):
        made["count"] += 1
        result = real(*args, **kwargs)
        if made["count"] > calls:
            raise SystemExit(1)
        return result

    monkeypatch.setattr(s3, name, dying)


@pytest.fixture
def many(bucket, second, monkeypatch):
    """25 files, walked in pages of 10 (so a kill falls in the middle of the walk)."""
    monkeypatch.setattr(folder_jobs, "PAGE_SIZE", 10)
    names = [f"many/f{i:02}.txt" for i in range(25)]
    for name in names:
        put(bucket, name)
    return names


def start_many(actor_user, *, kind: str, bucket: str, dst_bucket: str = "") -> FolderJob:
    return folder_jobs.folder_job_start(
        actor=Actor(user=actor_user, name=actor_user.username), kind=kind, bucket=bucket,
        prefix="many/", dst_bucket=dst_bucket, dst_prefix="copy/" if dst_bucket else "",
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["copy", "move", "delete"])
def test_a_job_killed_midway_resumes_and_counts_exactly(
    kind, client, alice, bucket, second, many, monkeypatch, run_tasks
):
    job = start_many(alice, kind=kind, bucket=bucket, dst_bucket="" if kind == "delete" else second)
    with monkeypatch.context() as patch:
        # copy: in the second page; delete: the second batch delete (one per page).
        kill_after(
            patch, 1 if kind == "delete" else 13, "delete_many" if kind == "delete" else "copy"
        )
        run_tasks()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.heartbeat_at is None
    assert 0 < job.done < 25 and job.cursor
    status = client_for(client, alice).get(reverse("folder_job_status", args=[job.id])).json()
    assert status["state"] == "interrupted" and status["resumable"]
    assert f"{job.done} of 25" in status["summary"] and job.cursor in status["summary"]
    out = io.StringIO()
    call_command("folder_jobs_resume", stdout=out)  # what `make run` runs every 30 s
    assert out.getvalue() == "1 job resumed.\n"
    run_tasks()
    job.refresh_from_db()
    assert (job.state, job.done, job.failed, job.planned) == (JobState.DONE, 25, 0, 25)
    if kind == "delete":
        assert not any(key.startswith("many/") for key in keys(bucket))
    else:
        assert {key for key in keys(second)} == {f"copy/f{i:02}.txt" for i in range(25)}
    if kind == "move":
        assert not any(key.startswith("many/") for key in keys(bucket))
    # Every object keeps its audit pairs: one per attempt, the killed one's outcome included.
    for action in ("object.copy", "object.delete"):
        for key, rows in pairs_per_key(action).items():
            assert [phase for phase, _ in rows] == ["intent", "outcome"] * (len(rows) // 2), key
            assert len(rows) in (2, 4), key


def test_a_failing_copy_is_reported_with_its_key(
    client, alice, bucket, second, many, monkeypatch, run_tasks
):
    job = start_many(alice, kind="copy", bucket=bucket, dst_bucket=second)
    real = s3.copy

    def refusing(src_bucket, src_key, dst_bucket, dst_key, **kwargs):
        if src_key == "many/f07.txt":
            raise s3.S3Error("S3 refused the request.", status=403, code="AccessDenied")
        return real(src_bucket, src_key, dst_bucket, dst_key, **kwargs)

    monkeypatch.setattr(s3, "copy", refusing)
    run_tasks()
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == (JobState.DONE, 24, 1)
    assert job.failures == [["many/f07.txt", "S3 refused the request."]]
    page = client_for(client, alice).get(reverse("folder_job", args=[job.id])).content.decode()
    assert "Done: 24 of 25 files copied, 1 failed." in page and "many/f07.txt" in page
    assert audit_rows(action="object.copy", key="copy/f07.txt")[-1][2] == "failure"


def test_storage_down_stops_the_job_and_resume_finishes_it(
    client, alice, bucket, second, many, monkeypatch, run_tasks
):
    job = start_many(alice, kind="copy", bucket=bucket, dst_bucket=second)
    with monkeypatch.context() as patch:
        real = s3.list_after
        calls = {"n": 0}

        def failing(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > 1:
                raise s3.S3Error(
                    "The storage is unavailable.", status=503, code="ServiceUnavailable"
                )
            return real(*args, **kwargs)

        patch.setattr(s3, "list_after", failing)
        run_tasks()
    job.refresh_from_db()
    assert (job.state, job.done) == (JobState.STOPPED, 10)
    page = client_for(client, alice).get(reverse("folder_job", args=[job.id])).content.decode()
    assert "Stopped: 10 of 25 files copied, stopped after many/f09.txt" in page
    assert client.post(reverse("folder_job_resume", args=[job.id])).status_code == 302
    run_tasks()
    job.refresh_from_db()
    assert (job.state, job.done, job.attempts) == (JobState.DONE, 25, 2)
