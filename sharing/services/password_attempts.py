"""Wrong passwords on a link or a file request: counted per target and per address, throttled.

One rule for both: after LINK_PASSWORD_ATTEMPTS wrong tries within LINK_PASSWORD_WINDOW seconds,
for the target or from the address, further tries are refused until the window passes.
"""

from django.conf import settings
from django.core.cache import cache

from sharing.audit import Actor


def attempt_keys(*, scope: str, target: object, actor: Actor) -> tuple[str, str]:
    """Return the counters a try on `target` (a link, a request) from this address counts in."""
    return f"{scope}-password:{target}", f"{scope}-password:address:{actor.ip or 'unknown'}"


def attempts_exhausted(keys: tuple[str, ...]) -> bool:
    """Return whether any of these counters has reached the limit."""
    return any((cache.get(name) or 0) >= settings.LINK_PASSWORD_ATTEMPTS for name in keys)


def attempt_failed(keys: tuple[str, ...]) -> None:
    """Count one wrong password in each counter, for the length of the window."""
    for name in keys:
        cache.add(name, 0, timeout=settings.LINK_PASSWORD_WINDOW)
        try:
            cache.incr(name)
        except ValueError:  # expired between add and incr
            cache.set(name, 1, timeout=settings.LINK_PASSWORD_WINDOW)
