from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sharing import audit, permissions, selectors, services
from sharing.audit import Actor
from sharing.forms import BucketCreateForm, BucketDeleteForm
from sharing.models import Outcome, Role
from sharing.s3 import S3Error


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    return redirect(static("sharing/img/logo.svg"), permanent=True)


def _failures_key(request: HttpRequest) -> str:
    return f"login-failures:{audit.client_ip(request)}"


class LoginView(auth_views.LoginView):
    """Django's login, throttled per address and audited."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if cache.get(_failures_key(request), 0) >= settings.LOGIN_FAILURE_LIMIT:
            audit.record(
                actor=Actor.from_request(request),
                action="login",
                outcome=Outcome.DENIED,
                message="Too many failed attempts from this address.",
            )
            form = self.get_form()
            form.add_error(None, "Too many failed attempts. Wait a few minutes and try again.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        cache.delete(_failures_key(self.request))
        audit.record(
            actor=Actor.from_request(self.request), action="login", outcome=Outcome.SUCCESS
        )
        return response

    def form_invalid(self, form) -> HttpResponse:
        key = _failures_key(self.request)
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        cache.incr(key)
        username = form.data.get("username", "")[:150]
        audit.record(
            actor=Actor(
                ip=audit.client_ip(self.request),
                name=username,
                user_agent=self.request.headers.get("User-Agent", "")[:300],
            ),
            action="login",
            outcome=Outcome.FAILURE,
            message="Wrong username or password.",
        )
        return self.render_to_response(self.get_context_data(form=form), status=400)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit.record(actor=Actor.from_request(request), action="logout", outcome=Outcome.SUCCESS)
    return auth_views.LogoutView.as_view()(request)


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
    if form.is_bound and form.is_valid():
        try:
            warnings = services.bucket_create(
                actor=Actor.from_request(request), **form.cleaned_data
            )
        except S3Error as error:
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
    prefix = request.GET.get("prefix", "")
    token = request.GET.get("token", "")
    role, page = selectors.folder_page(
        actor=Actor.from_request(request), bucket=bucket, prefix=prefix, token=token
    )
    context = {
        "bucket": bucket,
        "role": role,
        "page": page,
        "prefix": prefix,
        "prefix_slice": f"{len(prefix)}:",
        "is_manager": role == Role.MANAGE,
    }
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
        except S3Error as error:
            if error.status >= 500:
                raise
            not_empty = error.code == "BucketNotEmpty"
            form.add_error(None, error.message)
        else:
            emptied = f" after deleting {deleted} files" if form.cleaned_data["empty_first"] else ""
            messages.success(request, f"Bucket “{bucket}” deleted{emptied}.")
            return redirect("bucket_list")
    status = 409 if not_empty else (400 if form.errors else 200)
    context = {
        "bucket": bucket,
        "form": form,
        "not_empty": not_empty or form.data.get("empty_first"),
    }
    return render(request, "sharing/bucket_delete.html", context, status=status)


def _error_page(request: HttpRequest, status: int, title: str, detail: str) -> HttpResponse:
    context = {"code": status, "title": title, "detail": detail}
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, 400, "Bad request", "The request was not understood.")


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, 403, "Not allowed", str(exception) or "You may not do this.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    detail = "The form had expired or came from elsewhere. Go back, reload the page and try again."
    return _error_page(request, 403, "Form expired", detail)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    detail = "There is nothing here, or you have no access to it."
    return _error_page(request, 404, "Not found", detail)


def server_error(request: HttpRequest) -> HttpResponse:
    detail = "Something went wrong on our side. The problem was logged; try again shortly."
    return _error_page(request, 500, "Server error", detail)
