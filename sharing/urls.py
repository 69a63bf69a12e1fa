from django.urls import path
from django.views.generic import RedirectView

from sharing.views import (
    account,
    activity,
    archives,
    auth,
    buckets,
    file_requests,
    folder_jobs,
    folder_links,
    link_detail,
    links,
    objects,
    search,
    thumbnails,
    uploads,
)

urlpatterns = [
    # First: recipients' links are the most frequent requests, and every pattern tried before
    # the one that matches costs time.
    path("s/<str:token>", links.link_public, name="link_public"),
    path("", RedirectView.as_view(pattern_name="bucket_list"), name="home"),
    path("favicon.ico", auth.favicon),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.logout_view, name="logout"),
    *account.urlpatterns,
    path("buckets/", buckets.bucket_list, name="bucket_list"),
    path("buckets/new/", buckets.bucket_create, name="bucket_create"),
    path("b/<bucket:bucket>/", buckets.bucket_detail, name="bucket_detail"),
    path("b/<bucket:bucket>/delete/", buckets.bucket_delete, name="bucket_delete"),
    path(
        "b/<bucket:bucket>/public-files/",
        buckets.bucket_public_files,
        name="bucket_public_files",
    ),
    path("activity/", activity.activity, name="activity"),
    *objects.urlpatterns,
    *archives.urlpatterns,
    *uploads.urlpatterns,
    *file_requests.urlpatterns,
    *links.urlpatterns,
    *folder_links.urlpatterns,
    *folder_jobs.urlpatterns,
    *link_detail.urlpatterns,
    *thumbnails.urlpatterns,
    *search.urlpatterns,
]
