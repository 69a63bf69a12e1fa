"""The only writer of audit rows: an intent row before each S3 call, an outcome row after it."""

import datetime
import functools
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from sharing import s3
from sharing.models import AuditChainHead, AuditEvent, Outcome, Phase

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "created_at",
    "operation",
    "phase",
    "actor_id",
    "actor_name",
    "action",
    "bucket",
    "key",
    "outcome",
    "error_code",
    "message",
    "request_id",
    "client_ip",
    "user_agent",
    "duration_ms",
)


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: the user (or None for the system) with address and browser."""

    user: Any = None
    ip: str | None = None
    user_agent: str = ""
    name: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> "Actor":
        user = request.user if request.user.is_authenticated else None
        return cls(
            user=user,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:300],
            name=user.get_username() if user else "",
        )

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(name=name)

    @property
    def label(self) -> str:
        return self.name or (self.user.get_username() if self.user else "")


def client_ip(request: HttpRequest) -> str | None:
    """Return the caller's address; X-Forwarded-For only when our own proxy is trusted to set it."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.headers.get("X-Forwarded-For", "")
        # The right-most entry is the one our proxy added; the others are the client's claims.
        candidates = [part.strip() for part in forwarded.split(",") if part.strip()]
        if candidates:
            return candidates[-1]
    return request.META.get("REMOTE_ADDR") or None


@dataclass
class Call:
    """What a service tells about an S3 call in progress; becomes the outcome row's message."""

    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def row_hash(row: AuditEvent) -> str:
    """Return the chained hash of a row: its fields plus the previous row's hash."""
    return _chained_hash({name: getattr(row, name) for name in HASHED_FIELDS}, row.prev_hash)


def _chained_hash(fields: dict[str, Any], prev_hash: str) -> str:
    values = {}
    for name in HASHED_FIELDS:
        value = fields[name]
        if name == "created_at":
            value = value.astimezone(datetime.UTC).isoformat()
        elif value is not None:
            value = str(value)
        values[name] = value
    payload = json.dumps(values, sort_keys=True, ensure_ascii=True) + prev_hash
    return hashlib.sha256(payload.encode()).hexdigest()


def _append(**fields: Any) -> None:
    _append_many([fields])


def _append_many(rows_fields: list[dict[str, Any]]) -> None:
    # The head row is locked for the whole append so that concurrent writers never fork the chain.
    # Every request appends rows, so the statements are written once (_AppendSql) and the values
    # are plain dicts, not model instances: ~0.1 ms per row instead of ~0.6 ms with the ORM.
    # No savepoint: inside a caller's transaction (a counted download) the rows stand or fall with it.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        sql = _append_sql(connection.vendor)
        last_id, last_hash = _locked_head(cursor, sql)
        for fields in rows_fields:
            values = {
                name: default() if callable(default) else default for name, default in sql.defaults
            }
            for name, value in fields.items():
                if name == "actor":  # a user, stored as its id
                    name, value = "actor_id", value.pk if value is not None else None
                values[name] = _storable(value)
            values.update(created_at=timezone.now(), prev_hash=last_hash)
            values["hash"] = _chained_hash(values, last_hash)
            cursor.execute(sql.insert, [prep(values[name]) for name, prep in sql.columns])
            last_id = (
                cursor.fetchone()[0]
                if sql.returning
                else connection.ops.last_insert_id(cursor, sql.table, "id")
            )
            last_hash = values["hash"]
        cursor.execute(sql.update_head, [last_id, last_hash])


@dataclass(frozen=True)
class _AppendSql:
    columns: list[tuple[str, Any]]  # (attribute, function preparing its value for the database)
    defaults: list[tuple[str, Any]]  # (attribute, value or callable), as the model would fill in
    table: str
    insert: str
    returning: bool
    select_head: str
    update_head: str


@functools.cache
def _append_sql(vendor: str) -> _AppendSql:
    quote = connection.ops.quote_name
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    table = AuditEvent._meta.db_table
    head = quote(AuditChainHead._meta.db_table)
    returning = connection.features.can_return_columns_from_insert
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    # Only names from the models' own metadata go into these strings; values are parameters.
    return _AppendSql(
        columns=[(f.attname, _preparer(f)) for f in fields],
        defaults=[(f.attname, _default(f)) for f in fields],
        table=table,
        insert=(
            f"INSERT INTO {quote(table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(fields))})" + (" RETURNING id" if returning else "")
        ),
        returning=returning,
        select_head=f"SELECT last_id, last_hash FROM {head} WHERE id = 1{lock}",  # noqa: S608
        update_head=f"UPDATE {head} SET last_id = %s, last_hash = %s WHERE id = 1",  # noqa: S608
    )


def _preparer(field: Any) -> Any:
    # Text goes to the database as it is (the values are str already); dates, UUIDs, addresses
    # and numbers need the backend's adaptation.
    if type(field) is models.CharField:
        return _as_is
    return functools.partial(field.get_db_prep_save, connection=connection)


def _default(field: Any) -> Any:
    if field.has_default():
        return field.default
    return None if field.null else ""


def _as_is(value: Any) -> Any:
    return value


def _locked_head(cursor: Any, sql: _AppendSql) -> tuple[int, str]:
    cursor.execute(sql.select_head)
    found = cursor.fetchone()
    if found is None:  # the very first append: create the head, then lock it like any other
        AuditChainHead.objects.get_or_create(pk=1)
        cursor.execute(sql.select_head)
        found = cursor.fetchone()
    return found[0], found[1]


def _storable(value: Any) -> Any:
    # Refused names are recorded as given, but PostgreSQL text cannot hold NUL: show it visibly.
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


def _actor_fields(actor: Actor) -> dict[str, Any]:
    return {
        "actor": actor.user,
        "actor_name": actor.label[:150],
        "client_ip": actor.ip,
        "user_agent": actor.user_agent[:300],
    }


def record(
    *,
    actor: Actor,
    action: str,
    outcome: str,
    bucket: str = "",
    key: str = "",
    message: str = "",
    error_code: str = "",
) -> None:
    """Append one self-contained event (a login, a denial, a link opened)."""
    record_many([Event(actor, action, outcome, bucket, key, message, error_code)])


@dataclass(frozen=True)
class Event:
    """A self-contained event to record, as `record` takes it."""

    actor: Actor
    action: str
    outcome: str
    bucket: str = ""
    key: str = ""
    message: str = ""
    error_code: str = ""


def record_many(events: list[Event]) -> None:
    """Append several self-contained events in one append (downloads counted together)."""
    _append_many(
        [
            {
                "phase": Phase.EVENT,
                "action": event.action,
                "outcome": event.outcome,
                "bucket": event.bucket,
                "key": event.key[:1024],
                "message": event.message[:500],
                "error_code": event.error_code[:100],
                **_actor_fields(event.actor),
            }
            for event in events
        ]
    )


@contextmanager
def s3_call(*, actor: Actor, action: str, bucket: str = "", key: str = "") -> Iterator[Call]:
    """Record the intent, run the block (the S3 call), then record its outcome, failures included."""
    operation = uuid.uuid4()
    common = {"operation": operation, "action": action, "bucket": bucket, "key": key[:1024]}
    common.update(_actor_fields(actor))
    _append(phase=Phase.INTENT, outcome=Outcome.PENDING, **common)
    call = Call()
    started = time.monotonic()
    s3.reset_request_id()
    try:
        yield call
    except s3.S3Error as error:
        _append(
            phase=Phase.OUTCOME,
            outcome=Outcome.FAILURE,
            error_code=error.code[:100],
            message=error.message[:500],
            request_id=error.request_id[:200],
            duration_ms=_elapsed_ms(started),
            **common,
        )
        raise
    except BaseException as error:
        _append(
            phase=Phase.OUTCOME,
            outcome=Outcome.FAILURE,
            error_code=type(error).__name__[:100],
            message="The portal failed while running this action.",
            duration_ms=_elapsed_ms(started),
            **common,
        )
        raise
    _append(
        phase=Phase.OUTCOME,
        outcome=Outcome.SUCCESS,
        message=call.message[:500],
        request_id=s3.last_request_id()[:200],
        duration_ms=_elapsed_ms(started),
        **common,
    )


@dataclass
class BatchCall:
    """What a service tells about a batch call: the keys that failed, with their S3 error codes."""

    failed: dict[str, str] = field(default_factory=dict)


@contextmanager
def s3_batch(*, actor: Actor, action: str, bucket: str, keys: list[str]) -> Iterator[BatchCall]:
    """Record an intent per key, run the block (one S3 call for all keys), then an outcome per key."""
    actor_fields = _actor_fields(actor)
    operations = {key: uuid.uuid4() for key in keys}
    common = {"action": action, "bucket": bucket, **actor_fields}
    _append_many(
        [
            {
                "operation": operations[key],
                "key": key[:1024],
                "phase": Phase.INTENT,
                "outcome": Outcome.PENDING,
                **common,
            }
            for key in keys
        ]
    )
    batch = BatchCall()
    started = time.monotonic()
    s3.reset_request_id()
    try:
        yield batch
    except BaseException as error:
        code = error.code if isinstance(error, s3.S3Error) else type(error).__name__
        message = error.message if isinstance(error, s3.S3Error) else "The portal failed here."
        failed = dict.fromkeys(keys, code)
        _append_many(_batch_outcomes(operations, failed, common, message, started))
        raise
    _append_many(_batch_outcomes(operations, batch.failed, common, "", started))


def _batch_outcomes(operations, failed, common, message, started) -> list[dict[str, Any]]:
    duration = _elapsed_ms(started)
    request_id = s3.last_request_id()[:200]
    return [
        {
            "operation": operation,
            "key": key[:1024],
            "phase": Phase.OUTCOME,
            "outcome": Outcome.FAILURE if key in failed else Outcome.SUCCESS,
            "error_code": failed.get(key, "")[:100],
            "message": message[:500] if key in failed else "",
            "request_id": request_id,
            "duration_ms": duration,
            **common,
        }
        for key, operation in operations.items()
    ]


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def verify() -> list[str]:
    """Return the problems found in the hash chain (an empty list when it is intact)."""
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    last_id = 0
    for row in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if row.prev_hash != expected_prev:
            problems.append(f"row {row.pk}: the row before it was deleted or changed")
        if row_hash(row) != row.hash:
            problems.append(f"row {row.pk}: its contents were changed")
        expected_prev = row.hash
        last_id = row.pk
    head = AuditChainHead.objects.filter(pk=1).first()
    if head and (head.last_id, head.last_hash) != (last_id, expected_prev):
        problems.append(f"the newest rows after {last_id} were deleted")
    return problems


def reconcile(*, older_than_seconds: int) -> int:
    """Close intents left without an outcome (a crash mid-call) with an 'unknown' row; return how many."""
    cutoff = timezone.now() - datetime.timedelta(seconds=older_than_seconds)
    finished = AuditEvent.objects.filter(phase=Phase.OUTCOME).values("operation")
    stale = AuditEvent.objects.filter(phase=Phase.INTENT, created_at__lt=cutoff).exclude(
        operation__in=finished
    )
    count = 0
    for intent in stale.order_by("id"):
        _append(
            phase=Phase.OUTCOME,
            outcome=Outcome.UNKNOWN,
            operation=intent.operation,
            action=intent.action,
            bucket=intent.bucket,
            key=intent.key,
            actor_id=intent.actor_id,
            actor_name=intent.actor_name,
            client_ip=intent.client_ip,
            user_agent=intent.user_agent,
            message="No outcome was recorded; the process likely stopped during the call.",
        )
        count += 1
    return count
