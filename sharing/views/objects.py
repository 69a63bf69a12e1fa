"""File pages and actions: details, download, copy/move/rename, folders, delete."""

import functools
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sharing import audit, permissions, selectors
from sharing.audit import Actor
from sharing.forms import FolderCreateForm, SelectionTransferForm, TransferForm
from sharing.models import JobKind, Role
from sharing.s3 import S3Error
from sharing.services import archives, folder_jobs, previews
from sharing.services import objects as services
from sharing.views import archives as archive_views
from sharing.views import links
from sharing.views import previews as preview_views
from sharing.views.folder_jobs import job_url

MAX_SELECTION = 10_000


def folder_url(bucket: str, prefix: str = "") -> str:
    url = reverse("bucket_detail", args=[bucket])
    return f"{url}?{urlencode({'prefix': prefix})}" if prefix else url


def object_url(bucket: str, key: str) -> str:
    return f"{reverse('object_detail', args=[bucket])}?{urlencode({'key': key})}"


def download_url(bucket: str, key: str) -> str:
    return f"{reverse('object_download', args=[bucket])}?{urlencode({'key': key})}"


def _param(request: HttpRequest, name: str) -> str:
    value = request.GET.get(name, "")
    if not value:
        raise Http404(f"No {name} given.")
    return value


def _parent(key: str) -> str:
    return key.rstrip("/").rpartition("/")[0] + "/" if "/" in key.rstrip("/") else ""


@require_GET
@login_required
def object_detail(request: HttpRequest, bucket: str) -> HttpResponse:
    key = _param(request, "key")
    actor = Actor.from_request(request)
    role, info = selectors.object_info(actor=actor, bucket=bucket, key=key)
    can_write = permissions.allows(role, permissions.WRITE_ROLE)
    context = {
        "bucket": bucket,
        "info": info,
        "name": services.file_name(key),
        "crumbs": selectors.breadcrumbs(_parent(key)),
        "can_write": can_write,
        "can_copy": can_write or selectors.can_copy_anywhere(actor=actor),
        "folder_prefix": _parent(key),
        **links.object_panel_context(request, bucket=bucket, key=key, role=role),
        "preview": previews.object_preview(actor=actor, bucket=bucket, info=info),
    }
    response = render(request, "sharing/object_detail.html", context)
    return preview_views.with_preview(response, context["preview"])


@require_GET
@login_required
def object_download(request: HttpRequest, bucket: str) -> HttpResponse:
    key = _param(request, "key")
    actor = Actor.from_request(request)
    return redirect(services.object_download_url(actor=actor, bucket=bucket, key=key))


@require_POST
@login_required
def folder_create(request: HttpRequest, bucket: str) -> HttpResponse:
    prefix = request.POST.get("prefix", "")
    form = FolderCreateForm(request.POST, folder_prefix=prefix)
    if not form.is_valid():
        actor = Actor.from_request(request)
        audit.form_refusal(
            actor=actor, action="folder.create", form=form, bucket=bucket, key=prefix
        )
        messages.error(request, " ".join(form.errors["name"]))
        return redirect(folder_url(bucket, prefix))
    try:
        key = services.folder_create(
            actor=Actor.from_request(request),
            bucket=bucket,
            prefix=prefix,
            name=form.cleaned_data["name"],
        )
    except (services.ObjectError, S3Error) as error:
        if error.status >= 500:
            raise
        messages.error(request, error.message)
        return redirect(folder_url(bucket, prefix))
    messages.success(request, f"Folder “{form.cleaned_data['name']}” created.")
    return redirect(folder_url(bucket, key))


@require_POST
@login_required
def objects_delete(request: HttpRequest, bucket: str) -> HttpResponse:
    prefix = request.POST.get("prefix", "")
    keys = list(dict.fromkeys(request.POST.getlist("keys")))[:MAX_SELECTION]
    if not keys:
        messages.error(request, "Select at least one file to delete.")
        return redirect(folder_url(bucket, prefix))
    actor = Actor.from_request(request)
    try:
        if len(keys) == 1 and not keys[0].endswith("/"):  # one file: at once
            result = services.selection_delete(actor=actor, bucket=bucket, prefix=prefix, keys=keys)
        else:
            job = folder_jobs.folder_job_start(
                actor=actor, kind=JobKind.DELETE, bucket=bucket, prefix=prefix, keys=keys
            )
            return redirect(job_url(job))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(folder_url(bucket, prefix))
    _report_delete(request, result)
    return redirect(folder_url(bucket, prefix))


@require_POST
@login_required
def objects_download(request: HttpRequest, bucket: str) -> HttpResponse:
    # Changes nothing: POST only because the folder page's selection form is one POST form.
    actor = Actor.from_request(request)
    prefix = request.POST.get("prefix", "")
    keys = list(dict.fromkeys(request.POST.getlist("keys")))[:MAX_SELECTION]
    if len(keys) == 1 and not keys[0].endswith("/"):
        permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.download")
        return redirect(download_url(bucket, keys[0]))
    try:
        plan = archives.selection_archive(actor=actor, bucket=bucket, prefix=prefix, keys=keys)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(folder_url(bucket, prefix))
    except archives.ArchiveError as error:  # over the caps, or nothing to download
        messages.error(request, error.message)
        return redirect(folder_url(bucket, prefix))
    return archive_views.plan_response(actor, plan)


def _report_delete(request: HttpRequest, result) -> None:
    if result.deleted:
        count = len(result.deleted)
        messages.success(request, ngettext("Deleted %d file.", "Deleted %d files.", count) % count)
    if result.failed:
        sample = ", ".join(list(result.failed)[:5])
        count = len(result.failed)
        refused = ngettext("%d file could not be deleted", "%d files could not be deleted", count)
        messages.error(request, f"{refused % count}: {sample}")


@require_http_methods(["GET", "POST"])
@login_required
def folder_delete(request: HttpRequest, bucket: str) -> HttpResponse:
    prefix = _param(request, "prefix")
    actor = Actor.from_request(request)
    if request.method == "POST":
        try:
            job = folder_jobs.folder_job_start(
                actor=actor, kind=JobKind.DELETE, bucket=bucket, prefix=prefix
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(folder_url(bucket, prefix))
        return redirect(job_url(job))
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action="folder.delete")
    summary = selectors.folder_summary(actor=actor, bucket=bucket, prefix=prefix)
    context = {
        "bucket": bucket,
        "prefix": prefix,
        "summary": summary,
        "crumbs": selectors.breadcrumbs(prefix),
    }
    return render(request, "sharing/folder_delete.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def transfer(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    folder = "prefix" in request.GET
    source = _param(request, "prefix" if folder else "key")
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.copy")
    form = TransferForm(
        request.POST if request.method == "POST" else None,
        initial={"dst_bucket": bucket, "dst_key": source},
        buckets=selectors.writable_buckets(actor=actor),
        folder=folder,
        can_move=permissions.allows(role, permissions.WRITE_ROLE),
    )
    context = {"bucket": bucket, "source": source, "folder": folder}
    run = functools.partial(_run_transfer, request, actor, bucket, source, folder)
    kind = "folder" if folder else "object"
    return _transfer_page(request, actor=actor, form=form, context=context, run=run, kind=kind)


@require_POST
@login_required
def selection_transfer(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.copy")
    prefix, keys = request.POST.get("prefix", ""), request.POST.getlist("keys")
    start = request.POST.get("start")  # from the folder page: show the form, do nothing yet
    if start and not keys:
        messages.error(request, "Select at least one file or folder.")
        return redirect(folder_url(bucket, prefix))
    can_move = permissions.allows(role, permissions.WRITE_ROLE)
    mode = "move" if start == "move" and can_move else "copy"
    form = SelectionTransferForm(
        None if start else request.POST,
        initial={"dst_bucket": bucket, "dst_key": prefix, "mode": mode, "prefix": prefix,
                 "keys": keys},
        buckets=selectors.writable_buckets(actor=actor), can_move=can_move,
    )  # fmt: skip
    names = [key.removeprefix(prefix) for key in keys[:MAX_SELECTION]]
    context = {"bucket": bucket, "source": prefix, "folder": True, "selection": names}
    run = functools.partial(_run_selection, request, actor, bucket)
    return _transfer_page(request, actor=actor, form=form, context=context, run=run, kind="object")


def _transfer_page(request, *, actor, form, context, run, kind: str) -> HttpResponse:
    context = {**context, "form": form, "clashes": []}
    bucket, source = context["bucket"], context["source"]
    if form.is_bound and form.is_valid():
        try:
            return run(form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
            _transfer_refused(actor, bucket, source, kind, form)
        except services.ObjectExistsError as error:
            context["clashes"] = error.keys[:20]
            form.add_error(
                "overwrite",
                ngettext(
                    "%d file already exists there. Tick the box to replace it.",
                    "%d files already exist there. Tick the box to replace them.",
                    len(error.keys),
                )
                % len(error.keys),
            )
        except S3Error as error:
            if error.status >= 500:
                raise
            form.add_error(None, error.message)
    elif form.is_bound:
        _transfer_refused(actor, bucket, source, kind, form)
    status = 400 if form.errors and not context["clashes"] else (409 if context["clashes"] else 200)
    return render(request, "sharing/transfer.html", context, status=status)


def _transfer_refused(
    actor: Actor, bucket: str, source: str, kind: str, form: TransferForm
) -> None:
    # A refused destination never reached a service's audited call: record it here, once.
    mode = "move" if form.data.get("mode") == "move" else "copy"
    audit.form_refusal(actor=actor, action=f"{kind}.{mode}", form=form, bucket=bucket, key=source)


def _run_selection(request, actor, bucket, data) -> HttpResponse:
    job = folder_jobs.folder_job_start(
        actor=actor, kind=data["mode"], bucket=bucket, prefix=data["prefix"], keys=data["keys"],
        dst_bucket=data["dst_bucket"], dst_prefix=data["dst_key"], overwrite=data["overwrite"],
    )  # fmt: skip
    return redirect(job_url(job))


def _run_transfer(request, actor, bucket, source, folder, data) -> HttpResponse:
    move = data["mode"] == "move"
    dst_bucket, dst_key = data["dst_bucket"], data["dst_key"]
    if not folder:
        result = services.object_copy(
            actor=actor, bucket=bucket, key=source, dst_bucket=dst_bucket, dst_key=dst_key,
            move=move, overwrite=data["overwrite"],
        )  # fmt: skip
        messages.success(
            request, f"{'Moved' if result.deleted else 'Copied'} to {dst_bucket}/{dst_key}."
        )
        if result.warning:
            messages.warning(request, result.warning)
        return redirect(object_url(dst_bucket, dst_key))
    job = folder_jobs.folder_job_start(
        actor=actor, kind=data["mode"], bucket=bucket, prefix=source, dst_bucket=dst_bucket,
        dst_prefix=dst_key, overwrite=data["overwrite"],
    )  # fmt: skip
    return redirect(job_url(job))


urlpatterns = [
    path("b/<bucket:bucket>/object/", object_detail, name="object_detail"),
    path("b/<bucket:bucket>/download/", object_download, name="object_download"),
    path("b/<bucket:bucket>/transfer/", transfer, name="object_transfer"),
    path("b/<bucket:bucket>/transfer-selection/", selection_transfer, name="selection_transfer"),
    path("b/<bucket:bucket>/download-selection/", objects_download, name="objects_download"),
    path("b/<bucket:bucket>/delete-files/", objects_delete, name="objects_delete"),
    path("b/<bucket:bucket>/new-folder/", folder_create, name="folder_create"),
    path("b/<bucket:bucket>/delete-folder/", folder_delete, name="folder_delete"),
]
