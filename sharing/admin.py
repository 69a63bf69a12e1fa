import csv

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from sharing import selectors
from sharing.audit import HASHED_FIELDS, Actor
from sharing.models import AuditEvent, BucketGrant, LinkStatus, ShareLink
from sharing.s3 import S3Error
from sharing.services import grants as grant_services
from sharing.services import link_scopes
from sharing.services import links as link_services
from sharing.templatetags.dates import when_full, when_html
from sharing.templatetags.keys import breakable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FILTER_SAMPLE_ROWS = 10_000
FILTER_CHOICES = 200
COUNT_LIMIT = 10_000  # the audit changelist counts its rows up to here, not all million of them


def csv_cell(value: object) -> str:
    """Return a value safe for spreadsheets: formula-looking text is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that people may look at but never add, change or delete here, superusers included."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# Grants: every change goes through the grant services, which record it.


@admin.register(BucketGrant)
class BucketGrantAdmin(admin.ModelAdmin):
    """Grants change only through the grant services, which record each change."""

    list_display = ("bucket", "user", "group", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("bucket", "user__username", "group__name")
    autocomplete_fields = ("user", "group")
    # Declared, so that the admin builds the form (and lists the buckets) once per page.
    fields = ("user", "group", "bucket", "role")

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name != "bucket":
            return super().formfield_for_dbfield(db_field, request, **kwargs)
        # Only a new grant asks (its bucket is read-only afterwards): a grant whose bucket
        # vanished stays editable, and its page never waits for the storage.
        try:
            rows = selectors.bucket_rows(actor=Actor.from_request(request))
        except S3Error as error:
            message = f"The buckets cannot be listed right now ({error.message}); try again later."
            return forms.ChoiceField(
                label="Bucket",
                choices=[("", "— storage unavailable —")],
                help_text=message,
                error_messages={"required": message, "invalid_choice": message},
            )
        return forms.ChoiceField(
            label="Bucket",
            choices=[("", "---------"), *((row.name, row.name) for row in rows)],
            help_text="One of the buckets in the storage.",
        )

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # Holder and bucket are what a grant is: to move one, delete it and add another.
        return ("user", "group", "bucket") if obj else ()

    def save_model(self, request: HttpRequest, obj: BucketGrant, form, change: bool) -> None:
        grant = grant_services.grant_set(
            actor=Actor.from_request(request),
            bucket=obj.bucket,
            role=obj.role,
            user=obj.user,
            group=obj.group,
        )
        obj.pk, obj.created_at = grant.pk, grant.created_at

    def delete_model(self, request: HttpRequest, obj: BucketGrant) -> None:
        grant_services.grant_delete(actor=Actor.from_request(request), grant=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        actor = Actor.from_request(request)
        with transaction.atomic():
            for grant in queryset.select_related("user", "group"):
                grant_services.grant_delete(actor=actor, grant=grant)


class ValuesFilter(admin.SimpleListFilter):
    """Filter on one column; offers the values seen in the newest rows (any value works in the URL)."""

    field = ""

    def lookups(self, request, model_admin):
        # The distinct values of a million rows cost a scan of them all on every page: the
        # newest rows name the actors, buckets and actions people are looking for.
        # A range of ids, not `IN (the newest N)`: PostgreSQL reads that subquery's table whole.
        newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        values = AuditEvent.objects.filter(pk__gt=newest - FILTER_SAMPLE_ROWS)
        values = values.exclude(**{self.field: ""})
        values = values.order_by(self.field).values_list(self.field, flat=True).distinct()
        names = set(values[:FILTER_CHOICES])
        if self.value():
            names.add(self.value())
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class ActorFilter(ValuesFilter):
    title = parameter_name = "actor"
    field = "actor_name"


class BucketFilter(ValuesFilter):
    title = parameter_name = "bucket"
    field = "bucket"


class ActionFilter(ValuesFilter):
    title = parameter_name = "action"
    field = "action"


class CappedCountPaginator(Paginator):
    """Counts rows up to COUNT_LIMIT: pages past it are not offered, and no count reads them all."""

    @cached_property
    def _counted(self) -> int:
        return self.object_list[: COUNT_LIMIT + 1].count()

    @property
    def count(self) -> int:
        return min(self._counted, COUNT_LIMIT)

    @property
    def capped(self) -> bool:
        return self._counted > COUNT_LIMIT


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail: read-only for everybody, superusers included."""

    # Five compact columns, so that a laptop-wide window shows them all beside the filters.
    list_display = ("when", "who", "action", "subject", "result")
    list_filter = (ActionFilter, "outcome", ActorFilter, BucketFilter, "phase", "created_at")
    search_fields = ("key",)
    actions = ["export_csv"]
    list_per_page = 100
    show_full_result_count = False
    paginator = CappedCountPaginator

    readonly_fields = ("moment",)

    def get_fields(self, request: HttpRequest, obj=None):
        # A row's page gives its moment to the second, with the zone, where "created at" was.
        fields = super().get_fields(request, obj)
        return ["moment", *(name for name in fields if name not in ("created_at", "moment"))]

    @admin.display(description="time", ordering="created_at")
    def when(self, obj: AuditEvent) -> str:
        return when_html(obj.created_at)

    @admin.display(description="created at")
    def moment(self, obj: AuditEvent) -> str:
        return when_full(obj.created_at)

    @admin.display(description="who", ordering="actor_name")
    def who(self, obj: AuditEvent) -> str:
        return format_html("{}<small>{}</small>", obj.actor_name or "–", obj.client_ip or "")

    @admin.display(description="bucket / key", ordering="bucket")
    def subject(self, obj: AuditEvent) -> str:
        if not obj.bucket:
            return breakable(obj.key)
        return format_html(
            '<span class="audit-bucket">{}</span> {}', obj.bucket, breakable(obj.key)
        )

    @admin.display(description="outcome", ordering="outcome")
    def result(self, obj: AuditEvent) -> str:
        details = [obj.error_code, f"{obj.duration_ms} ms" if obj.duration_ms is not None else ""]
        return format_html("{}<small>{}</small>", obj.outcome, " · ".join(filter(None, details)))

    @admin.action(description="Export the selected rows as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        # Every hashed field plus both hashes, so an export can be checked against the chain.
        columns = ["id", *HASHED_FIELDS, "prev_hash", "hash"]
        writer = csv.writer(response)
        writer.writerow(columns)
        for row in queryset.order_by("id"):
            writer.writerow([csv_cell(getattr(row, column)) for column in columns])
        return response


# Share links: look, search, revoke.


class LinkStatusFilter(admin.SimpleListFilter):
    """Links by status, as ShareLink.objects.with_status defines it."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return LinkStatus.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(ShareLink)
class ShareLinkAdmin(ReadOnlyAdmin):
    """Every share link, for administrators: look, search, revoke. The token is never stored."""

    list_display = (
        "created_at",
        "creator",
        "bucket",
        "shares",
        "key",
        "recipient_email",
        "status",
        "downloads",
        "max_downloads",
        "opens",
        "first_downloaded_at",
        "expires_at",
    )
    list_filter = (LinkStatusFilter, "kind", "bucket", "created_at", "expires_at")
    search_fields = ("bucket", "key", "recipient_email", "creator__username")
    list_select_related = ("creator",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "creator",
        "bucket",
        "kind",
        "key",
        "keys",
        "recipient_email",
        "created_at",
        "expires_at",
        "max_downloads",
        "downloads",
        "has_password",
        "revoked_at",
        "notify_on_download",
        "notified_at",
        "last_opened_at",
        "batch",
        "opens",
        "first_opened_at",
        "first_downloaded_at",
        "last_downloaded_at",
        "remind_before_expiry",
        "reminded_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).with_status(timezone.now())

    @admin.display(description="status", ordering="status")
    def status(self, obj: ShareLink) -> str:
        return obj.status

    @admin.display(description="shares", ordering="kind")
    def shares(self, obj: ShareLink) -> str:
        return link_scopes.link_label(obj)

    @admin.display(boolean=True, description="password")
    def has_password(self, obj: ShareLink) -> bool:
        return bool(obj.password_hash)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    @admin.action(description="Revoke the selected links", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset) -> None:
        actor = Actor.from_request(request)
        revoked = sum(link_services.link_revoke(actor=actor, link=link) for link in queryset)
        self.message_user(request, f"{revoked} links revoked.")


# Users and groups: membership, active state, and the grants and memberships a deletion would
# cascade to, change only through the grant services, which record each change.

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Django's user admin, with groups, is_active and deletions going through the grant services."""

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        active = obj.is_active
        if change:
            # The rest of the form is saved over the stored is_active; user_set_active changes it.
            stored = User.objects.select_for_update().values_list("is_active", flat=True)
            obj.is_active = stored.get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        if change:
            actor = Actor.from_request(request)
            grant_services.user_set_active(actor=actor, user=obj, active=active)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # Taken out of what the form saves itself: user_groups_set records each group.
        groups = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if groups is not None:
            actor = Actor.from_request(request)
            grant_services.user_groups_set(actor=actor, user=form.instance, groups=groups)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        grant_services.holder_access_remove(actor=Actor.from_request(request), user=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        actor = Actor.from_request(request)
        with transaction.atomic():
            for user in queryset:
                grant_services.holder_access_remove(actor=actor, user=user)
            super().delete_queryset(request, queryset)


@admin.register(Group)
class PortalGroupAdmin(GroupAdmin):
    """Django's group admin; its form holds only name and permissions, so only deletion is routed."""

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        grant_services.holder_access_remove(actor=Actor.from_request(request), group=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        actor = Actor.from_request(request)
        with transaction.atomic():
            for group in queryset:
                grant_services.holder_access_remove(actor=actor, group=group)
            super().delete_queryset(request, queryset)


from sharing import admin_file_requests  # noqa: E402, F401 (registers the file request admins)
