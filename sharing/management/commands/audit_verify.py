"""Check the audit trail: every row's MAC, the sealed chain, and rows left unsealed too long."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from sharing import audit


class Command(BaseCommand):
    help = (
        "Verify that no audit row was edited, forged, copied, deleted or reordered; exit 1 if so."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--unsealed-minutes",
            type=int,
            default=int(audit.UNSEALED_LIMIT.total_seconds() // 60),
            help="Report rows left unsealed for longer than this (default: %(default)s).",
        )

    def handle(self, *args, unsealed_minutes: int, **options) -> None:
        if unsealed_minutes < 0:
            raise CommandError("--unsealed-minutes takes a number of minutes, 0 or more.")
        limit = datetime.timedelta(minutes=unsealed_minutes)
        problems = audit.verify(unsealed_limit=limit)
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise CommandError(
                "The audit trail is not intact: "
                + ngettext("%d problem.", "%d problems.", len(problems)) % len(problems)
            )
        self.stdout.write(self.style.SUCCESS("The audit trail is intact."))
