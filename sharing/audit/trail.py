"""The table behind the audit trail: rows with a keyed MAC, chained afterwards by a sealer.

Appending is one ORM insert that waits for no other writer: each row carries, from the moment it
is written, an HMAC-SHA256 of its fields under AUDIT_KEY (a key that is never in the database), so
an edited or forged row is detected at once. A sealer later chains the committed rows in the order
it takes them (ids commit out of order, so the seal order is the chain's order): each sealed row
gets its position (`seq`), the previous sealed row's hash and a hash that covers its position, id,
MAC and that previous hash. The single AuditSeal row holds the newest position and hash; sealers
lock it (one at a time; appends never touch it), so deleted newest rows are noticed too.
"""

import datetime
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from sharing.models import AuditEvent, AuditSeal

GENESIS_HASH = "0" * 64
SEAL_BATCH = 2000
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


def _key() -> bytes:
    return settings.AUDIT_KEY.encode()


def payload(row: AuditEvent) -> str:
    """Return the text a row's MAC covers: its fields as JSON."""
    values = {}
    for name in HASHED_FIELDS:
        value = getattr(row, name)
        if name == "created_at":
            value = value.astimezone(datetime.UTC).isoformat()
        elif value is not None:
            value = str(value)
        values[name] = value
    return json.dumps(values, sort_keys=True, ensure_ascii=True)


def row_mac(row: AuditEvent) -> str:
    """Return the keyed MAC of a row's fields."""
    return hmac.new(_key(), payload(row).encode(), hashlib.sha256).hexdigest()


def link_hash(*, seq: int, row_id: int, mac: str, prev_hash: str) -> str:
    """Return the chain hash of a sealed row: its position, id and MAC after the previous hash."""
    text = f"{seq}|{row_id}|{mac}|{prev_hash}"
    return hmac.new(_key(), text.encode(), hashlib.sha256).hexdigest()


def _storable(value: Any) -> Any:
    # Refused names are recorded as given, but PostgreSQL text cannot hold NUL: show it visibly.
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


def new_row(fields: dict[str, Any]) -> AuditEvent:
    """Return an unsaved row of these fields (by attribute name), stamped now and MAC'd."""
    row = AuditEvent(**{name: _storable(value) for name, value in fields.items()})
    row.created_at = timezone.now()
    if row.client_ip and ":" in row.client_ip:
        # MAC'd as stored: the database keeps an IPv6 address in its canonical form.
        row.client_ip = clean_ipv6_address(row.client_ip)
    row.mac = row_mac(row)
    return row


def append(rows: list[dict[str, Any]]) -> None:
    """Insert rows (values by attribute name): one insert, committed with the caller's transaction."""
    made = [new_row(fields) for fields in rows]
    if len(made) == 1:
        made[0].save(force_insert=True)
    else:
        AuditEvent.objects.bulk_create(made)


def seal(*, batch: int = SEAL_BATCH) -> int:
    """Chain every committed unsealed row, oldest id first; return how many were sealed.

    Another sealer at work holds the seal row: this one then stops at once (PostgreSQL) or waits
    for it (SQLite, whose writers take turns anyway)."""
    total = 0
    while True:
        with transaction.atomic():
            AuditSeal.objects.get_or_create(pk=1, defaults={"hash": GENESIS_HASH})
            head = AuditSeal.objects.select_for_update(skip_locked=True).filter(pk=1).first()
            if head is None:
                return total
            rows = list(
                AuditEvent.objects.filter(seq__isnull=True).order_by("id").only("id", "mac")[:batch]
            )
            for row in rows:
                row.seq, row.prev_hash = head.seq + 1, head.hash
                row.hash = link_hash(seq=row.seq, row_id=row.pk, mac=row.mac, prev_hash=head.hash)
                head.seq, head.hash = row.seq, row.hash
            if rows:
                AuditEvent.objects.bulk_update(rows, ["seq", "prev_hash", "hash"], batch_size=500)
                head.save(update_fields=["seq", "hash"])
        total += len(rows)
        if len(rows) < batch:
            return total


@dataclass(frozen=True)
class Problem:
    """Something verify found: which row, and what is wrong with it."""

    row_id: int | None
    text: str

    def __str__(self) -> str:
        return self.text if self.row_id is None else f"row {self.row_id}: {self.text}"


def verify(*, unsealed_limit: datetime.timedelta) -> list[Problem]:
    """Return what is wrong with the trail, first problem first (an empty list when intact)."""
    problems: list[Problem] = []
    expected_seq, prev_hash = 1, GENESIS_HASH
    sealed = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    for row in sealed.iterator(chunk_size=SEAL_BATCH):
        if row.seq != expected_seq:
            missing = (
                f"{expected_seq}"
                if row.seq == expected_seq + 1
                else f"{expected_seq}-{row.seq - 1}"
            )
            problems.append(Problem(row.pk, f"the sealed rows before it ({missing}) were deleted"))
        elif row.prev_hash != prev_hash:
            problems.append(Problem(row.pk, "the row sealed before it was changed or replaced"))
        if row.mac != row_mac(row):
            problems.append(Problem(row.pk, "its contents were changed (the MAC does not match)"))
        if row.hash != link_hash(seq=row.seq, row_id=row.pk, mac=row.mac, prev_hash=row.prev_hash):
            problems.append(Problem(row.pk, "it was moved, reordered or inserted in the chain"))
        expected_seq, prev_hash = row.seq + 1, row.hash
    head = AuditSeal.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq > expected_seq - 1:
        problems.append(
            Problem(None, f"the newest sealed rows ({expected_seq}-{head_seq}) were deleted")
        )
    elif (head_seq, head_hash) != (expected_seq - 1, prev_hash):
        problems.append(
            Problem(None, "rows were sealed outside the sealer (the seal row disagrees)")
        )
    unsealed = AuditEvent.objects.filter(seq__isnull=True).order_by("id")
    for row in unsealed.iterator(chunk_size=SEAL_BATCH):
        if row.mac != row_mac(row):
            problems.append(
                Problem(
                    row.pk,
                    "its contents were changed or it was not written by the portal (the MAC does not match)",
                )
            )
        elif row.prev_hash or row.hash:
            problems.append(Problem(row.pk, "it carries chain hashes but no place in the chain"))
    copies = AuditEvent.objects.values("mac").annotate(rows=Count("id")).filter(rows__gt=1)
    for copy in copies.order_by("mac")[:100]:
        ids = list(
            AuditEvent.objects.filter(mac=copy["mac"]).order_by("id").values_list("id", flat=True)
        )
        problems.append(Problem(ids[-1], f"it is a copy of row {ids[0]} (inserted)"))
    cutoff = timezone.now() - unsealed_limit
    late = AuditEvent.objects.filter(seq__isnull=True, created_at__lt=cutoff)
    oldest = late.order_by("id").first()
    if oldest is not None:
        problems.append(
            Problem(
                oldest.pk,
                f"{late.count()} rows are unsealed for longer than {unsealed_limit}; is the sealer running?",
            )
        )
    return problems
