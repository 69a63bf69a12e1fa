"""Login, logout and the favicon."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET, require_POST

from sharing import audit
from sharing.audit import Actor
from sharing.models import Outcome


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
