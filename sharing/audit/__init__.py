"""The only writer of audit rows: an intent row before each S3 call, an outcome row after it.

What the rows say is decided here; how they are stored, MAC'd, sealed and verified is in
audit/trail.py.
"""

import datetime
import time
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest
from django.utils import timezone

from sharing import s3
from sharing.audit import trail
from sharing.audit.trail import HASHED_FIELDS, Problem
from sharing.logs import redact
from sharing.models import AuditEvent, Outcome, Phase

__all__ = [
    "HASHED_FIELDS",
    "Actor",
    "Event",
    "Problem",
    "client_ip",
    "csrf_failure",
    "form_refusal",
    "reconcile",
    "record",
    "record_many",
    "refusals",
    "s3_batch",
    "s3_call",
    "seal",
    "verify",
]
UNSEALED_LIMIT = datetime.timedelta(minutes=10)
REFUSED_VALUE_CHARS = 100  # enough to recognise a refused name; the message holds 500 in all
# A field is secret when its widget hides it or its name says so: its value is never recorded.
SECRET_FIELD_WORDS = ("password", "token", "secret")


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: the user (or None for the system) with address and browser."""

    user: Any = None
    ip: str | None = None
    user_agent: str = ""
    name: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> "Actor":
        # getattr: a CSRF failure may be answered before the session's user is known.
        user = getattr(request, "user", None)
        user = user if user is not None and user.is_authenticated else None
        return cls(
            user=user,
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
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


def _append(**fields: Any) -> None:
    trail.append([fields])


def _actor_fields(actor: Actor) -> dict[str, Any]:
    return {
        "actor_id": actor.user.pk if actor.user is not None else None,
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


def _event_fields(event: Event) -> dict[str, Any]:
    return {
        "phase": Phase.EVENT,
        "action": event.action,
        "outcome": event.outcome,
        "bucket": event.bucket[:63],
        "key": event.key[:1024],
        "message": event.message[:500],
        "error_code": event.error_code[:100],
        **_actor_fields(event.actor),
    }


def record_many(events: list[Event]) -> None:
    """Append several self-contained events in one insert."""
    trail.append([_event_fields(event) for event in events])


def form_refusal(
    *, actor: Actor, action: str, form: forms.Form, bucket: str = "", key: str = ""
) -> None:
    """Record input a form refused: each field's errors and value, never a secret field's value."""
    record(
        actor=actor,
        action=action,
        outcome=Outcome.REFUSED,
        bucket=bucket,
        key=_printable(key),
        message=_printable(_form_problems(form)),
    )


@contextmanager
def refusals(
    *,
    actor: Actor,
    action: str,
    errors: type[Exception] | tuple[type[Exception], ...],
    bucket: str = "",
    key: str = "",
) -> Iterator[None]:
    """Record a refusal for any of `errors` raised in the block (checks made before any S3 call)."""
    try:
        yield
    except errors as error:
        messages = getattr(error, "messages", None) or [_message_of(error, str(error))]
        record(
            actor=actor,
            action=action,
            outcome=Outcome.REFUSED,
            bucket=bucket,
            key=_printable(key),
            message=_printable(" ".join(messages)),
        )
        raise


def csrf_failure(*, request: HttpRequest, reason: str) -> None:
    """Record a request the CSRF check refused: its path and Django's reason, without tokens."""
    path, why = redact(request.path), redact(reason)  # the logs' rule: one place for it
    record(
        actor=Actor.from_request(request),
        action="csrf",
        outcome=Outcome.DENIED,
        message=_printable(f"{request.method} {path}: {why}"),
    )


def _printable(text: str) -> str:
    """Return text with control, invisible and line-separator characters as escapes (\\n, \\u202e)."""
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp")
        else char
        for char in text
    )


def _is_secret(form: forms.Form, name: str) -> bool:
    field = form.fields.get(name)
    hidden = field is not None and isinstance(field.widget, forms.PasswordInput)
    return hidden or any(word in name.lower() for word in SECRET_FIELD_WORDS)


def _error_text(error: ValidationError, *, hide_value: bool) -> str:
    message, params = error.message, dict(error.params or {})
    if hide_value and "value" in params:
        params["value"] = "…"  # Django's validators pass the submitted value to their messages
    return str(message % params if params else message)


def _form_problems(form: forms.Form) -> str:
    secrets = [
        value
        for name in form.fields
        if _is_secret(form, name) and (value := str(form.data.get(form.add_prefix(name)) or ""))
    ]
    problems = []
    for name, errors in form.errors.as_data().items():
        problem = _field_problem(form, name, errors)
        if any(secret in problem for secret in secrets):
            # A field whose value or message happens to contain a secret keeps only its codes.
            codes = ", ".join(error.code or "invalid" for error in errors)
            problem = (
                f"refused ({codes})" if name == NON_FIELD_ERRORS else f"{name}: refused ({codes})"
            )
        problems.append(problem)
    return "; ".join(problems)


def _field_problem(form: forms.Form, name: str, errors: list[ValidationError]) -> str:
    secret = _is_secret(form, name)
    text = " ".join(_error_text(error, hide_value=secret) for error in errors)
    if name == NON_FIELD_ERRORS:
        return text
    value = "" if secret else str(form.data.get(form.add_prefix(name)) or "")
    if not value:
        return f"{name}: {text}"
    if len(value) > REFUSED_VALUE_CHARS:
        value = value[:REFUSED_VALUE_CHARS] + "…"
    return f"{name} “{value}”: {text}"


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
            message=_message_of(error, "The portal failed while running this action.")[:500],
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
    trail.append(
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
        message = _message_of(error, "The portal failed here.")
        failed = dict.fromkeys(keys, code)
        trail.append(_batch_outcomes(operations, failed, common, message, started))
        raise
    trail.append(_batch_outcomes(operations, batch.failed, common, "", started))


def _message_of(error: BaseException, default: str) -> str:
    # A service's refusal (LinkError, UploadError, ...) says why in words fit for the trail.
    message = getattr(error, "message", None)
    return str(message) if message else default


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


def seal() -> int:
    """Chain the committed rows not yet sealed; return how many were sealed."""
    return trail.seal()


def verify(*, unsealed_limit: datetime.timedelta = UNSEALED_LIMIT) -> list[Problem]:
    """Return what is wrong with the trail: edited, forged, copied, deleted, reordered or late rows."""
    return trail.verify(unsealed_limit=unsealed_limit)


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
