"""Abort uploads that were never finished, so no stray parts keep using storage."""

import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import ngettext

from sharing import s3
from sharing.audit import Actor
from sharing.services import upload_cleanup


def storage_unreachable(error: s3.S3Error) -> CommandError:
    """Return the error a command gives when it cannot reach the storage (no traceback)."""
    where = settings.S3_ENDPOINT_URL or "AWS S3"
    hint = "is `make run` running?" if settings.S3_EMBEDDED else error.message
    return CommandError(f"Cannot reach the storage at {where}: {hint}")


class Command(BaseCommand):
    help = (
        "Abort uploads started more than --hours ago (the portal's own, then any other unfinished "
        "multipart upload in the buckets the portal knows) and remove their parts."
    )

    def add_arguments(self, parser) -> None:
        ages = parser.add_mutually_exclusive_group()
        ages.add_argument("--hours", type=int, default=24, help="age in hours (default 24)")
        ages.add_argument(
            "--all",
            action="store_true",
            dest="every_age",
            help="abort every unfinished upload, even those started less than an hour ago "
            "(they may be in progress); asks first",
        )
        parser.add_argument(
            "--yes",
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="do not ask for confirmation",
        )

    def handle(self, *args, hours: int, every_age: bool, interactive: bool, **options) -> None:
        if hours < 1 and not every_age:
            raise CommandError(
                "--hours must be at least 1: younger uploads may still be running "
                "(--all aborts them too, after asking)."
            )
        actor = Actor.system(upload_cleanup.ACTOR_NAME)
        now = timezone.now()
        started_before = None if every_age else now - datetime.timedelta(hours=hours)
        try:
            unfinished = upload_cleanup.uploads_unfinished(
                started_before=started_before, actor=actor
            )
        except s3.S3Error as error:
            raise storage_unreachable(error) from error
        young = unfinished.any_started_after(now - upload_cleanup.IN_PROGRESS_AGE)
        if young and interactive and not self._confirmed(unfinished.count):
            raise CommandError("Cancelled: no upload was aborted.")
        cleaned = upload_cleanup.uploads_abort(unfinished=unfinished, actor=actor)
        portal = ngettext(
            "%d unfinished portal upload", "%d unfinished portal uploads", cleaned.pending_aborted
        )
        others = ngettext(
            "%d other multipart upload", "%d other multipart uploads", cleaned.strays_aborted
        )
        self.stdout.write(
            f"{portal % cleaned.pending_aborted} and {others % cleaned.strays_aborted} aborted."
        )
        for failure in cleaned.failures:
            self.stderr.write(f"Not cleaned: {failure}")
        if cleaned.failures:
            count = len(cleaned.failures)
            failed = ngettext(
                "%d upload could not be cleaned", "%d uploads could not be cleaned", count
            )
            raise CommandError(f"{failed % count}; run it again.")

    def _confirmed(self, count: int) -> bool:
        question = ngettext(
            "Abort %d unfinished upload, started less than an hour ago (it may be in progress)?",
            "Abort %d unfinished uploads, some started less than an hour ago "
            "(they may be in progress)?",
            count,
        )
        question = f"{question % count} [y/N] "
        try:
            answer = input(question)
        except EOFError:  # no terminal to answer from: the safe choice
            answer = ""
        return answer.strip().lower() in ("y", "yes")
