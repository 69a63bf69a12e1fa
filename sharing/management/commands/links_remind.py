"""Remind creators of their links expiring within a day, not downloaded: once, or with --every."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.translation import ngettext

from sharing.services import link_reminders

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Email creators about their links that expire within a day and were not downloaded."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=0,
            help="Keep reminding, this many seconds apart, until stopped (default: once).",
        )

    def handle(self, *args, every: float, **options) -> None:
        if every < 0:
            raise CommandError("--every takes a number of seconds, 0 or more.")
        if not every:
            count = link_reminders.reminders_send(now=timezone.now())
            self.stdout.write(ngettext("%d link reminded.", "%d links reminded.", count) % count)
            return
        try:
            while True:
                try:
                    link_reminders.reminders_send(now=timezone.now())
                except DatabaseError:  # the database restarting: try again next round
                    logger.exception("Sending link reminders failed; trying again.")
                    connection.close()
                time.sleep(every)
        except KeyboardInterrupt:
            pass
