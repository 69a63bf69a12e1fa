"""Object pages and actions."""

urlpatterns: list = []
