"""Storage failures: unreachable, slow, throttling, refused credentials."""

import socket
import threading
import time

import pytest
from botocore.awsrequest import AWSResponse
from django.urls import reverse

from sharing import s3
from sharing.models import AuditEvent
from tests.conftest import client_for


@pytest.fixture
def dead_endpoint(settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there any more: connection refused
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_endpoint(settings):
    """An endpoint that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings.S3_READ_TIMEOUT = 1
    settings.S3_MAX_ATTEMPTS = 1
    yield
    stop.set()
    thread.join()
    listener.close()


def test_unreachable_storage_gives_503_page_and_failure_row(client, admin_user, dead_endpoint):
    response = client_for(client, admin_user).get(reverse("bucket_list"))
    assert response.status_code == 503
    assert b"Storage unavailable" in response.content
    assert b"cannot be reached" in response.content
    row = AuditEvent.objects.filter(action="bucket.list").order_by("id").last()
    assert (row.phase, row.outcome) == ("outcome", "failure")
    assert row.error_code == "EndpointConnectionError"


def test_pages_needing_only_the_database_still_work(client, admin_user, dead_endpoint):
    assert client.get(reverse("login")).status_code == 200
    assert client_for(client, admin_user).get(reverse("bucket_create")).status_code == 200
    assert client.get(reverse("admin:sharing_auditevent_changelist")).status_code == 200


def test_silent_storage_fails_within_seconds(client, admin_user, silent_endpoint):
    started = time.monotonic()
    response = client_for(client, admin_user).post(reverse("bucket_create"), {"name": "slow-one"})
    assert response.status_code == 503
    assert time.monotonic() - started < 10
    assert AuditEvent.objects.filter(action="bucket.create", outcome="failure").exists()


def _always(status: int, code: str):
    calls = []

    def respond(request, **kwargs):
        calls.append(request.url)
        body = f"<Error><Code>{code}</Code><Message>x</Message></Error>".encode()
        return AWSResponse(request.url, status, {}, _Raw(body))

    return respond, calls


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def test_throttling_is_retried_then_reported(settings, moto_s3):
    settings.S3_MAX_ATTEMPTS = 3
    respond, calls = _always(503, "SlowDown")
    events = s3.client().meta.events
    events.register_first("before-send.s3", respond)
    try:
        with pytest.raises(s3.S3Error) as caught:
            s3.list_buckets()
    finally:
        events.unregister("before-send.s3", respond)
    assert len(calls) == 3
    assert (caught.value.status, caught.value.code) == (503, "SlowDown")
    assert "busy" in caught.value.message


def test_refused_credentials_are_a_503_with_plain_words(settings, moto_s3):
    respond, _ = _always(403, "InvalidAccessKeyId")
    events = s3.client().meta.events
    events.register_first("before-send.s3", respond)
    try:
        with pytest.raises(s3.S3Error) as caught:
            s3.list_buckets()
    finally:
        events.unregister("before-send.s3", respond)
    assert caught.value.status == 503
    assert "credentials" in caught.value.message
