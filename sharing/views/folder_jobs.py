"""Folder jobs: the progress page of a copy, move or delete running as a task, and one's jobs."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from sharing.audit import Actor
from sharing.models import FolderJob, JobKind
from sharing.selectors import folder_jobs as selectors
from sharing.services import folder_jobs as services


def job_url(job: FolderJob) -> str:
    return reverse("folder_job", args=[job.id])


def _job(request: HttpRequest, job_id: uuid.UUID) -> FolderJob:
    return services.folder_job_for(actor=Actor.from_request(request), job_id=job_id)


@require_GET
@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = selectors.recent_jobs(actor=Actor.from_request(request))
    rows = [(job, selectors.job_title(job), selectors.job_status(job)) for job in jobs]
    return render(request, "sharing/folder_jobs.html", {"rows": rows})


@require_GET
@login_required
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job(request, job_id)
    context = {
        "job": job,
        "title": selectors.job_title(job),
        "status": selectors.job_status(job),
        "delete": job.kind == JobKind.DELETE,
    }
    return render(request, "sharing/folder_job.html", context)


@require_GET
@login_required
def job_status(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job(request, job_id)
    return JsonResponse(selectors.job_status(job), headers={"Cache-Control": "no-store"})


@require_POST
@login_required
def job_resume(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job(request, job_id)
    try:
        services.folder_job_resume(actor=Actor.from_request(request), job=job)
    except services.JobError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The job goes on where it stopped.")
    return redirect(job_url(job))


urlpatterns = [
    path("jobs/", job_list, name="folder_jobs"),
    path("jobs/<uuid:job_id>/", job_detail, name="folder_job"),
    path("jobs/<uuid:job_id>/status", job_status, name="folder_job_status"),
    path("jobs/<uuid:job_id>/resume/", job_resume, name="folder_job_resume"),
]
