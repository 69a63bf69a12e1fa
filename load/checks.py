"""After the load: is everything the portal answered also what its database, trail and S3 say?

Each check returns a list of problems in words (empty: it holds). They run once the web server
has stopped and the sealer has sealed everything, in the driver's own Django set-up.
"""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

SEAL_WAIT_SECONDS = 30
SHOWN = 5  # examples named per problem


def wait_sealed(timeout: float = SEAL_WAIT_SECONDS) -> int:
    """Wait until the sealer has chained every row; return how many are still unsealed."""
    from sharing.models import AuditEvent

    deadline = time.monotonic() + timeout
    while True:
        waiting = AuditEvent.objects.filter(seq__isnull=True).count()
        if not waiting or time.monotonic() > deadline:
            return waiting
        time.sleep(0.5)


def audit_verify(*, root: Path, env: dict[str, str]) -> list[str]:
    """Run `manage.py audit_verify` as an operator would."""
    command = [sys.executable, str(root / "manage.py"), "audit_verify"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    if done.returncode == 0:
        return []
    lines = (done.stderr or done.stdout).strip().splitlines()
    return [f"audit_verify exited {done.returncode}: " + " | ".join(lines[:SHOWN])]


def pending_intents() -> list[str]:
    """Every intent row has its outcome row (audit_reconcile would have nothing to close)."""
    from sharing.models import AuditEvent, Phase

    finished = AuditEvent.objects.filter(phase=Phase.OUTCOME).values("operation")
    left = AuditEvent.objects.filter(phase=Phase.INTENT).exclude(operation__in=finished)
    rows = list(left.order_by("id")[:SHOWN])
    if not rows:
        return []
    named = ", ".join(f"#{row.id} {row.action} {row.bucket}/{row.key}" for row in rows)
    return [f"{left.count()} audit intents have no outcome: {named}"]


def unexpected_rows() -> list[str]:
    """No storage call failed, and nothing was refused or denied but used-up links.

    The scenario asks nothing the portal should refuse: any failure, refusal or denial in the
    trail (a CSRF check, a permission, a login) is a problem, except "used up" for a limited link.
    """
    from django.db.models import Q

    from sharing.models import AuditEvent, Outcome

    used_up = Q(outcome=Outcome.DENIED, action__startswith="link.", message__endswith=": used up.")
    rows = AuditEvent.objects.exclude(outcome__in=[Outcome.SUCCESS, Outcome.PENDING]).exclude(
        used_up
    )
    counts = Counter(rows.values_list("action", "outcome", "error_code", "message"))
    problems = [
        f"{count} audited {action} {outcome}: {code or '-'} {message}"
        for (action, outcome, code, message), count in counts.most_common(SHOWN)
    ]
    # The first of them tell what started it (a breaker opens after a few failures).
    first = rows.order_by("created_at")[:SHOWN] if problems else []
    problems += [
        f"at {row.created_at:%H:%M:%S.%f}: {row.action} {row.outcome} {row.bucket}/{row.key} "
        f"after {row.duration_ms} ms: {row.error_code or '-'} {row.message}"
        for row in first
    ]
    return problems


def links(observed: list[dict[str, Any]]) -> list[str]:
    """Each link's counter is what its recipients got, with one link.download row per count."""
    from sharing.models import AuditEvent, Outcome, ShareLink
    from sharing.services.links import token_hash

    problems = []
    rows = Counter(
        message.split(":", 1)[0]
        for message in AuditEvent.objects.filter(
            action="link.download", outcome=Outcome.SUCCESS
        ).values_list("message", flat=True)
    )
    counted = sum(ShareLink.objects.values_list("downloads", flat=True))
    if counted != sum(rows.values()):
        problems.append(f"{counted} downloads counted, {sum(rows.values())} link.download rows")
    by_hash = {link.token_hash: link for link in ShareLink.objects.all()}
    if len(by_hash) != len(observed):
        problems.append(f"{len(by_hash)} links in the database, {len(observed)} created by locust")
    for seen in observed:
        link = by_hash.get(token_hash(seen["token"]))
        if link is None:
            problems.append(f"a link locust created is not in the database ({seen})")
            continue
        audited = rows[f"Link {link.id}"]
        if not link.downloads == audited == seen["downloads"]:
            problems.append(
                f"link {link.id}: counter {link.downloads}, {audited} link.download rows, "
                f"{seen['downloads']} downloads answered"
            )
        if seen["limit"] and link.downloads > seen["limit"]:
            problems.append(f"link {link.id}: {link.downloads} downloads over its limit")
        if seen["gone"] and link.downloads != seen["limit"]:
            problems.append(
                f"link {link.id}: answered 'used up' {seen['gone']} times after "
                f"{link.downloads} of {seen['limit']} downloads"
            )
    return problems[: SHOWN * 2]


def uploads(uploaded: list[list[Any]]) -> list[str]:
    """Every upload the portal completed is in S3 with its size, and none was left open."""
    from sharing import s3
    from sharing.models import PendingUpload

    problems = []
    for bucket, key, size in uploaded:
        info = s3.head(bucket, key)
        if info is None or info.size != size:
            found = "missing" if info is None else f"{info.size} bytes"
            problems.append(f"uploaded {bucket}/{key} ({size} bytes) is {found} in S3")
    left = PendingUpload.objects.count()
    if left:
        problems.append(f"{left} uploads were started and never completed")
    return problems[: SHOWN * 2]


def storage_times(*, since: datetime.datetime) -> list[list[str]]:
    """Return, per audited storage action since then, the calls and their p50/p95 in ms."""
    from sharing.models import AuditEvent, Phase

    durations: dict[str, list[int]] = {}
    rows = AuditEvent.objects.filter(
        phase=Phase.OUTCOME, duration_ms__isnull=False, created_at__gte=since
    )
    for action, duration in rows.values_list("action", "duration_ms"):
        durations.setdefault(action, []).append(duration)
    table = []
    for action, values in sorted(durations.items()):
        values.sort()
        p50, p95 = (values[max(0, math.ceil(f * len(values)) - 1)] for f in (0.5, 0.95))
        table.append([action, str(len(values)), str(p50), str(p95)])
    return table
