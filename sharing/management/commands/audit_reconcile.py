"""Close audit intents that never got an outcome (the process stopped during an S3 call)."""

from django.core.management.base import BaseCommand

from sharing import audit


class Command(BaseCommand):
    help = "Record an 'unknown' outcome for intents older than --minutes that have none."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--minutes", type=int, default=10)

    def handle(self, *args, minutes: int, **options) -> None:
        count = audit.reconcile(older_than_seconds=minutes * 60)
        self.stdout.write(f"{count} unfinished intents closed as unknown.")
