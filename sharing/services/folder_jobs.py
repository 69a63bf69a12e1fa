"""Folder and selection copy, move and delete as background jobs: start, run, resume.

A job walks the source keys in S3's order, a page at a time. Each page's work is counted in one
row update with the cursor (the last key of the page), so a killed job resumes after the cursor;
`pending` holds the page in flight, so that a resumed move or delete counts the objects the
killed run removed without recording it. Copying again what a killed run copied is harmless:
the destination was checked for clashes when the job started, and the object written there since
is the job's own copy. Folder markers of a move or delete are handled last, what is inside a
folder first (see objects.objects_delete).
"""

import concurrent.futures
import datetime
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import FolderJob, JobKind, JobState, Outcome, Role
from sharing.services import objects
from sharing.services.errors import ServiceError

logger = logging.getLogger(__name__)
PAGE_SIZE = 1000  # keys listed, worked on and recorded per step (S3 lists at most 1000)
THREADS = 10  # copies at once: S3 answers each in milliseconds, the rest is waiting
HEARTBEAT_SECONDS = 10
STALE_AFTER = datetime.timedelta(seconds=90)  # a running job silent this long was killed
MAX_FAILURES = 100  # failures listed on the job; `failed` counts them all


class JobError(ServiceError):
    """A job action that cannot be carried out (not resumable, nothing to do)."""


def _actor_fields(actor: Actor) -> dict[str, Any]:
    return {
        "user": actor.user,
        "actor_name": actor.label[:150],
        "client_ip": actor.ip,
        "user_agent": actor.user_agent[:300],
    }


def _actor(job: FolderJob) -> Actor:
    return Actor(user=job.user, ip=job.client_ip, user_agent=job.user_agent, name=job.actor_name)


def folder_job_start(
    *,
    actor: Actor,
    kind: str,
    bucket: str,
    prefix: str,
    keys: list[str] | None = None,
    dst_bucket: str = "",
    dst_prefix: str = "",
    overwrite: bool = False,
) -> FolderJob:
    """Check a copy, move or delete of a folder (or of `keys` selected in it), queue it as a job.

    The checks are those of the immediate actions: permissions, the destination, and the
    clashes (ObjectExistsError unless `overwrite`)."""
    selection = keys is not None
    # The whole folder is listed here, as the immediate actions did, so that clashes are asked
    # about before anything is done: 100,000 keys are 100 listings, more than a request's S3
    # budget allows, so this runs outside it (each call keeps its timeouts).
    with s3.long_call():
        planned, dst_prefix = _plan(
            actor=actor, kind=kind, bucket=bucket, prefix=prefix, keys=keys,
            dst_bucket=dst_bucket, dst_prefix=dst_prefix, overwrite=overwrite,
        )  # fmt: skip
    if kind == JobKind.DELETE:
        dst_bucket = ""
    if not planned:
        raise ValidationError("There is nothing to delete: the folder is empty.")
    sources = sorted(dict.fromkeys(keys)) if selection else [prefix]
    job = FolderJob.objects.create(
        kind=kind, bucket=bucket, prefix=prefix, sources=sources, dst_bucket=dst_bucket,
        dst_prefix=dst_prefix, overwrite=overwrite, planned=planned, **_actor_fields(actor),
    )  # fmt: skip
    audit.record(
        actor=actor, action=f"{'selection' if selection else 'folder'}.{kind}",
        outcome=Outcome.SUCCESS, bucket=bucket, key=prefix,
        message=f"Job {job.id} queued: {planned} objects.",
    )  # fmt: skip
    transaction.on_commit(lambda: _enqueue(job.id))
    return job


def _plan(
    *,
    actor: Actor,
    kind: str,
    bucket: str,
    prefix: str,
    keys: list[str] | None,
    dst_bucket: str,
    dst_prefix: str,
    overwrite: bool,
) -> tuple[int, str]:
    """Check the job as the immediate action would; return its object count and destination."""
    if kind == JobKind.DELETE:
        if keys is not None:
            plan = objects.selection_delete_plan(
                actor=actor, bucket=bucket, prefix=prefix, keys=keys
            )
        else:
            plan = objects.folder_delete_plan(actor=actor, bucket=bucket, prefix=prefix)
        return len(plan), ""
    common = {"actor": actor, "bucket": bucket, "prefix": prefix, "dst_bucket": dst_bucket,
              "dst_prefix": dst_prefix, "move": kind == JobKind.MOVE, "overwrite": overwrite}  # fmt: skip
    if keys is not None:
        pairs = objects.selection_transfer_plan(keys=keys, **common)
    else:
        pairs = objects.folder_transfer_plan(**common)
    if not pairs:
        raise ValidationError("There is nothing to copy: the folders are empty.")
    # The plan normalised the destination folder: read it back from the first pair.
    first_key, first_dst = pairs[0]
    return len(pairs), first_dst[: len(first_dst) - len(first_key) + len(prefix)]


def _enqueue(job_id) -> None:
    # Imported here: sharing.tasks imports this module for the task's body.
    from sharing import tasks

    result = tasks.folder_job_task.enqueue(job_id=str(job_id))
    FolderJob.objects.filter(pk=job_id).update(task_id=result.id)


def folder_job_for(*, actor: Actor, job_id) -> FolderJob:
    """Return the job if the actor started it (or is a superuser); 404 otherwise."""
    try:
        job = FolderJob.objects.get(pk=job_id)
    except (FolderJob.DoesNotExist, ValidationError):
        raise Http404("No such job.") from None
    user = actor.user
    if user is None or not (user.is_superuser or job.user_id == user.pk):
        raise Http404("No such job.")
    return job


def is_interrupted(job: FolderJob, *, now: datetime.datetime | None = None) -> bool:
    """Return whether a job said to be running has stopped giving signs of life."""
    now = now or timezone.now()
    if job.state != JobState.RUNNING:
        return False
    return job.heartbeat_at is None or job.heartbeat_at < now - STALE_AFTER


def can_resume(job: FolderJob) -> bool:
    """Return whether the job stopped before its end and may be started again."""
    return job.state == JobState.STOPPED or is_interrupted(job)


def folder_job_resume(*, actor: Actor, job: FolderJob) -> None:
    """Queue a stopped or interrupted job again: it goes on after the last recorded page."""
    if not can_resume(job):
        raise JobError("This job is not stopped: there is nothing to resume.", status=409)
    if not _requeue(job):
        raise JobError("This job was resumed meanwhile.", status=409)
    audit.record(
        actor=actor, action=f"job.{job.kind}", outcome=Outcome.SUCCESS, bucket=job.bucket,
        key=job.prefix, message=f"Job {job.id} resumed after {job.done} objects.",
    )  # fmt: skip


def _requeue(job: FolderJob) -> bool:
    stale = timezone.now() - STALE_AFTER
    resumable = Q(state=JobState.STOPPED) | Q(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale), state=JobState.RUNNING
    )
    if not FolderJob.objects.filter(resumable, pk=job.pk).update(state=JobState.QUEUED):
        return False
    transaction.on_commit(lambda: _enqueue(job.id))
    return True


def folder_jobs_resume_interrupted() -> int:
    """Queue again every running job that stopped giving signs of life; return how many."""
    stale = timezone.now() - STALE_AFTER
    interrupted = FolderJob.objects.filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale), state=JobState.RUNNING
    )
    return sum(_requeue(job) for job in interrupted)


def _claim(job_id) -> FolderJob | None:
    # One runner per job: a duplicate task (a resume racing a slow worker) finds nothing to do.
    now = timezone.now()
    claimable = Q(state=JobState.QUEUED) | Q(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - STALE_AFTER),
        state=JobState.RUNNING,
    )
    claimed = FolderJob.objects.filter(claimable, pk=job_id).update(
        state=JobState.RUNNING,
        heartbeat_at=now,
        started_at=Coalesce("started_at", now),
        attempts=F("attempts") + 1,
    )
    return FolderJob.objects.select_related("user").get(pk=job_id) if claimed else None


def folder_job_run(*, job_id: str) -> None:
    """Run a job (the task's body) from where it stopped to its end, recording each page."""
    job = _claim(job_id)
    if job is None:
        return
    actor = _actor(job)
    try:
        _check_access(job, actor)
        if job.pending:
            _settle_pending(job)
        while not job.walked:
            page = list(itertools.islice(_source_items(job, after=job.cursor), PAGE_SIZE))
            if not page:
                _save(job, walked=True)
                break
            _work_page(job, actor, page)
            _check_access(job, actor)
        if job.kind != JobKind.COPY:
            _remove_folder_markers(job, actor)
    except (s3.S3Error, ServiceError) as error:
        _stop(job, error.message)
        return
    except (PermissionDenied, Http404):
        _stop(job, "Access to the bucket was withdrawn while the job ran.")
        return
    except Exception:
        logger.exception("folder job failed job=%s", job.id)
        _stop(job, "The portal failed while running this job.")
        raise
    except BaseException:
        # The worker is stopping (a second Ctrl-C raises SystemExit here): free the job for
        # the next worker at once, after the last recorded page.
        FolderJob.objects.filter(pk=job.pk).update(heartbeat_at=None)
        raise
    _save(job, state=JobState.DONE, finished_at=timezone.now(), message="")


def _check_access(job: FolderJob, actor: Actor) -> None:
    if actor.user is None:
        raise JobError("The person who started this job no longer has an account.")
    if job.kind == JobKind.DELETE:
        permissions.require(actor=actor, bucket=job.bucket, role=Role.WRITE, action="folder.delete")
        return
    source_role = Role.WRITE if job.kind == JobKind.MOVE else Role.READ
    action = f"folder.{job.kind}"
    permissions.require(actor=actor, bucket=job.bucket, role=source_role, action=action)
    permissions.require(actor=actor, bucket=job.dst_bucket, role=Role.WRITE, action=action)


def _save(job: FolderJob, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    fields["heartbeat_at"] = job.heartbeat_at = timezone.now()
    FolderJob.objects.filter(pk=job.pk).update(**fields)


def _stop(job: FolderJob, message: str) -> None:
    _save(job, state=JobState.STOPPED, message=message[:1000], pending=job.pending)


def _source_keys(job: FolderJob, *, after: str) -> Iterator[str]:
    """Yield the keys still to walk after `after`, in S3's order, listing a page at a time."""
    return (item.key for item in _source_items(job, after=after))


def _source_items(job: FolderJob, *, after: str) -> Iterator[s3.ObjectSummary]:
    """Yield the objects still to walk after `after` (keys and sizes), in S3's order."""
    for source in job.sources:
        if not source.endswith("/"):
            if source > after:
                with audit.s3_call(actor=_actor(job), action="object.list", bucket=job.bucket,
                                   key=source):  # fmt: skip
                    found = s3.list_after(job.bucket, prefix=source, size=1)
                if found and found[0].key == source:
                    yield found[0]
            continue
        if after >= source and not after.startswith(source):
            continue  # walked already
        start = after if after.startswith(source) else ""
        while True:
            with audit.s3_call(actor=_actor(job), action="object.list", bucket=job.bucket,
                               key=source):  # fmt: skip
                found = s3.list_after(job.bucket, prefix=source, after=start, size=PAGE_SIZE)
            yield from found
            if len(found) < PAGE_SIZE:
                break
            start = found[-1].key


def _settle_pending(job: FolderJob) -> None:
    """Count what a killed run removed from the page it was working on, without recording it."""
    if job.kind == JobKind.COPY:
        _save(job, pending=[])  # the page is copied again: harmless, and counted once
        return
    pending = job.pending
    if job.walked:
        remaining = set(_remaining_markers(job))
    else:
        last = max(pending)
        remaining = set(
            itertools.takewhile(lambda key: key <= last, _source_keys(job, after=job.cursor))
        )
    removed = [key for key in pending if key not in remaining]
    _save(job, done=job.done + len(removed), pending=[])


def _work_page(job: FolderJob, actor: Actor, items: list[s3.ObjectSummary]) -> None:
    page = [item.key for item in items]
    sizes = {item.key: item.size for item in items}  # a small file is copied in one request
    files = [key for key in page if not key.endswith("/")]
    # A move or delete leaves folder markers to the end; a copy makes them where they fall.
    work = page if job.kind == JobKind.COPY else files
    _save(job, pending=work)
    failures: dict[str, str] = {}
    done = 0
    if job.kind == JobKind.DELETE and work:
        result = objects.objects_delete(actor=actor, bucket=job.bucket, keys=work)
        done, failures = len(result.deleted), _delete_failures(result)
    elif job.kind != JobKind.DELETE:
        failures = _in_threads(job, lambda key: _copy(job, actor, key, sizes[key]), work)
        copied = [key for key in work if key not in failures]
        if job.kind == JobKind.COPY:
            done = len(copied)
        elif copied:
            result = objects.objects_delete(actor=actor, bucket=job.bucket, keys=copied)
            done = len(result.deleted)
            failures.update(_delete_failures(result, after_copy=True))
    _record(job, cursor=page[-1], done=done, failures=failures)


def _copy(job: FolderJob, actor: Actor, key: str, size: int | None = None) -> str | None:
    dst_key = job.dst_prefix + key[len(job.prefix) :]
    try:
        objects._copy_one(
            actor=actor, bucket=job.bucket, key=key, dst_bucket=job.dst_bucket, dst_key=dst_key,
            size=size,
        )  # fmt: skip
    except s3.S3Error as error:
        return error.message
    return None


def _delete_failures(result: s3.DeleteResult, *, after_copy: bool = False) -> dict[str, str]:
    intro = "Copied, but the original could not be deleted" if after_copy else "Not deleted"
    return {key: f"{intro} ({code or 'error'})." for key, code in result.failed.items()}


def _record(job: FolderJob, *, cursor: str, done: int, failures: dict[str, str]) -> None:
    listed = job.failures + [[key, message] for key, message in failures.items()]
    _save(
        job,
        cursor=cursor if cursor is not None else job.cursor,
        done=job.done + done,
        failed=job.failed + len(failures),
        failures=listed[:MAX_FAILURES],
        pending=[],
    )


def _remaining_markers(job: FolderJob) -> list[str]:
    return [key for key in _source_keys(job, after="") if key.endswith("/")]


def _remove_folder_markers(job: FolderJob, actor: Actor) -> None:
    """Delete the folder markers left (a move copies each one first), once what they held is gone."""
    markers = _remaining_markers(job)
    if not markers:
        return
    _save(job, pending=markers)
    failures: dict[str, str] = {}
    if job.kind == JobKind.MOVE:
        failures = _in_threads(job, lambda key: _copy(job, actor, key), markers)
        markers = [key for key in markers if key not in failures]
    done = 0
    if markers:
        result = objects.objects_delete(actor=actor, bucket=job.bucket, keys=markers)
        done = len(result.deleted)
        failures.update(_delete_failures(result, after_copy=job.kind == JobKind.MOVE))
    _record(job, cursor=job.cursor, done=done, failures=failures)


def _in_threads(
    job: FolderJob, work: Callable[[str], str | None], keys: list[str]
) -> dict[str, str]:
    """Run `work` on each key in THREADS threads; return the failures (key: message)."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for key in keys:
        todo.put(key)
    failures: dict[str, str] = {}
    stop = threading.Event()

    def drain() -> None:
        try:
            while not stop.is_set():
                try:
                    key = todo.get_nowait()
                except queue.Empty:
                    return
                message = work(key)
                if message is not None:
                    failures[key] = message
        except BaseException:
            stop.set()
            raise
        finally:
            connections.close_all()  # this thread's own connections

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        running = {pool.submit(drain) for _ in range(min(THREADS, len(keys)))}
        try:
            while running:
                finished, running = concurrent.futures.wait(
                    running, timeout=HEARTBEAT_SECONDS, return_when="FIRST_EXCEPTION"
                )
                for future in finished:
                    future.result()  # a thread's error stops the page here
                if running:
                    _save(job)  # a sign of life during a long page
        finally:
            stop.set()
    return failures
