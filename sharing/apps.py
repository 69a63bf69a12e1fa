from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    verbose_name = "S3 Portal"

    def ready(self) -> None:
        from django.urls import register_converter

        from sharing import checks  # noqa: F401  (registers the system checks)
        from sharing.keys import BucketNameConverter

        register_converter(BucketNameConverter, "bucket")  # before any URLconf is read
