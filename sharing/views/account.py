"""One's own account: the profile page, password change, and password reset by email.

The password pages are Django's own views with the portal's templates, each change audited.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from sharing import audit, permissions
from sharing.audit import Actor
from sharing.forms import ProfileForm
from sharing.models import Outcome
from sharing.services import accounts


@require_http_methods(["GET", "POST"])
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "GET":
        initial = {name: getattr(user, name) for name in accounts.PROFILE_FIELDS}
        return _profile_page(request, ProfileForm(initial=initial, user=user))
    form = ProfileForm(request.POST, user=user)
    actor = Actor.from_request(request)
    if not form.is_valid():
        audit.form_refusal(actor=actor, action="account.profile", form=form)
        return _profile_page(request, form, status=400)
    fields = {name: form.cleaned_data[name] for name in accounts.PROFILE_FIELDS}
    changed = accounts.profile_update(actor=actor, **fields)
    messages.success(request, "Profile saved." if changed else "Nothing to change.")
    return redirect("profile")


def _profile_page(request: HttpRequest, form: ProfileForm, *, status: int = 200) -> HttpResponse:
    user = request.user
    roles = permissions.visible_roles(user)
    context = {
        "form": form,
        "sees_every_bucket": roles is None,
        "roles": sorted(roles.items()) if roles else [],
        "can_create_bucket": permissions.can_create_bucket(user),
        "groups": sorted(user.groups.values_list("name", flat=True)),
    }
    return render(request, "sharing/profile.html", context, status=status)


class AuditedFormView:
    """One of Django's account form views, each outcome audited under `audit_action`."""

    audit_action: str
    http_method_names = ["get", "head", "post"]  # Django's form views also take PUT as a POST

    def _actor(self) -> Actor:
        return Actor.from_request(self.request)

    def _audit(self, outcome: str, message: str) -> None:
        audit.record(
            actor=self._actor(), action=self.audit_action, outcome=outcome, message=message
        )

    def form_invalid(self, form) -> HttpResponse:
        audit.form_refusal(actor=self._actor(), action=self.audit_action, form=form)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class PasswordChangeView(AuditedFormView, auth_views.PasswordChangeView):
    """Django's password change (old password asked, other sessions signed out), audited."""

    audit_action = "password.change"

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        self._audit(Outcome.SUCCESS, "Password changed; other sessions signed out.")
        return response


class PasswordResetView(AuditedFormView, auth_views.PasswordResetView):
    """Django's reset by email: the same answer whether or not the address has an account.

    Only active accounts with a usable password get a link, which is built from SITE_URL (never
    from the request's Host header) and stops working once the password changes."""

    email_template_name = "registration/password_reset_email.txt"
    audit_action = "password.reset_request"

    def form_valid(self, form) -> HttpResponse:
        email = form.cleaned_data["email"]
        accounts_found = len(list(form.get_users(email)))
        self.extra_email_context = {
            "site_url": settings.SITE_URL,
            "valid_hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
        }
        response = super().form_valid(form)
        self._audit(
            Outcome.SUCCESS, f"Reset asked for “{email}”: {accounts_found} account(s) emailed."
        )
        return response


class PasswordResetConfirmView(AuditedFormView, auth_views.PasswordResetConfirmView):
    """Django's new-password page behind the emailed link (the token leaves the URL at once)."""

    audit_action = "password.reset"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().dispatch(request, *args, **kwargs)
        # A good token is first moved into the session by a redirect, with validlink still False.
        if not self.validlink and not isinstance(response, HttpResponseRedirect):
            self._audit(Outcome.DENIED, "The reset link is invalid, already used or expired.")
        return response

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        self._audit(Outcome.SUCCESS, "Password set through an emailed reset link.")
        return response

    def _actor(self) -> Actor:
        anonymous = Actor.from_request(self.request)
        if self.user is None:
            return anonymous
        return Actor(
            user=self.user,
            ip=anonymous.ip,
            user_agent=anonymous.user_agent,
            name=self.user.get_username(),
        )


urlpatterns = [
    path("account/", profile, name="profile"),
    path("account/password/", PasswordChangeView.as_view(), name="password_change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("account/reset/", PasswordResetView.as_view(), name="password_reset"),
    path(
        "account/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    # The token comes first: sharing/logs.py redacts the segment after "account/reset/link/".
    path(
        "account/reset/link/<token>/<uidb64>/",
        PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
