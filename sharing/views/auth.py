"""Login, logout and the favicon."""

from django.contrib.auth import views as auth_views
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from sharing import audit
from sharing.audit import Actor
from sharing.models import Outcome


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    return redirect(static("sharing/img/logo.svg"), permanent=True)


THROTTLED = "Too many failed attempts. Wait a few minutes and try again."


class LoginView(auth_views.LoginView):
    """Django's login, audited; django-axes counts failures per account and per address."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        audit.record(
            actor=Actor.from_request(self.request), action="login", outcome=Outcome.SUCCESS
        )
        return response

    def form_invalid(self, form) -> HttpResponse:
        locked_out = getattr(self.request, "axes_locked_out", False)
        actor = Actor(
            ip=audit.client_ip(self.request),
            name=form.data.get("username", "")[:150],
            user_agent=self.request.headers.get("User-Agent", "")[:300],
        )
        if locked_out:
            # No "wrong password" hint while throttled: it would tell a guess from a lockout.
            form = self.form_class(self.request, initial={"username": actor.name})
            form.errors[NON_FIELD_ERRORS] = form.error_class([THROTTLED])
        audit.record(
            actor=actor,
            action="login",
            outcome=Outcome.DENIED if locked_out else Outcome.FAILURE,
            message=(
                "Too many failed attempts for this account or from this address."
                if locked_out
                else "Wrong username or password."
            ),
        )
        context = self.get_context_data(form=form)
        return self.render_to_response(context, status=429 if locked_out else 400)


def admin_login(request: HttpRequest) -> HttpResponse:
    """Send people to the one login page; a member without admin access gets a page saying so
    (the admin's own redirect back here would loop between the two login pages)."""
    if request.user.is_authenticated and not request.user.is_staff:
        detail = "Your account has no access to the administration site. Ask an administrator."
        context = {"code": 403, "title": "No access", "detail": detail}
        return render(request, "error.html", context, status=403)
    query = request.META.get("QUERY_STRING", "")
    return redirect(f"{reverse('login')}?{query}" if query else reverse("login"))


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None, *args):
    """Answer a login that django-axes refused: the login page the view already rendered."""
    if original_response is not None and original_response.status_code == 429:
        return original_response
    context = {"code": 429, "title": "Too many attempts", "detail": THROTTLED}
    return render(request, "error.html", context, status=429)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit.record(actor=Actor.from_request(request), action="logout", outcome=Outcome.SUCCESS)
    return auth_views.LogoutView.as_view()(request)
