"""Bucket pages: list, create, browse, delete."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from sharing import audit, permissions, selectors, services
from sharing.audit import Actor
from sharing.forms import BucketCreateForm, BucketDeleteForm
from sharing.models import Role
from sharing.s3 import S3Error
from sharing.views import uploads


@require_GET
@login_required
def bucket_list(request: HttpRequest) -> HttpResponse:
    rows = selectors.bucket_rows(actor=Actor.from_request(request))
    can_create = permissions.can_create_bucket(request.user)
    return render(request, "sharing/bucket_list.html", {"rows": rows, "can_create": can_create})


@require_http_methods(["GET", "POST"])
@login_required
def bucket_create(request: HttpRequest) -> HttpResponse:
    form = BucketCreateForm(request.POST if request.method == "POST" else None)
    status = 400 if form.is_bound and not form.is_valid() else 200
    if status == 400:
        audit.form_refusal(actor=Actor.from_request(request), action="bucket.create", form=form)
    if form.is_bound and form.is_valid():
        try:
            warnings = services.bucket_create(
                actor=Actor.from_request(request), **form.cleaned_data
            )
        except (S3Error, services.BucketError) as error:
            if error.status >= 500:
                raise
            form.add_error("name", error.message)
            status = error.status
        else:
            messages.success(request, f"Bucket “{form.cleaned_data['name']}” created.")
            for warning in warnings:
                messages.warning(request, warning)
            return redirect("bucket_list")
    return render(request, "sharing/bucket_create.html", {"form": form}, status=status)


@require_GET
@login_required
def bucket_detail(request: HttpRequest, bucket: str) -> HttpResponse:
    prefix, query, token = (request.GET.get(name, "") for name in ("prefix", "q", "token"))
    role, listing = selectors.folder_page(
        actor=Actor.from_request(request), bucket=bucket, prefix=prefix, query=query, token=token
    )
    base = {"prefix": prefix, "q": query} if query else {"prefix": prefix}
    context = {
        "bucket": bucket, "role": role, "prefix": prefix, "query": query, "token": token,
        "folders": listing.folders, "files": listing.files, "page": listing,
        "crumbs": selectors.breadcrumbs(prefix), "is_manager": role == Role.MANAGE,
        "can_write": permissions.allows(role, permissions.WRITE_ROLE),
        "first_page_query": urlencode(base),
        "next_page_query": urlencode({**base, "token": listing.next_token}),
        **uploads.panel_context(request, bucket=bucket, prefix=prefix, role=role),
    }  # fmt: skip
    return render(request, "sharing/bucket_detail.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def bucket_delete(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    permissions.require(actor=actor, bucket=bucket, role=Role.MANAGE, action="bucket.delete")
    form = BucketDeleteForm(request.POST if request.method == "POST" else None, bucket=bucket)
    not_empty = False
    if request.method == "POST" and form.is_valid():
        try:
            empty_first = form.cleaned_data["empty_first"]
            deleted = services.bucket_delete(actor=actor, name=bucket, empty_first=empty_first)
        except (S3Error, services.BucketError) as error:
            if error.status >= 500:
                raise
            # Refused by the portal's own check, or by a server that checks too.
            not_empty = isinstance(error, services.BucketNotEmptyError) or (
                isinstance(error, S3Error) and error.code == "BucketNotEmpty"
            )
            form.add_error(None, error.message)
        else:
            files = ngettext("%d file", "%d files", deleted) % deleted
            emptied = f" after deleting {files}" if form.cleaned_data["empty_first"] else ""
            messages.success(request, f"Bucket “{bucket}” deleted{emptied}.")
            return redirect("bucket_list")
    elif request.method == "POST":
        audit.form_refusal(actor=actor, action="bucket.delete", form=form, bucket=bucket)
    status = 409 if not_empty else (400 if form.errors else 200)
    context = {
        "bucket": bucket,
        "form": form,
        "not_empty": not_empty or form.data.get("empty_first"),
    }
    return render(request, "sharing/bucket_delete.html", context, status=status)
