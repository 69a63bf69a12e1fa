from django.contrib import admin
from django.urls import include, path

from sharing.views.auth import admin_login

admin.site.site_header = "S3 Portal administration"
admin.site.site_title = "S3 Portal admin"
admin.site.index_title = "Users, bucket grants and the audit trail"

urlpatterns = [
    path("", include("sharing.urls")),
    # One login page for everybody, so throttling and auditing cover the admin site too.
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
]

handler400 = "sharing.views.errors.bad_request"
handler403 = "sharing.views.errors.forbidden"
handler404 = "sharing.views.errors.not_found"
handler500 = "sharing.views.errors.server_error"
