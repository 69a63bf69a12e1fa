"""Share links to a folder or to files chosen in one: the create page and the recipient pages.

Creating goes through the same services as single-file links (links.link_create,
link_emails.links_email); what a recipient may reach is link_scopes' rule, asked by the services.
"""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from sharing import audit, permissions, s3, selectors
from sharing.audit import Actor
from sharing.forms import ManyLinkForm, ManyLinksEmailForm
from sharing.models import LinkKind
from sharing.services import archives, link_emails, link_listings, link_recipients, link_scopes
from sharing.services import links as services
from sharing.views import archives as archive_views
from sharing.views import links as link_views

PREVIEW_ENTRIES = 50  # names shown on the create page of a folder link


def folder_url(bucket: str, prefix: str) -> str:
    """Return the folder page of a prefix ("" the bucket's top)."""
    query = f"?{urlencode({'prefix': prefix})}" if prefix else ""
    return reverse("bucket_detail", args=[bucket]) + query


def _target(request: HttpRequest) -> tuple[str, str, list[str]]:
    """Return (kind, key, keys) asked by the folder page: a folder (GET), or the rows chosen in
    it (the selection toolbar's POST)."""
    if request.method == "GET":
        return LinkKind.FOLDER, request.GET.get("prefix", ""), []
    chosen = list(dict.fromkeys(request.POST.getlist("keys")))
    return LinkKind.SELECTION, request.POST.get("prefix", ""), chosen


def _share_page(
    request: HttpRequest, bucket: str, *, status: int = 200, refused: str = "", **forms
) -> HttpResponse:
    actor = Actor.from_request(request)
    permissions.require(
        actor=actor, bucket=bucket, role=permissions.SHARE_ROLE, action="link.share_page"
    )
    form = next(iter(forms.values()), None)
    kind, key, chosen = _form_target(form) if form else _target(request)
    if refused:
        audit.form_refusal(actor=actor, action=refused, form=form, bucket=bucket, key=key)
    preview = []
    if kind == LinkKind.FOLDER:
        _, listing = selectors.folder_page(actor=actor, bucket=bucket, prefix=key)
        preview = [folder["name"] + "/" for folder in listing.folders]
        preview += [file["name"] for file in listing.files]
    initial = {"kind": kind, "key": key, "keys": chosen}
    context = {
        "bucket": bucket, "kind": kind, "key": key, "chosen": [k[len(key) :] for k in chosen],
        "preview": preview[:PREVIEW_ENTRIES], "more": len(preview) > PREVIEW_ENTRIES,
        "name": key.rstrip("/").rsplit("/", 1)[-1] or bucket, "back": folder_url(bucket, key),
        "crumbs": selectors.breadcrumbs(key),
        "link_form": forms.get("link_form") or ManyLinkForm(initial=initial, prefix="link"),
        "email_form": forms.get("email_form") or ManyLinksEmailForm(initial=initial, prefix="email"),
    }  # fmt: skip
    return render(request, "sharing/link_share_many.html", context, status=status)


def _form_target(form) -> tuple[str, str, list[str]]:
    data, name = form.data, form.add_prefix
    return data.get(name("kind"), ""), data.get(name("key"), ""), data.getlist(name("keys"))


@require_http_methods(["GET", "POST"])  # POST: the selection toolbar's form; nothing changes
@login_required
def folder_share(request: HttpRequest, bucket: str) -> HttpResponse:
    return _share_page(request, bucket)


def _refused(request, bucket, error, **forms) -> HttpResponse:
    if isinstance(error, s3.S3Error) and error.status >= 500:
        raise error
    next(iter(forms.values())).add_error(None, error.message)
    return _share_page(request, bucket, status=error.status, **forms)


@require_POST
@login_required
def folder_link_create(request: HttpRequest, bucket: str) -> HttpResponse:
    form = ManyLinkForm(request.POST, prefix="link")
    if not form.is_valid():
        return _share_page(request, bucket, status=400, refused="link.create", link_form=form)
    try:
        new = services.link_create(
            actor=Actor.from_request(request),
            bucket=bucket,
            key=form.cleaned_data["key"],
            **form.link_options(),
        )
    except (services.LinkError, s3.S3Error) as error:
        return _refused(request, bucket, error, link_form=form)
    return link_views.link_made(request, form, new, back=folder_url(bucket, new.link.key))


@require_POST
@login_required
def folder_links_email(request: HttpRequest, bucket: str) -> HttpResponse:
    form = ManyLinksEmailForm(request.POST, prefix="email")
    if not form.is_valid():
        return _share_page(request, bucket, status=400, refused="link.email", email_form=form)
    data = form.cleaned_data
    try:
        created = link_emails.links_email(
            actor=Actor.from_request(request), bucket=bucket, key=data["key"],
            recipients=data["recipients"], message=data["message"], **form.link_options(),
        )  # fmt: skip
    except (services.LinkError, s3.S3Error) as error:
        return _refused(request, bucket, error, email_form=form)
    return link_views.links_sent(request, form, created, back=folder_url(bucket, data["key"]))


# The recipient's side: /s/<token> (link_views.link_public) hands folder and selection links here.


def _unlocked_key(token: str) -> str:
    return f"link-unlocked:{services.token_hash(token)}"


def unlocked(request: HttpRequest, token: str) -> bool:
    """Return whether this browser gave the link's password (link_unlock) in its session."""
    return bool(request.session.get(_unlocked_key(token)))


def _many_page(
    request: HttpRequest, page: services.LinkPage, listing=None, *, error="", status=200
) -> HttpResponse:
    link = page.link
    context = {
        "page": page, "listing": listing, "error": error, "what": link_scopes.link_what(link),
        "token": request.resolver_match.kwargs["token"],
    }  # fmt: skip
    response = render(request, "sharing/link_public_many.html", context, status=status)
    origin = s3.download_origin(link.bucket, link.key)
    return link_views.recipient_response(response, form_target=origin)


def recipient_page(request: HttpRequest, page: services.LinkPage, token: str) -> HttpResponse:
    """Return the page of a folder or selection link (its password form until it is given)."""
    if page.needs_password and not request.session.get(_unlocked_key(token)):
        return _many_page(request, page)
    listing = link_listings.link_listing(
        actor=Actor.from_request(request),
        link=page.link,
        path=request.GET.get("path", "")[:1024],
        token=request.GET.get("token", "")[:1024],
    )
    return _many_page(request, page, listing)


def _recipient_call(request: HttpRequest, token: str, call) -> HttpResponse:
    """Run a recipient's POST; refusals get the same pages as /s/<token>."""
    try:
        return call(Actor.from_request(request))
    except services.LinkPasswordError as error:
        if error.page.link.kind == LinkKind.FILE:  # unlocked to see a single file's preview
            page = link_views.recipient_page
            return page(request, error.page, error=error.message, status=error.status)
        return _many_page(request, error.page, error=error.message, status=error.status)
    except (services.LinkError, archives.ArchiveError) as error:
        return link_views.gone_page(request, error, error.status)
    except s3.S3Error as error:
        return link_views.gone_page(request, error, 503 if error.status >= 500 else error.status)


@require_POST
def link_unlock(request: HttpRequest, token: str) -> HttpResponse:
    def unlock(actor: Actor) -> HttpResponse:
        link_recipients.link_checked(
            actor=actor, token=token, action="link.password",
            password=request.POST.get("password", "")[:200],
        )  # fmt: skip
        request.session.cycle_key()  # a new session id once the password is known
        request.session[_unlocked_key(token)] = True
        return link_views.recipient_response(HttpResponseRedirect(services.link_url(token)))

    return _recipient_call(request, token, unlock)


@require_POST
def link_file(request: HttpRequest, token: str) -> HttpResponse:
    def download(actor: Actor) -> HttpResponse:
        url = link_recipients.link_download(
            actor=actor, token=token, relative=request.POST.get("name", "")[:1024],
            unlocked=unlocked(request, token),
        )  # fmt: skip
        return link_views.recipient_response(HttpResponseRedirect(url))

    return _recipient_call(request, token, download)


@require_POST
def link_all(request: HttpRequest, token: str) -> HttpResponse:
    def download(actor: Actor) -> HttpResponse:
        actor, plan = link_listings.link_archive(
            actor=actor, token=token, path=request.POST.get("path", "")[:1024],
            unlocked=unlocked(request, token),
        )  # fmt: skip
        return link_views.recipient_response(archive_views.plan_response(actor, plan))

    return _recipient_call(request, token, download)


urlpatterns = [
    path("s/<str:token>/all", link_all, name="link_all"),
    path("s/<str:token>/unlock", link_unlock, name="link_unlock"),
    path("s/<str:token>/file", link_file, name="link_file"),
    path("b/<bucket:bucket>/share-many/", folder_share, name="folder_share"),
    path("b/<bucket:bucket>/share-many/link/", folder_link_create, name="folder_link_create"),
    path("b/<bucket:bucket>/share-many/email/", folder_links_email, name="folder_links_email"),
]
