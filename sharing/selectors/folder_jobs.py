"""Reads for the job pages: what a folder job did, in words and numbers, and one's recent jobs."""

from typing import Any

from django.contrib.humanize.templatetags.humanize import intcomma
from django.db.models import QuerySet
from django.utils.translation import ngettext
from django_tasks.exceptions import TaskResultDoesNotExist

from sharing import tasks
from sharing.audit import Actor
from sharing.models import FolderJob, JobKind, JobState
from sharing.services import folder_jobs

RECENT_JOBS = 50
FAILURES_SHOWN = 20
VERBS = {JobKind.COPY: "copied", JobKind.MOVE: "moved", JobKind.DELETE: "deleted"}


def recent_jobs(*, actor: Actor) -> QuerySet[FolderJob]:
    """Return the jobs the actor started, newest first."""
    return FolderJob.objects.filter(user=actor.user)[:RECENT_JOBS]


def job_title(job: FolderJob) -> str:
    """Return what the job does, in a line ("Copy of team-files/docs/ to archive/docs/")."""
    source = f"{job.bucket}/{job.prefix}"
    if job.sources != [job.prefix]:
        count = len(job.sources)
        source = ngettext("%(n)d item of %(s)s", "%(n)d items of %(s)s", count) % {
            "n": count,
            "s": source,
        }
    if job.kind == JobKind.DELETE:
        return f"Delete of {source}"
    return f"{job.get_kind_display()} of {source} to {job.dst_bucket}/{job.dst_prefix}"


def task_state(job: FolderJob) -> str:
    """Return the state of the job's latest task in the task backend ("READY", "RUNNING", ...)."""
    if not job.task_id:
        return ""
    try:
        return str(tasks.folder_job_task.get_result(job.task_id).status)
    except TaskResultDoesNotExist:
        return ""


def job_status(job: FolderJob) -> dict[str, Any]:
    """Return what the progress page shows: state, counts, a sentence, the failures."""
    interrupted = folder_jobs.is_interrupted(job)
    verb = VERBS[JobKind(job.kind)]
    counts = f"{intcomma(job.done)} of {intcomma(job.planned)}"
    files = ngettext("file", "files", job.planned)
    failed = f", {intcomma(job.failed)} failed" if job.failed else ""
    where = f" after {job.cursor}" if job.cursor else ""
    if job.state == JobState.DONE:
        summary = f"Done: {counts} {files} {verb}{failed}."
    elif interrupted:
        summary = (
            f"Interrupted: {counts} {files} {verb}{failed}, stopped{where}. "
            "It resumes by itself within minutes, or resume it now."
        )
    elif job.state == JobState.STOPPED:
        summary = f"Stopped: {counts} {files} {verb}{failed}, stopped{where}: {job.message}"
    elif job.state == JobState.RUNNING:
        summary = f"Running: {counts} {files} {verb}{failed} so far."
    else:
        summary = f"Waiting for the worker: {intcomma(job.planned)} {files} to be {verb}."
    return {
        "id": str(job.id),
        "state": "interrupted" if interrupted else job.state,
        "task": task_state(job),
        "finished": job.state == JobState.DONE,
        "resumable": folder_jobs.can_resume(job),
        "planned": job.planned,
        "done": job.done,
        "failed": job.failed,
        "cursor": job.cursor,
        "summary": summary,
        "failures": [
            {"key": key, "message": message} for key, message in job.failures[:FAILURES_SHOWN]
        ],
    }
