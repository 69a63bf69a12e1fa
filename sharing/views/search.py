"""Bucket search: the search page, and asking for an update of the bucket's index."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from sharing import audit, permissions
from sharing.audit import Actor
from sharing.forms import SearchForm
from sharing.selectors import search
from sharing.services import search_index


@require_GET
@login_required
def bucket_search(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    form = SearchForm(request.GET)
    filters = search.SearchFilters(**form.cleaned_data) if form.is_valid() else None
    role, results = search.bucket_search(actor=actor, bucket=bucket, filters=filters)
    if filters is None:
        audit.form_refusal(actor=actor, action="object.search", form=form, bucket=bucket)
    context = {
        "bucket": bucket, "role": role, "form": form, "results": results,
        "searched": filters is not None and bool(results.rows or any(request.GET.values())),
        "freshness": search.index_freshness(bucket=bucket),
        "can_index": permissions.allows(role, search_index.INDEX_ROLE),
        "scan_limit": search.SHORT_QUERY_SCAN,
    }  # fmt: skip
    return render(request, "sharing/bucket_search.html", context, status=200 if filters else 400)


@require_POST
@login_required
def bucket_index(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    if search_index.bucket_index_request(actor=actor, bucket=bucket):
        messages.success(request, "The index is being updated; new results appear as it goes.")
    else:
        messages.info(request, "An update of the index is already on its way.")
    back = request.POST.get("back") == "bucket"
    return redirect(reverse("bucket_detail" if back else "bucket_search", args=[bucket]))


urlpatterns = [
    path("b/<bucket:bucket>/search/", bucket_search, name="bucket_search"),
    path("b/<bucket:bucket>/search/index/", bucket_index, name="bucket_index"),
]
