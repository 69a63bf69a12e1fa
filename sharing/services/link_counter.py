"""Counting a share-link download in one SQL statement: the hot path of /s/<token>.

When the recipient page has just asked S3 that the file exists (remembered for a few seconds), the
download is counted by one conditional UPDATE that re-checks everything that may have changed since:
revoked, expired, used up, a password, a first-download notice still to send, the creator
deactivated or without any grant on the bucket (superusers need none). The ORM builds the same
statement in ~0.5 ms per request; written once here it costs ~0.05 ms (bench/link_resolution.py).
When it matches no row, the caller takes the full path, which finds, records and explains the reason.

The statement is a guard for the audit append (audit.record_guarded): the row is written if and only
if the download is counted, in one statement on PostgreSQL. Downloads that arrive while another is
being counted wait for it, then the first of them counts them all in one transaction with one audit
append (group commit): every transaction holds the database's write lock (SQLite) or the audit
chain's head (PostgreSQL) until it commits, so fewer, fuller transactions go faster.
"""

import datetime
import functools
import threading
import uuid
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from sharing import audit
from sharing.audit import Guard
from sharing.models import BucketGrant, ShareLink


@functools.cache
def _claim_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    user_model = get_user_model()
    groups = user_model._meta.get_field("groups")
    link = quote(ShareLink._meta.db_table)
    user = quote(user_model._meta.db_table)
    grant = quote(BucketGrant._meta.db_table)
    member = quote(groups.remote_field.through._meta.db_table)
    member_user, member_group = quote(groups.m2m_column_name()), quote(groups.m2m_reverse_name())
    # Only names from the models' own metadata go into this string; values are parameters.
    return f"""
        UPDATE {link} SET downloads = downloads + 1, last_opened_at = %s
        WHERE id = %s AND token_hash = %s
          AND revoked_at IS NULL AND expires_at > %s AND password_hash = ''
          AND (max_downloads IS NULL OR downloads < max_downloads)
          AND NOT (notify_on_download AND notified_at IS NULL)
          AND creator_id IN (
            SELECT u.id FROM {user} u
            WHERE u.is_active AND (u.is_superuser OR EXISTS (
              SELECT 1 FROM {grant} g
              WHERE g.bucket = {link}.bucket AND (g.user_id = u.id OR g.group_id IN (
                SELECT m.{member_group} FROM {member} m WHERE m.{member_user} = u.id)))))
    """  # noqa: S608


def download_guard(*, link_id: uuid.UUID | str, token_hash: str, now: datetime.datetime) -> Guard:
    """Return the statement that counts one download of a plain, usable link, and nothing else."""
    when = ShareLink._meta.get_field("expires_at").get_db_prep_save(now, connection)
    pk = ShareLink._meta.pk.get_db_prep_save(link_id, connection)
    return Guard(_claim_sql(connection.vendor), [when, pk, token_hash, when])


@dataclass(eq=False)
class Claim:
    """One download waiting to be counted, with the audit event to record if it is."""

    link_id: uuid.UUID | str
    token_hash: str
    event: audit.Event
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    counted: bool = False
    error: BaseException | None = None


_queue_lock = threading.Lock()
_queue: list[Claim] = []
_serving = False


def count_download(claim: Claim) -> bool:
    """Count a download, in one transaction with the other downloads this process has waiting."""
    global _serving
    with _queue_lock:
        _queue.append(claim)
        leading = not _serving
        _serving = True
    if not leading:
        claim.done.wait()
    if leading or claim.lead:
        with _queue_lock:
            batch = _queue[:]
            _queue.clear()
        _serve(batch, own=claim)
        with _queue_lock:
            if _queue:
                _queue[0].lead = True
                _queue[0].done.set()
            else:
                _serving = False
    if claim.error is not None:
        raise claim.error
    return claim.counted


def _serve(batch: list[Claim], *, own: Claim) -> None:
    try:
        now = timezone.now()
        guards = [
            download_guard(link_id=claim.link_id, token_hash=claim.token_hash, now=now)
            for claim in batch
        ]
        # Counters and audit rows commit together: no counted download without its row.
        counted = audit.record_guarded(
            [(guard, claim.event) for guard, claim in zip(guards, batch, strict=True)]
        )
        for claim, done in zip(batch, counted, strict=True):
            claim.counted = done
    except BaseException as error:
        for claim in batch:
            claim.error = error
    finally:
        for claim in batch:
            if claim is not own:
                claim.done.set()
