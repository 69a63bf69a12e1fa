"""Storage that hangs must not hang the portal: a circuit breaker and a time budget per request.

The breaker is shared by every thread and process through the default cache (a file cache under
var/ by default, Redis with REDIS_URL): after S3_BREAKER_FAILURES failed calls (timeouts, refused
connections, 500/502/503/504 answers) within S3_BREAKER_WINDOW seconds, every S3 call is refused at once for
S3_BREAKER_COOL_DOWN seconds, so that a stalled storage cannot hold every worker thread while
the pages that need only the database keep answering. The first call after the cool-down tries
again; one more failure opens the breaker again, a success closes it.

Within a request (see StorageErrorMiddleware), S3 calls share a time budget: no attempt starts
once the request's attempts took S3_REQUEST_BUDGET seconds in all (time spent waiting for S3, so
that a busy CPU does not count), and once an attempt timed out, the rest of the request does not
wait for storage again. Long operations (copies, multipart
completion, batch deletes) run under `long_call()` with their own client and no request budget.

All of this hangs on botocore's public event hooks, registered on each client the gateway builds.
"""

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ConnectTimeoutError, ReadTimeoutError
from django.conf import settings
from django.core.cache import cache

from sharing.s3.core import UNAVAILABLE, S3Error

__all__ = ["BREAKER_OPEN_MESSAGE", "breaker_is_open", "long_call", "register", "request_budget"]

BREAKER_OPEN_MESSAGE = (
    "The storage service is not answering; the portal stopped trying for a few seconds. "
    "Try again in a minute."
)
BUDGET_SPENT_MESSAGE = UNAVAILABLE
OUTAGE_STATUSES = frozenset({500, 502, 503, 504})
_OPEN_KEY = "s3-breaker:open"
_FAILURES_KEY = "s3-breaker:failures"


@dataclass
class _Budget:
    seconds: float  # S3 time a request may spend
    spent: float = 0.0  # in attempts so far (waiting for S3, not for the CPU or the database)
    attempt_started: float = 0.0
    waited_in_vain: bool = False  # an attempt timed out

    def used_up(self) -> bool:
        return self.waited_in_vain or self.spent >= self.seconds


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("s3_budget", default=None)


@contextlib.contextmanager
def request_budget(seconds: float | None = None) -> Iterator[None]:
    """Give the S3 calls made inside one budget of `seconds` (S3_REQUEST_BUDGET by default)."""
    seconds = settings.S3_REQUEST_BUDGET if seconds is None else seconds
    token = _budget.set(_Budget(seconds=seconds))
    try:
        yield
    finally:
        _budget.reset(token)


@contextlib.contextmanager
def long_call() -> Iterator[None]:
    """Run a long S3 operation outside the request's budget (its client has longer timeouts)."""
    token = _budget.set(None)
    try:
        yield
    finally:
        _budget.reset(token)


def breaker_is_open() -> bool:
    """Return whether S3 calls are being refused after repeated failures."""
    return bool(cache.get(_OPEN_KEY))


def _failed() -> None:
    window = settings.S3_BREAKER_WINDOW
    cache.add(_FAILURES_KEY, 0, timeout=window)
    try:
        failures = cache.incr(_FAILURES_KEY)
    except ValueError:  # expired between add and incr
        cache.set(_FAILURES_KEY, 1, timeout=window)
        failures = 1
    if failures >= settings.S3_BREAKER_FAILURES:
        cache.set(_OPEN_KEY, True, timeout=settings.S3_BREAKER_COOL_DOWN)


def _succeeded() -> None:
    if cache.get(_FAILURES_KEY):
        cache.delete(_FAILURES_KEY)


def _before_send(**kwargs: Any) -> None:
    if breaker_is_open():
        raise S3Error(BREAKER_OPEN_MESSAGE, status=503, code="StorageUnavailable")
    budget = _budget.get()
    if budget is None:
        return
    if budget.used_up():
        raise S3Error(BUDGET_SPENT_MESSAGE, status=503, code="TimeBudgetSpent")
    budget.attempt_started = time.monotonic()


def _after_attempt(caught_exception: Exception | None = None, **kwargs: Any) -> bool | None:
    # Called after every attempt, first among botocore's retry handlers: False means "do not
    # retry". Within a request, a timeout ends the waiting for storage (the retry and any later
    # call would wait as long), while fast failures (a refused connection, SlowDown) are retried
    # as botocore decides, as long as the budget lasts.
    budget = _budget.get()
    if budget is None:
        return None
    if budget.attempt_started:  # not when _before_send refused the attempt
        budget.spent += time.monotonic() - budget.attempt_started
        budget.attempt_started = 0.0
    if isinstance(caught_exception, (ConnectTimeoutError, ReadTimeoutError)):
        budget.waited_in_vain = True
    return False if budget.used_up() else None


def _after_call(http_response: Any = None, **kwargs: Any) -> None:
    # 501 Not Implemented is an answer (SeaweedFS has no public access block), not an outage.
    if http_response is not None and http_response.status_code in OUTAGE_STATUSES:
        _failed()
    else:
        _succeeded()


def _after_call_error(exception: Exception | None = None, **kwargs: Any) -> None:
    if isinstance(exception, BotoCoreError):  # not S3Error: a refusal of ours is no failure
        _failed()


def register(client: Any) -> None:
    """Hook the breaker and the budget into a boto3 client's events."""
    events = client.meta.events
    events.register("before-send.s3", _before_send)
    events.register_first("needs-retry.s3", _after_attempt)
    events.register("after-call.s3", _after_call)
    events.register("after-call-error.s3", _after_call_error)
