"""Share links, public access and the recipient page /s/<token>."""

import dataclasses
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sharing import audit, permissions, s3, selectors
from sharing.audit import Actor
from sharing.forms import ExtendForm, LinkCreateForm, LinksEmailForm, PresignForm, PublicForm
from sharing.keys import clean_object_key
from sharing.models import LinkKind, Role
from sharing.selectors import file_requests as file_request_selectors
from sharing.services import link_emails, link_recipients, previews, public_access
from sharing.services import links as services
from sharing.templatetags.dates import when_html
from sharing.views import folder_links  # uses this module's helpers at call time only
from sharing.views import previews as preview_views


def object_page_url(bucket: str, key: str) -> str:
    """Return the page of one file."""
    return f"{reverse('object_detail', args=[bucket])}?{urlencode({'key': key})}"


def object_panel_context(
    request: HttpRequest, *, bucket: str, key: str, role: str, **forms
) -> dict:
    """Return the context of the sharing panel on an object page ({} hides the panel)."""
    actor = Actor.from_request(request)
    try:
        state = public_access.object_public_state(actor=actor, bucket=bucket, key=key)
    except s3.S3Error as error:
        state = public_access.PublicState(
            public=None, url="", explanation=error.message, possible=False
        )
    initial = {"key": key}
    panel = {
        "bucket": bucket,
        "key": key,
        "can_share": permissions.allows(role, permissions.SHARE_ROLE),
        "can_presign": permissions.allows(role, permissions.PRESIGN_ROLE),
        "can_set_public": permissions.allows(role, permissions.PUBLIC_ROLE),
        "state": state,
        "link_form": forms.get("link_form") or LinkCreateForm(initial=initial, prefix="link"),
        "email_form": forms.get("email_form") or LinksEmailForm(initial=initial, prefix="email"),
        "presign_form": forms.get("presign_form") or PresignForm(initial=initial, prefix="raw"),
        "public_form": forms.get("public_form") or PublicForm(initial=initial),
        "links": selectors.links_for_object(actor=actor, bucket=bucket, key=key),
        "temporary_credentials": s3.uses_temporary_credentials(),
        "back": object_page_url(bucket, key),
    }
    return {"sharing_panel": panel}


def _key(value: str) -> str:
    try:
        return clean_object_key(value)
    except ValidationError:
        raise Http404("No file given.") from None


def _panel_page(
    request: HttpRequest, bucket: str, *, status: int = 200, refused: str = "", **forms
) -> HttpResponse:
    """Return the sharing page; `refused` names the action whose form is recorded as refused."""
    form = next(iter(forms.values()), None)
    key = _key(form.data.get(form.add_prefix("key"), "") if form else request.GET.get("key", ""))
    actor = Actor.from_request(request)
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.share")
    if refused:
        audit.form_refusal(actor=actor, action=refused, form=form, bucket=bucket, key=key)
    context = {"bucket": bucket, "key": key, "name": key.rsplit("/", 1)[-1]}
    context.update(object_panel_context(request, bucket=bucket, key=key, role=role, **forms))
    return render(request, "sharing/link_share.html", context, status=status)


@require_GET
@login_required
def object_sharing(request: HttpRequest, bucket: str) -> HttpResponse:
    return _panel_page(request, bucket)


def _refused(
    request: HttpRequest, bucket: str, error: services.LinkError | s3.S3Error, **forms
) -> HttpResponse:
    if isinstance(error, s3.S3Error) and error.status >= 500:
        raise error
    form = next(iter(forms.values()))
    form.add_error(None, error.message)
    return _panel_page(request, bucket, status=error.status, **forms)


@require_POST
@login_required
def link_create(request: HttpRequest, bucket: str) -> HttpResponse:
    form = LinkCreateForm(request.POST, prefix="link")
    if not form.is_valid():
        return _panel_page(request, bucket, status=400, refused="link.create", link_form=form)
    try:
        new = services.link_create(
            actor=Actor.from_request(request),
            bucket=bucket,
            key=form.cleaned_data["key"],
            **form.link_options(),
        )
    except (services.LinkError, s3.S3Error) as error:
        return _refused(request, bucket, error, link_form=form)
    return link_made(request, form, new, back=object_page_url(bucket, new.link.key))


def warn_if_no_notice(request: HttpRequest, form: LinkCreateForm) -> None:
    problem = services.notify_problem(request.user)
    if form.cleaned_data["notify_on_download"] and problem:
        profile = format_html('<a href="{}">Add one in your profile</a>.', reverse("profile"))
        messages.warning(request, format_html("{} {}", problem, profile))


def link_made(request: HttpRequest, form, new: services.NewLink, *, back: str) -> HttpResponse:
    """Answer a link just made: its page, shown once, with the way back to `back`."""
    warn_if_no_notice(request, form)
    return created_page(request, {"new": new, "url": new.url, "back": back})


def links_sent(request: HttpRequest, form, created: list, *, back: str) -> HttpResponse:
    """Answer links just emailed, one to each recipient: say to whom, and go back to `back`."""
    names = ", ".join(new.link.recipient_email for new in created)
    count = len(created)
    sent = ngettext("Sent %d link, to %s.", "Sent %d links, one to each of: %s.", count)
    messages.success(request, sent % (count, names))
    warn_if_no_notice(request, form)
    return redirect(back)


def created_page(request: HttpRequest, context: dict) -> HttpResponse:
    response = render(request, "sharing/link_created.html", context)
    response["Cache-Control"] = "no-store"  # the raw token is on this page, once
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
@login_required
def links_email(request: HttpRequest, bucket: str) -> HttpResponse:
    form = LinksEmailForm(request.POST, prefix="email")
    if not form.is_valid():
        return _panel_page(request, bucket, status=400, refused="link.email", email_form=form)
    data = form.cleaned_data
    try:
        created = link_emails.links_email(
            actor=Actor.from_request(request), bucket=bucket, key=data["key"],
            recipients=data["recipients"], message=data["message"], **form.link_options(),
        )  # fmt: skip
    except (services.LinkError, s3.S3Error) as error:
        return _refused(request, bucket, error, email_form=form)
    return links_sent(request, form, created, back=object_page_url(bucket, data["key"]))


@require_POST
@login_required
def object_public(request: HttpRequest, bucket: str) -> HttpResponse:
    form = PublicForm(request.POST)
    if not form.is_valid():
        action = "object.set_public" if form.data.get("public") == "1" else "object.set_private"
        return _panel_page(request, bucket, status=400, refused=action, public_form=form)
    key, public = form.cleaned_data["key"], form.cleaned_data["public"]
    state = public_access.object_set_public(
        actor=Actor.from_request(request), bucket=bucket, key=key, public=public
    )
    if state.public == public and not state.explanation:
        messages.success(request, f"The file is now {state.label}.")
    else:
        level = messages.WARNING if state.public is None else messages.ERROR
        messages.add_message(request, level, state.explanation or f"The file is {state.label}.")
    return redirect(object_page_url(bucket, key))


@require_POST
@login_required
def object_presign(request: HttpRequest, bucket: str) -> HttpResponse:
    form = PresignForm(request.POST, prefix="raw")
    if not form.is_valid():
        return _panel_page(request, bucket, status=400, refused="object.presign", presign_form=form)
    key = form.cleaned_data["key"]
    try:
        url = services.object_presign(
            actor=Actor.from_request(request),
            bucket=bucket,
            key=key,
            seconds=form.cleaned_data["seconds"],
        )
    except (services.LinkError, s3.S3Error) as error:
        return _refused(request, bucket, error, presign_form=form)
    context = {"url": url, "raw": True, "seconds": form.cleaned_data["seconds"]}
    context.update(back=object_page_url(bucket, key), expires_at=form.cleaned_data["expires_at"])
    context["temporary_credentials"] = s3.uses_temporary_credentials()
    return created_page(request, context)


@require_GET
@login_required
def link_list(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    links = selectors.links_of(actor=actor)
    context = {"links": links, "extend_form": ExtendForm()}
    context["file_requests"] = file_request_selectors.file_requests_of(actor=actor)
    return render(request, "sharing/links.html", context)


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe and target.startswith("/") else reverse("link_list")


@require_POST
@login_required
def link_revoke(request: HttpRequest, link_id: uuid.UUID) -> HttpResponse:
    actor = Actor.from_request(request)
    link = services.link_of(actor=actor, link_id=link_id)
    if services.link_revoke(actor=actor, link=link):
        messages.success(request, f"Link to “{link.file_name}” withdrawn: it no longer works.")
    else:
        messages.info(request, f"The link to “{link.file_name}” was already withdrawn.")
    return redirect(_next(request))


@require_POST
@login_required
def link_extend(request: HttpRequest, link_id: uuid.UUID) -> HttpResponse:
    actor = Actor.from_request(request)
    link = services.link_of(actor=actor, link_id=link_id)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        audit.form_refusal(
            actor=actor, action="link.extend", form=form, bucket=link.bucket, key=link.key
        )
        messages.error(request, " ".join(form.non_field_errors() or ["Choose a new expiry."]))
        return redirect(_next(request))
    try:
        services.link_extend(actor=actor, link=link, expires_at=form.cleaned_data["expires_at"])
    except services.LinkError as error:
        messages.error(request, error.message)
        return redirect(_next(request))
    expires = when_html(link.expires_at)
    messages.success(
        request, format_html("The link to “{}” now expires {}.", link.file_name, expires)
    )
    return redirect(_next(request))


def recipient_response(response: HttpResponse, *, form_target: str = "") -> HttpResponse:
    # The token is in this page's URL: it must not leave in a Referer, nor stay in a cache.
    # "same-origin" (not "no-referrer") so that browsers still send a real Origin with the
    # download form, which Django's CSRF check needs; S3 and other sites get no Referer.
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    if form_target:
        # The download form is answered by a redirect to S3; CSP's form-action covers redirects.
        policy = settings.CONTENT_SECURITY_POLICY.format(s3=form_target)
        policy = policy.replace("form-action 'self'", f"form-action 'self' {form_target}")
        response["Content-Security-Policy"] = policy
    return response


def gone_page(request: HttpRequest, error: Exception, status: int) -> HttpResponse:
    context = {"error": error, "status": status}
    return recipient_response(render(request, "sharing/link_gone.html", context, status=status))


def recipient_page(
    request: HttpRequest, page: services.LinkPage, *, error: str = "", status: int = 200
) -> HttpResponse:
    """Return a single-file link's page: its password form, or the file and its preview."""
    origin = s3.download_origin(page.link.bucket, page.link.key)
    preview = None
    if not page.needs_password:  # every check of the link has passed, the password's too
        preview = previews.link_preview(actor=Actor.from_request(request), page=page)
    refusal = previews.link_refusal(page.link)
    context = {"page": page, "error": error, "preview": preview, "can_preview": not refusal,
               "token": request.resolver_match.kwargs["token"]}  # fmt: skip
    response = render(request, "sharing/link_public.html", context, status=status)
    return preview_views.with_preview(recipient_response(response, form_target=origin), preview)


@require_http_methods(["GET", "POST"])
def link_public(request: HttpRequest, token: str) -> HttpResponse:
    actor = Actor.from_request(request)
    try:
        if request.method == "POST":
            password = request.POST.get("password", "")[:200]
            url = link_recipients.link_download(
                actor=actor, token=token, password=password,
                unlocked=folder_links.unlocked(request, token),
            )  # fmt: skip
            # Not redirect(): that first tries the URL as a view name, which costs a failed reverse().
            return recipient_response(HttpResponseRedirect(url))
        page = link_recipients.link_open(actor=actor, token=token)
        if page.link.kind != LinkKind.FILE:
            return folder_links.recipient_page(request, page, token)
        if page.needs_password and folder_links.unlocked(request, token):
            page = dataclasses.replace(page, needs_password=False)
        return recipient_page(request, page)
    except services.LinkPasswordError as error:
        return recipient_page(request, error.page, error=error.message, status=error.status)
    except services.LinkError as error:
        return gone_page(request, error, error.status)
    except s3.S3Error as error:
        return gone_page(request, error, 503 if error.status >= 500 else error.status)


urlpatterns = [  # link_public (/s/<token>) comes first of all, in sharing/urls.py
    path("links/", link_list, name="link_list"),
    path("links/<uuid:link_id>/revoke/", link_revoke, name="link_revoke"),
    path("links/<uuid:link_id>/extend/", link_extend, name="link_extend"),
    path("b/<bucket:bucket>/share/", object_sharing, name="object_sharing"),
    path("b/<bucket:bucket>/share/link/", link_create, name="link_create"),
    path("b/<bucket:bucket>/share/email/", links_email, name="links_email"),
    path("b/<bucket:bucket>/share/public/", object_public, name="object_public"),
    path("b/<bucket:bucket>/share/presign/", object_presign, name="object_presign"),
]
