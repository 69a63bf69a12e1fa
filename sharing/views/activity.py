"""My activity: the audit rows a person may see, filtered and paged newest first."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sharing import audit
from sharing.audit import Actor
from sharing.forms import ActivityFilterForm
from sharing.selectors import activity as selectors


@require_GET
@login_required
def activity(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    form = ActivityFilterForm(request.GET)
    page, status = selectors.ActivityPage(rows=[], next_before=None), 400
    if form.is_valid():
        filters = selectors.ActivityFilters(**form.cleaned_data)
        page, status = selectors.activity_page(actor=actor, filters=filters), 200
    else:
        audit.form_refusal(actor=actor, action="activity.view", form=form)
    buckets, actions = selectors.activity_choices(actor=actor)
    context = {
        "form": form, "page": page, "buckets": buckets, "actions": actions,
        "scope": selectors.activity_scope(request.user),
    }  # fmt: skip
    return render(request, "sharing/activity.html", context, status=status)
