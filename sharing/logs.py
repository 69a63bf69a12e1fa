"""Secrets kept out of logs and error reports: share tokens, signed upload tokens, passwords.

A share link's token is its whole secret, and it travels in the path (/s/<token>/…), so every log
line that names a URL (gunicorn's access and error logs, Django's "Not Found: /s/…", error emails,
the debug page) gets it redacted here; so do secret query values (?token=, ?password=, presigned
signatures). gunicorn loads this module before Django is set up (--logger-class): nothing here
reads settings at import time.
"""

import logging
import re
from typing import Any

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from gunicorn.glogging import Logger as GunicornBaseLogger

# Paths whose next segment is a secret: share links and file requests (and every route under them), the signed
# tokens of upload answers and proxied parts, and password reset links. tests/test_logs.py fails
# for a URL with a <token> that these do not cover.
TOKEN_PATH_PREFIXES = ("s", "r", "uploads/answer", "uploads/proxy", "account/reset/link")
KEPT_CHARS = 4  # enough to tell two links apart in a log, far too few to guess the rest
REDACTED = "[redacted]"  # no angle brackets: it also goes into HTML reports
SENSITIVE_NAME = re.compile(r"token|passw|secret|signature|credential|session", re.IGNORECASE)

_PREFIXES = "|".join(re.escape(prefix) for prefix in TOKEN_PATH_PREFIXES)
# Anywhere in a line, so that a full URL (a Referer, an error report's "Request URL") is covered.
_TOKEN_IN_PATH = re.compile(rf"(/(?:{_PREFIXES})/+)([^\s/?#\"'<>&\\\[]+)")
# name=value where the name says it is secret, in a query string, a form body or a cookie (after
# "?", "&", ";" or a quote, or at the start): not `token=token` in a traceback's source line.
_SECRET_VALUE = re.compile(
    r"(?:^|(?<=[?&;'\"])|(?<=; ))"
    r"([\w.-]*(?:token|passw|secret|signature|credential|session)[\w.-]*=)"
    r"([^&\s\"'#;,<>]*)",
    re.IGNORECASE | re.MULTILINE,
)
_traceback_formatter = logging.Formatter()


def _already_redacted(match: re.Match[str]) -> bool:
    return match.string.startswith(REDACTED, match.end())


def _token_replaced(match: re.Match[str]) -> str:
    if _already_redacted(match):
        return match.group(0)
    token = match.group(2)
    kept = token[:KEPT_CHARS] if len(token) > 2 * KEPT_CHARS else ""
    return f"{match.group(1)}{kept}{REDACTED}"


def _value_replaced(match: re.Match[str]) -> str:
    if _already_redacted(match):
        return match.group(0)
    return f"{match.group(1)}{REDACTED}"


def redact(text: str) -> str:
    """Return text with share and upload tokens in paths, and secret name=value pairs, redacted."""
    if "/" not in text and "=" not in text:
        return text
    return _SECRET_VALUE.sub(_value_replaced, _TOKEN_IN_PATH.sub(_token_replaced, text))


class RedactSecretsFilter(logging.Filter):
    """Redact a record's message, traceback and stack (see redact) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is logging's to report
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: the traceback is written as redacted here.
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger whose access and error logs go through RedactSecretsFilter."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        # On the loggers, not their handlers: gunicorn replaces its handlers on a reload.
        for log in (self.error_log, self.access_log):
            log.addFilter(RedactSecretsFilter())


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hide variables and form fields whose names say they are secret (token, password…)."""

    def get_post_parameters(self, request: Any) -> Any:
        return self._cleansed(super().get_post_parameters(request))

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, self._cleansed_variable(name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def cleansed_query(self, request: Any) -> Any:
        """Return the request's query parameters with secret-named values hidden."""
        return self._cleansed(request.GET)

    def _cleansed_variable(self, name: str, value: Any) -> Any:
        # Down into plain containers too: a view's kwargs hold its token.
        if SENSITIVE_NAME.search(name):
            return self.cleansed_substitute
        if type(value) is dict:
            return {key: self._cleansed_variable(str(key), item) for key, item in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self._cleansed_variable("", item) for item in value)
        return value

    def _cleansed(self, parameters: Any) -> Any:
        if not any(SENSITIVE_NAME.search(name) for name in parameters):
            return parameters
        cleansed = parameters.copy()
        for name in cleansed:
            if SENSITIVE_NAME.search(name):
                cleansed[name] = self.cleansed_substitute
        return cleansed


class RedactingExceptionReporter(ExceptionReporter):
    """Django's error report (error emails, the debug page) with tokens and secrets redacted."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if self.request is not None and hasattr(self.filter, "cleansed_query"):
            data["request_GET_items"] = self.filter.cleansed_query(self.request).items()
        return data

    def get_traceback_html(self) -> str:
        return redact(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return redact(super().get_traceback_text())
