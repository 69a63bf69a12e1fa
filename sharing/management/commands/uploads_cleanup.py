"""Abort uploads that were never finished, so no stray parts keep using storage."""

from django.core.management.base import BaseCommand, CommandError

from sharing.services.upload_cleanup import uploads_cleanup


class Command(BaseCommand):
    help = (
        "Abort uploads started more than --hours ago (the portal's own, then any other unfinished "
        "multipart upload in the buckets the portal knows) and remove their parts."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--hours", type=int, default=24, help="age in hours (default 24)")

    def handle(self, *args, hours: int, **options) -> None:
        if hours < 1:
            raise CommandError("--hours must be at least 1: younger uploads may still be running.")
        cleaned = uploads_cleanup(hours=hours)
        self.stdout.write(
            f"{cleaned.pending_aborted} unfinished portal uploads and "
            f"{cleaned.strays_aborted} other multipart uploads aborted."
        )
        for failure in cleaned.failures:
            self.stderr.write(f"Not cleaned: {failure}")
        if cleaned.failures:
            raise CommandError(
                f"{len(cleaned.failures)} uploads could not be cleaned; run it again."
            )
