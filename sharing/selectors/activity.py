"""My activity: the audit rows a person may see, filtered and paged newest first."""

import datetime
import functools
import heapq
import operator
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from sharing import permissions
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, Phase, Role

ACTIVITY_PAGE_SIZE = 50
# Up to this many managed buckets, each is read by its own newest-first walk of the
# (bucket, -id) index; more are read in one `bucket IN (...)` query, which the database sorts.
ACTIVITY_BUCKET_WALKS = 20
# A row's id is given within moments of its time stamp (trail.new_row, then the insert), so no row
# stamped inside a date range has an id beyond the rows stamped this long outside it: those ids
# bound the index walks, which then skip the rows outside the range instead of reading them all.
# The dates themselves still decide; the bound only has to hold, and a day is ample.
ACTIVITY_STAMP_MARGIN = datetime.timedelta(days=1)
# The action suggestions come from the newest rows, as the admin's filters do: the distinct
# actions of a million rows would cost a scan of them all on every page.
ACTIVITY_SAMPLE_ROWS = 10_000


@dataclass(frozen=True)
class ActivityFilters:
    """What My activity is narrowed to; empty values do not narrow."""

    action: str = ""
    outcome: str = ""
    bucket: str = ""
    who: str = ""
    since: datetime.date | None = None
    until: datetime.date | None = None
    key: str = ""
    before: int | None = None  # the page of rows older than this id (keyset pagination)


@dataclass(frozen=True)
class ActivityScope:
    """Whose audit rows a person sees: everyone's, or their own plus those of `managed` buckets."""

    everything: bool
    managed: tuple[str, ...] = ()

    @property
    def shows_others(self) -> bool:
        return self.everything or bool(self.managed)


@dataclass(frozen=True)
class ActivityPage:
    rows: list[AuditEvent]
    next_before: int | None  # None: this is the last page


def activity_scope(user) -> ActivityScope:
    """Return whose audit rows the user may see: own rows, every row of a managed bucket, or all."""
    # Who may read the whole trail in the admin may read it here too.
    if user.is_active and (user.is_superuser or user.has_perm("sharing.view_auditevent")):
        return ActivityScope(everything=True)
    roles = permissions.visible_roles(user) or {}
    managed = sorted(b for b, role in roles.items() if permissions.allows(role, Role.MANAGE))
    return ActivityScope(everything=False, managed=tuple(managed))


def _activity_parts(scope: ActivityScope, user, *, bucket: str = "") -> list[Q]:
    """Return the conditions whose union is what the scope shows (one part: everything)."""
    if scope.everything:
        return [Q()]
    # Found by the (actor_name, -id) index; the id keeps out rows of an earlier account of that
    # name. A failed login names the account tried and no user: it is the person's to see.
    own = Q(actor_name=user.get_username()) & (
        Q(actor_id=user.pk) | Q(actor__isnull=True, action="login")
    )
    managed = [name for name in scope.managed if not bucket or name == bucket]
    if len(managed) > ACTIVITY_BUCKET_WALKS:
        return [own, Q(bucket__in=managed)]
    return [own, *(Q(bucket=name) for name in managed)]


def _activity_filtered(filters: ActivityFilters) -> QuerySet[AuditEvent]:
    # An intent row says an S3 call began; its outcome row (or audit_reconcile's) says how it
    # ended, so a person sees one row per thing done.
    rows = AuditEvent.objects.exclude(phase=Phase.INTENT)
    exact = {
        "action": filters.action,
        "outcome": filters.outcome,
        "bucket": filters.bucket,
        "actor_name": filters.who,
    }
    rows = rows.filter(**{field: value for field, value in exact.items() if value})
    zone = timezone.get_current_timezone()
    if filters.since:
        start = datetime.datetime.combine(filters.since, datetime.time(), tzinfo=zone)
        rows = rows.filter(created_at__gte=start)
        stamped = AuditEvent.objects.filter(created_at__lt=start - ACTIVITY_STAMP_MARGIN)
        if first := stamped.order_by("-created_at").values_list("pk", flat=True).first():
            rows = rows.filter(pk__gt=first)
    if filters.until:
        end = datetime.datetime.combine(filters.until, datetime.time(), tzinfo=zone)
        end += datetime.timedelta(days=1)
        rows = rows.filter(created_at__lt=end)
        stamped = AuditEvent.objects.filter(created_at__gte=end + ACTIVITY_STAMP_MARGIN)
        if last := stamped.order_by("created_at").values_list("pk", flat=True).first():
            rows = rows.filter(pk__lt=last)
    if filters.key:
        rows = rows.filter(key__icontains=filters.key)
    if filters.before:
        rows = rows.filter(pk__lt=filters.before)
    return rows.order_by("-id")


def activity(*, actor: Actor, filters: ActivityFilters) -> QuerySet[AuditEvent]:
    """Return the audit rows the actor may see that match the filters, newest first."""
    parts = _activity_parts(activity_scope(actor.user), actor.user, bucket=filters.bucket)
    return _activity_filtered(filters).filter(functools.reduce(operator.or_, parts))


def activity_page(
    *, actor: Actor, filters: ActivityFilters, size: int = ACTIVITY_PAGE_SIZE
) -> ActivityPage:
    """Return one page of `activity(...)`, newest first, and the id that starts the next page."""
    rows = _activity_filtered(filters)
    parts = _activity_parts(activity_scope(actor.user), actor.user, bucket=filters.bucket)
    # One query per part, each walking its index newest first and stopping after a page, then
    # merged: the same rows as `activity(...)[:size + 1]`, whose OR the database would answer by
    # sorting every row of the person's buckets (200,000 of a million in bench/my_activity.py).
    walks = [list(rows.filter(part)[: size + 1]) for part in parts]
    merged = heapq.merge(*walks, key=lambda row: -row.pk)
    found = list({row.pk: row for row in merged}.values())[: size + 1]  # a row in two parts once
    more = len(found) > size
    return ActivityPage(rows=found[:size], next_before=found[size - 1].pk if more else None)


def activity_choices(*, actor: Actor) -> tuple[list[str], list[str]]:
    """Return the buckets and the recent actions to suggest in My activity's filters."""
    scope = activity_scope(actor.user)
    if scope.everything:
        grants = BucketGrant.objects.order_by("bucket").values_list("bucket", flat=True)
        buckets = list(grants.distinct())
    else:
        buckets = sorted(permissions.visible_roles(actor.user) or {})
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    # A range of ids, not `IN (the newest N)`: PostgreSQL would read that subquery's table whole.
    recent = AuditEvent.objects.filter(pk__gt=newest - ACTIVITY_SAMPLE_ROWS)
    parts = _activity_parts(scope, actor.user)
    recent = recent.filter(functools.reduce(operator.or_, parts)).exclude(phase=Phase.INTENT)
    actions = recent.order_by("action").values_list("action", flat=True).distinct()
    return buckets, list(actions)
