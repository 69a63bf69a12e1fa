from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "S3 Portal administration"
admin.site.site_title = "S3 Portal admin"
admin.site.index_title = "Users, bucket grants and the audit trail"

urlpatterns = [
    path("", include("sharing.urls")),
    # One login page for everybody, so throttling and auditing cover the admin site too.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
]

handler400 = "sharing.views.errors.bad_request"
handler403 = "sharing.views.errors.forbidden"
handler404 = "sharing.views.errors.not_found"
handler500 = "sharing.views.errors.server_error"
