"""Email file request owners what quiet visits sent: once, or every few seconds with --every."""

import datetime
import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.utils import timezone

from sharing.services import file_requests

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Send one email per finished file request visit (safe to run several at once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=0,
            help="Keep reporting, this many seconds apart, until stopped (default: once).",
        )
        parser.add_argument("--once", action="store_true", help="Report once (the default).")
        parser.add_argument(
            "--now", default="", help="Pretend it is this ISO time (for tests and catch-up)."
        )
        parser.add_argument(
            "--idle-minutes",
            type=int,
            default=file_requests.REPORT_IDLE_MINUTES,
            help="A visit quiet this long is over.",
        )

    def handle(self, *args, every: float, now: str, idle_minutes: int, **options) -> None:
        if every < 0 or idle_minutes < 0:
            raise CommandError("--every and --idle-minutes take a number, 0 or more.")
        try:
            moment = datetime.datetime.fromisoformat(now) if now else None
        except ValueError as error:
            raise CommandError("--now takes an ISO date and time.") from error
        if not every or options["once"]:
            sent = file_requests.file_requests_report(
                now=moment or timezone.now(), idle_minutes=idle_minutes
            )
            self.stdout.write(f"{sent} visits reported.")
            return
        try:
            while True:
                try:
                    file_requests.file_requests_report(
                        now=timezone.now(), idle_minutes=idle_minutes
                    )
                except DatabaseError:  # the database restarting: try again next round
                    logger.exception("Reporting file request visits failed; trying again.")
                    connection.close()
                time.sleep(every)
        except KeyboardInterrupt:
            pass
