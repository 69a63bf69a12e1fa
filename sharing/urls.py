from django.urls import path
from django.views.generic import RedirectView

from sharing import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="bucket_list"), name="home"),
    path("favicon.ico", views.favicon),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("buckets/", views.bucket_list, name="bucket_list"),
    path("buckets/new/", views.bucket_create, name="bucket_create"),
    path("b/<str:bucket>/", views.bucket_detail, name="bucket_detail"),
    path("b/<str:bucket>/delete/", views.bucket_delete, name="bucket_delete"),
]
