"""One share link seen by its creator: the link, and each recipient of its batch with their state."""

import uuid

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from sharing.audit import Actor
from sharing.forms import ExtendForm
from sharing.services import link_tracking
from sharing.services import links as services


@require_GET
@login_required
def link_detail(request: HttpRequest, link_id: uuid.UUID) -> HttpResponse:
    link = services.link_of(actor=Actor.from_request(request), link_id=link_id)
    context = {
        "link": link,
        "state": link_tracking.recipient_state(link),
        "batch": link_tracking.batch_links(link=link) if link.batch else [],
        "extend_form": ExtendForm(),
    }
    return render(request, "sharing/link_detail.html", context)


urlpatterns = [
    path("links/<uuid:link_id>/", link_detail, name="link_detail"),
]
