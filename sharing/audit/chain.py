"""The table behind the audit trail: rows appended to a hash chain, and the check of that chain.

Each row's hash covers its fields and the previous row's hash, so an edited or deleted row breaks
the chain, and the head row (the newest row's id and hash) shows when the newest rows are deleted.
Appends are serialised by locking the head row until they commit. Every request appends, so the
statements are written once per database and take plain values, not model instances (~0.1 ms a
row instead of ~0.6 ms with the ORM). On PostgreSQL one statement locks the head, inserts the row
with its hash computed by the server and moves the head: one round trip, and the lock held for as
short a time as the database allows. On SQLite, whose writers queue for one lock anyway, the head
is read, the row inserted and the head moved in three in-process statements.
"""

import contextlib
import datetime
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from sharing.models import AuditChainHead, AuditEvent

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
CHAIN_FIELDS = ("prev_hash", "hash")


@dataclass(frozen=True)
class Guard:
    """A conditional UPDATE, ending in its WHERE clause, that must change a row for a row to be kept."""

    sql: str
    params: list[Any]


def payload(fields: dict[str, Any]) -> str:
    """Return the text a row's hash covers, besides the previous row's hash."""
    values = {}
    for name in HASHED_FIELDS:
        value = fields[name]
        if name == "created_at":
            value = value.astimezone(datetime.UTC).isoformat()
        elif value is not None:
            value = str(value)
        values[name] = value
    return json.dumps(values, sort_keys=True, ensure_ascii=True)


def _digest(text: str, prev_hash: str) -> str:
    return hashlib.sha256((text + prev_hash).encode()).hexdigest()


def row_hash(row: AuditEvent) -> str:
    """Return the chained hash of a stored row: its fields plus the previous row's hash."""
    return _digest(payload({name: getattr(row, name) for name in HASHED_FIELDS}), row.prev_hash)


@dataclass(frozen=True)
class _Statements:
    columns: list[tuple[str, Any]]  # (attribute, function preparing its value for the database)
    defaults: list[tuple[str, Any]]  # (attribute, value or callable), as the model would fill in
    insert: str  # VALUES for the fields, then prev_hash and hash
    select_head: str
    update_head: str
    chained_insert: str  # PostgreSQL: head locked, row inserted and head moved in one statement
    chained_template: str  # the same with {guard} and {condition} left open, for guarded appends


@functools.cache
def _statements(vendor: str) -> _Statements:
    quote = connection.ops.quote_name
    fields = [
        f
        for f in AuditEvent._meta.concrete_fields
        if not f.primary_key and f.attname not in CHAIN_FIELDS
    ]
    table = quote(AuditEvent._meta.db_table)
    head = quote(AuditChainHead._meta.db_table)
    names = ", ".join([*(quote(f.column) for f in fields), *CHAIN_FIELDS])
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    template = _chained_insert(table, head, names, fields) if vendor == "postgresql" else ""
    # Only names from the models' own metadata go into these strings; values are parameters.
    return _Statements(
        columns=[(f.attname, _preparer(f)) for f in fields],
        defaults=[(f.attname, _default(f)) for f in fields],
        insert=(
            f"INSERT INTO {table} ({names}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * (len(fields) + len(CHAIN_FIELDS)))}) RETURNING id"
        ),
        select_head=f"SELECT last_id, last_hash FROM {head} WHERE id = 1{lock}",  # noqa: S608
        update_head=f"UPDATE {head} SET last_id = %s, last_hash = %s WHERE id = 1",  # noqa: S608
        chained_insert=template.format(guard="", condition=""),
        chained_template=template,
    )


def _chained_insert(table: str, head: str, names: str, fields: list[Any]) -> str:
    # Typed placeholders: in INSERT ... SELECT PostgreSQL takes an untyped value as text.
    values = ", ".join(
        "%s" if isinstance(f, models.CharField) else f"CAST(%s AS {f.db_type(connection)})"
        for f in fields
    )
    # The hash is sha256(payload + previous hash) as in _digest: the payload is ASCII JSON.
    return (
        f"WITH {{guard}}tail AS (SELECT last_hash FROM {head} WHERE id = 1{{condition}} FOR UPDATE), "  # noqa: S608
        f"added AS (INSERT INTO {table} ({names}) SELECT {values}, tail.last_hash, "
        "encode(sha256(convert_to(%s || tail.last_hash, 'UTF8')), 'hex') FROM tail "
        "RETURNING id, hash) "
        f"UPDATE {head} SET last_id = added.id, last_hash = added.hash FROM added "
        f"WHERE {head}.id = 1 RETURNING 1"
    )


@functools.cache
def _guarded_insert(guard_sql: str) -> str:
    head = connection.ops.quote_name(AuditChainHead._meta.db_table)
    # The guard changes its row only while the head exists (it always does, but for a test's
    # flushed database), so a change is never kept without its row.
    guard = f"guard AS ({guard_sql} AND EXISTS (SELECT 1 FROM {head} WHERE id = 1) RETURNING 1), "  # noqa: S608
    return _statements(connection.vendor).chained_template.format(
        guard=guard, condition=" AND EXISTS (SELECT 1 FROM guard)"
    )


def _preparer(field: Any) -> Any:
    # Text and numbers go to the database as they are (the values have their types already);
    # dates, UUIDs and addresses need the backend's adaptation, taken straight from it (the
    # fields' own get_db_prep_save costs ten times as much, on every row of every request).
    ops = connection.ops
    if isinstance(field, models.DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(field, models.GenericIPAddressField):
        return ops.adapt_ipaddressfield_value
    if isinstance(field, models.UUIDField):
        return functools.partial(field.get_db_prep_value, connection=connection, prepared=True)
    if isinstance(field, models.CharField | models.IntegerField | models.ForeignKey):
        return _as_is
    return functools.partial(field.get_db_prep_save, connection=connection)


def _default(field: Any) -> Any:
    if field.has_default():
        return field.default
    return None if field.null else ""


def _as_is(value: Any) -> Any:
    return value


def _storable(value: Any) -> Any:
    # Refused names are recorded as given, but PostgreSQL text cannot hold NUL: show it visibly.
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


def _prepare(statements: _Statements, fields: dict[str, Any]) -> tuple[list[Any], str]:
    """Return a row's values for the database (without the chain) and the text its hash covers."""
    values = {
        name: default() if callable(default) else default for name, default in statements.defaults
    }
    for name, value in fields.items():
        if name == "actor":  # a user, stored as its id
            name, value = "actor_id", value.pk if value is not None else None
        values[name] = _storable(value)
    values["created_at"] = timezone.now()
    if values["client_ip"] and ":" in values["client_ip"]:
        # Hashed as stored: the database keeps an IPv6 address in its canonical form.
        values["client_ip"] = clean_ipv6_address(values["client_ip"])
    return [prep(values[name]) for name, prep in statements.columns], payload(values)


def append(rows: list[dict[str, Any]]) -> None:
    """Append rows (values by attribute name) to the chain, in order, all or none."""
    statements = _statements(connection.vendor)
    _append_prepared(statements, [_prepare(statements, fields) for fields in rows])


def _append_prepared(statements: _Statements, prepared: list[tuple[list[Any], str]]) -> None:
    # Rows are prepared before this point: only the chaining itself happens with the head locked.
    if statements.chained_insert:
        # One statement is a transaction of its own; several need one around them.
        several = transaction.atomic(savepoint=False) if len(prepared) > 1 else None
        with several or contextlib.nullcontext():
            for values, text in prepared:
                rows, _ = _execute(statements.chained_insert, [*values, text])
                if not rows:  # no head row: a test flushed the table
                    AuditChainHead.objects.get_or_create(pk=1)
                    _execute(statements.chained_insert, [*values, text])
        return
    # No savepoint: inside a caller's transaction the rows stand or fall with it.
    with transaction.atomic(savepoint=False):
        last_id, last_hash = _locked_head(statements)
        for values, text in prepared:
            new_hash = _digest(text, last_hash)
            rows, _ = _execute(statements.insert, [*values, last_hash, new_hash])
            last_id, last_hash = rows[0][0], new_hash
        _execute(statements.update_head, [last_id, last_hash])


def append_guarded(items: list[tuple[Guard, dict[str, Any]]]) -> list[bool]:
    """Run each guard and append its row only when the guard changed a row; say which did."""
    statements = _statements(connection.vendor)
    prepared = [_prepare(statements, fields) for _, fields in items]
    if statements.chained_insert and len(items) == 1 and not connection.in_atomic_block:
        # Guard, row and head in one statement, committed on its own: one round trip.
        guard, (values, text) = items[0][0], prepared[0]
        rows, _ = _execute(_guarded_insert(guard.sql), [*guard.params, *values, text])
        return [bool(rows)]
    # Every guard before the head, in one transaction: all lock their rows in the same order.
    with transaction.atomic(savepoint=False):
        changed = [_execute(guard.sql, guard.params)[1] > 0 for guard, _ in items]
        kept = [row for row, done in zip(prepared, changed, strict=True) if done]
        if kept:
            _append_prepared(statements, kept)
        return changed


def _locked_head(statements: _Statements) -> tuple[int, str]:
    rows, _ = _execute(statements.select_head, [])
    if not rows:  # no head row: a test flushed the table; create it, then lock it as usual
        AuditChainHead.objects.get_or_create(pk=1)
        rows, _ = _execute(statements.select_head, [])
    return rows[0][0], rows[0][1]


def _execute(sql: str, params: list[Any]) -> tuple[list[tuple], int]:
    """Run one statement of the chain; return the rows it returned and how many it changed."""
    if connection.vendor == "sqlite":
        # Straight to the driver's connection, inside Django's transaction: on the path every
        # request takes, Django's cursor wrapper (placeholders rewritten on each call, execute
        # wrappers) costs as much as SQLite's own work.
        connection.ensure_connection()
        cursor = connection.connection.execute(_qmark(sql), params)
        return cursor.fetchall(), cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return (cursor.fetchall() if cursor.description else []), cursor.rowcount


@functools.cache
def _qmark(sql: str) -> str:
    # SQLite's placeholder; the statements here hold no literal percent signs.
    return sql.replace("%s", "?")


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
