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


def test_a_stalled_storage_costs_a_page_one_read_timeout(
    client, admin_user, silent_endpoint, settings
):
    settings.S3_MAX_ATTEMPTS = 3
    started = time.monotonic()
    response = client_for(client, admin_user).get(reverse("bucket_list"))
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    # One attempt of S3_READ_TIMEOUT (1 s here), not three: a timeout is not retried in a page.
    assert elapsed < 2.5
    row = AuditEvent.objects.filter(action="bucket.list", phase="outcome").get()
    assert row.error_code == "ReadTimeoutError"


def test_after_a_timeout_the_rest_of_the_request_does_not_wait(settings, silent_endpoint):
    with s3.request_budget():
        with pytest.raises(s3.S3Error):
            s3.list_buckets()
        started = time.monotonic()
        with pytest.raises(s3.S3Error) as caught:
            s3.head("any-bucket", "key")
    assert time.monotonic() - started < 0.5
    assert caught.value.code == "TimeBudgetSpent"
    assert caught.value.status == 503


def test_a_spent_budget_refuses_page_calls_but_not_long_operations(settings, moto_s3):
    s3.create_bucket("budget-test")
    s3.put_empty("budget-test", "a.txt")
    with s3.request_budget(0):
        with pytest.raises(s3.S3Error) as caught:
            s3.head("budget-test", "a.txt")
        assert caught.value.code == "TimeBudgetSpent"
        s3.copy("budget-test", "a.txt", "budget-test", "b.txt")  # long: its own budget
    assert s3.head("budget-test", "b.txt") is not None


def test_repeated_failures_open_the_breaker_for_everyone(
    client, admin_user, silent_endpoint, settings
):
    settings.S3_BREAKER_FAILURES = 3
    admin = client_for(client, admin_user)
    for _ in range(3):
        assert admin.get(reverse("bucket_list")).status_code == 503
    assert s3.breaker_is_open()
    started = time.monotonic()
    response = admin.get(reverse("bucket_list"))
    assert time.monotonic() - started < 0.5
    assert response.status_code == 503
    assert b"stopped trying" in response.content
    row = AuditEvent.objects.filter(action="bucket.list", phase="outcome").order_by("id").last()
    assert row.error_code == "StorageUnavailable"
    # Pages that need only the database answer at once.
    started = time.monotonic()
    assert admin.get(reverse("link_list")).status_code == 200
    assert admin.get(reverse("admin:sharing_auditevent_changelist")).status_code == 200
    assert time.monotonic() - started < 1


def test_the_breaker_closes_after_its_cool_down_when_storage_answers(
    client, admin_user, settings, moto_s3
):
    settings.S3_BREAKER_FAILURES = 2
    settings.S3_BREAKER_COOL_DOWN = 1
    respond, _ = _always(500, "InternalError")
    events = s3.client().meta.events
    events.register_first("before-send.s3", respond)
    try:
        for _ in range(2):
            with pytest.raises(s3.S3Error):
                s3.list_buckets()
    finally:
        events.unregister("before-send.s3", respond)
    with pytest.raises(s3.S3Error) as caught:
        s3.list_buckets()
    assert caught.value.code == "StorageUnavailable"
    time.sleep(1.2)
    assert client_for(client, admin_user).get(reverse("bucket_list")).status_code == 200
    assert not s3.breaker_is_open()


def test_client_errors_do_not_count_as_storage_failures(settings, moto_s3):
    settings.S3_BREAKER_FAILURES = 2
    for _ in range(3):
        with pytest.raises(s3.S3Error) as caught:
            s3.list_page("no-such-bucket")
        assert caught.value.status == 404
    assert not s3.breaker_is_open()


@pytest.mark.parametrize(
    "path",
    ["/b/b%C3%BCcket/", "/b/bucket%20name/share/?key=x", "/b/a%2Fb/object/?key=x", "/b/x%00y/"],
)
def test_names_storage_would_refuse_are_404_without_asking_it(
    client, admin_user, dead_endpoint, path
):
    response = client_for(client, admin_user).get(path)
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(phase="intent").exists()


def test_a_name_botocore_refuses_is_a_400_not_a_storage_outage(settings, moto_s3):
    with pytest.raises(s3.S3Error) as caught:
        s3.list_page("bucket name")
    assert caught.value.status == 400
    assert not s3.breaker_is_open()


def test_not_implemented_answers_do_not_open_the_breaker(settings, moto_s3):
    settings.S3_BREAKER_FAILURES = 2
    respond, calls = _always(501, "NotImplemented")
    events = s3.client().meta.events
    events.register_first("before-send.s3", respond)
    try:
        for _ in range(3):
            with pytest.raises(s3.S3Error) as caught:
                s3.list_buckets()
            assert caught.value.status == 501
    finally:
        events.unregister("before-send.s3", respond)
    assert not s3.breaker_is_open()


def test_the_budget_counts_time_waiting_for_storage_not_for_the_cpu(settings, moto_s3):
    s3.create_bucket("budget-test")
    with s3.request_budget(0.5):
        time.sleep(0.6)  # a slow page (a busy CPU, the database) before its first S3 call
        assert s3.list_page("budget-test").objects == []
