"""Bucket pages: list, create, browse, delete."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sharing import audit, permissions, selectors, services
from sharing.audit import Actor
from sharing.forms import BucketCreateForm, BucketDeleteForm
from sharing.models import Outcome, Role
from sharing.s3 import S3Error
from sharing.services import buckets as bucket_services
from sharing.services import public_access, thumbnails
from sharing.services.errors import ServiceError
from sharing.views import thumbnails as thumbnail_views
from sharing.views import uploads

PUBLIC_FILES_CHOICES = {"allowed": True, "not allowed": False}


@require_GET
@login_required
def bucket_list(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    rows = selectors.bucket_rows(actor=actor)
    usages = selectors.bucket_usages(actor=actor, names=[row.name for row in rows])
    context = {
        "rows": [(row, usages.get(row.name)) for row in rows],
        "can_create": permissions.can_create_bucket(request.user),
        "usage_limit": selectors.BUCKET_USAGE_LIMIT,
    }
    return render(request, "sharing/bucket_list.html", context)


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


def _bucket_settings(*, actor: Actor, bucket: str, role: str, prefix: str) -> dict:
    """Return the bucket-settings part of a folder page: the portal's rule, the storage's block."""
    show_block = role == Role.MANAGE and not prefix  # two storage calls: managers, at the top
    return {
        "public_files": public_access.public_files_allowed(bucket=bucket),
        "provider_block": public_access.provider_block(actor=actor, bucket=bucket)
        if show_block
        else "",
    }


@require_GET
@login_required
def bucket_detail(request: HttpRequest, bucket: str) -> HttpResponse:
    prefix, query, token, sort = (
        request.GET.get(name, "") for name in ("prefix", "q", "token", "sort")
    )
    actor = Actor.from_request(request)
    role, listing = selectors.folder_page(
        actor=actor, bucket=bucket, prefix=prefix, query=query, token=token, sort=sort
    )
    base = {"prefix": prefix, "q": query, "sort": sort if listing.sort != "name" else ""}
    base = {name: value for name, value in base.items() if value or name == "prefix"}
    context = {
        "bucket": bucket, "role": role, "prefix": prefix, "query": query, "token": token,
        "folders": listing.folders, "page": listing,
        "files": thumbnails.listing_thumbnails(bucket=bucket, files=listing.files),
        **thumbnail_views.view_switch(request, query={**base, "token": token}),
        "crumbs": selectors.breadcrumbs(prefix), "is_manager": role == Role.MANAGE,
        **_bucket_settings(actor=actor, bucket=bucket, role=role, prefix=prefix),
        "can_write": permissions.allows(role, permissions.WRITE_ROLE),
        "can_copy": selectors.can_copy_anywhere(actor=actor),
        "can_share": permissions.allows(role, permissions.SHARE_ROLE),
        "first_page_query": urlencode(base),
        "next_page_query": urlencode({**base, "token": listing.next_token}),
        **uploads.panel_context(request, bucket=bucket, prefix=prefix, role=role),
    }  # fmt: skip
    response = render(request, "sharing/bucket_detail.html", context)
    return thumbnail_views.remember_view(request, response)


@require_POST
@login_required
def bucket_public_files(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    permissions.require(actor=actor, bucket=bucket, role=Role.MANAGE, action="bucket.public_files")
    choice = request.POST.get("public_files", "")
    if choice not in PUBLIC_FILES_CHOICES:
        message = "Choose whether public files are allowed in this bucket."
        audit.record(
            actor=actor, action="bucket.public_files", outcome=Outcome.REFUSED, bucket=bucket,
            message=f"public_files: {choice[:40]!r}: {message}",
        )  # fmt: skip
        raise ServiceError(message, status=400)
    allowed = PUBLIC_FILES_CHOICES[choice]
    warnings = bucket_services.bucket_set_public_files(actor=actor, name=bucket, allowed=allowed)
    state = "allowed" if allowed else "not allowed"
    messages.success(request, f"Public files are now {state} in this bucket.")
    for warning in warnings:
        messages.warning(request, warning)
    return redirect("bucket_detail", bucket=bucket)


@require_http_methods(["GET", "POST"])
@login_required
def bucket_delete(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    permissions.require(actor=actor, bucket=bucket, role=Role.MANAGE, action="bucket.delete")
    form = BucketDeleteForm(request.POST if request.method == "POST" else None, bucket=bucket)
    # Asked up front, so a bucket with files gets the type-its-name form at once.
    not_empty = request.method == "GET" and not bucket_services.bucket_is_empty(
        actor=actor, name=bucket
    )
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
    status = 409 if not_empty and form.errors else (400 if form.errors else 200)
    context = {
        "bucket": bucket,
        "form": form,
        "not_empty": not_empty or form.data.get("empty_first"),
    }
    return render(request, "sharing/bucket_delete.html", context, status=status)
