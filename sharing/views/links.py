"""links (being built)."""

urlpatterns: list = []
