"""File requests in the admin: read-only, with the status of the one rule, and a revoke action."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from sharing.admin import ReadOnlyAdmin
from sharing.audit import Actor
from sharing.models import FileRequest, FileRequestVisit, ReceivedFile, RequestStatus
from sharing.services import file_requests as service


class RequestStatusFilter(admin.SimpleListFilter):
    """Requests by status, as FileRequest.objects.with_status defines it."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return RequestStatus.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


class ReceivedFileInline(admin.TabularInline):
    model = ReceivedFile
    fields = readonly_fields = ("key", "size", "received_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(FileRequest)
class FileRequestAdmin(ReadOnlyAdmin):
    """Every file request, for administrators: look, search, revoke. The token is never stored."""

    list_display = (
        "created_at",
        "creator",
        "title",
        "bucket",
        "prefix",
        "status",
        "files_received",
        "bytes_received",
        "expires_at",
    )
    list_filter = (RequestStatusFilter, "bucket", "created_at", "expires_at")
    search_fields = ("title", "bucket", "prefix", "creator__username")
    list_select_related = ("creator",)
    fields = (
        "id",
        "creator",
        "title",
        "message",
        "bucket",
        "prefix",
        "created_at",
        "expires_at",
        "revoked_at",
        "has_password",
        "max_files",
        "max_bytes",
        "files_received",
        "bytes_received",
        "files_reserved",
        "bytes_reserved",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).with_status(timezone.now())

    @admin.display(description="status", ordering="status")
    def status(self, obj: FileRequest) -> str:
        return obj.status

    @admin.display(description="password", boolean=True)
    def has_password(self, obj: FileRequest) -> bool:
        return bool(obj.password_hash)

    @admin.action(description="Withdraw the selected file requests")
    def revoke(self, request: HttpRequest, queryset) -> None:
        actor = Actor.from_request(request)
        count = sum(service.file_request_revoke(actor=actor, request=fr) for fr in queryset)
        self.message_user(request, f"{count} file requests withdrawn.")


@admin.register(FileRequestVisit)
class FileRequestVisitAdmin(ReadOnlyAdmin):
    """Outsiders' visits of file requests, with the files each stored."""

    list_display = ("started_at", "request", "client_ip", "user_agent", "reported_at")
    list_select_related = ("request",)
    fields = readonly_fields = (
        "request",
        "started_at",
        "last_activity_at",
        "client_ip",
        "user_agent",
        "reported_at",
    )
    inlines = [ReceivedFileInline]
