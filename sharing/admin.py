import csv

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from sharing.models import AuditEvent, BucketGrant

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """Return a value safe for spreadsheets: formula-looking text is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@admin.register(BucketGrant)
class BucketGrantAdmin(admin.ModelAdmin):
    list_display = ("bucket", "user", "group", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("bucket", "user__username", "group__name")
    autocomplete_fields = ("user", "group")


class ValuesFilter(admin.SimpleListFilter):
    """Filter on the distinct values of one column."""

    field = ""

    def lookups(self, request, model_admin):
        values = AuditEvent.objects.exclude(**{self.field: ""}).values_list(self.field, flat=True)
        return [(v, v) for v in values.distinct().order_by(self.field)[:200]]

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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail: read-only for everybody, superusers included."""

    list_display = (
        "created_at",
        "actor_name",
        "action",
        "bucket",
        "key",
        "outcome",
        "error_code",
        "client_ip",
        "duration_ms",
    )
    list_filter = (ActionFilter, "outcome", ActorFilter, BucketFilter, "phase", "created_at")
    search_fields = ("key",)
    date_hierarchy = "created_at"
    actions = ["export_csv"]
    list_per_page = 100
    show_full_result_count = False

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

    @admin.action(description="Export the selected rows as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        columns = [
            "id",
            "created_at",
            "operation",
            "phase",
            "actor_name",
            "action",
            "bucket",
            "key",
            "outcome",
            "error_code",
            "message",
            "request_id",
            "client_ip",
            "user_agent",
            "duration_ms",
            "hash",
        ]
        writer = csv.writer(response)
        writer.writerow(columns)
        for row in queryset.order_by("id"):
            writer.writerow([csv_cell(getattr(row, column)) for column in columns])
        return response
