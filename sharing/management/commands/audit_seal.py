"""Chain the audit rows written since the last seal: once, or every few seconds with --every."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from sharing import audit

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Seal committed audit rows into the chain (safe to run several at once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=0,
            help="Keep sealing, this many seconds apart, until stopped (default: once).",
        )

    def handle(self, *args, every: float, **options) -> None:
        if every < 0:
            raise CommandError("--every takes a number of seconds, 0 or more.")
        if not every:
            self.stdout.write(f"{audit.seal()} rows sealed.")
            return
        try:
            while True:
                try:
                    audit.seal()
                except DatabaseError:  # the database restarting: try again next round
                    logger.exception("Sealing the audit trail failed; trying again.")
                    connection.close()
                time.sleep(every)
        except KeyboardInterrupt:
            pass
