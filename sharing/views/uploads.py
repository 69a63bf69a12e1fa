"""uploads (being built)."""

urlpatterns: list = []
