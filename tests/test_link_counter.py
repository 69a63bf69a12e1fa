"""Downloads counted together (services/link_counter.py): exact under concurrency, failures shared."""

import threading

import pytest
from django.db import connection

from sharing import audit
from sharing.models import AuditEvent, ShareLink
from sharing.services import link_counter, links
from tests.conftest import executed_statements
from tests.test_links import BODY, KEY, as_actor, in_hours, raw, stranger

WAIT = 10  # seconds a test waits for its threads before calling them stuck


def make_link(alice, **options) -> links.NewLink:
    from sharing import services

    services.bucket_create(actor=as_actor(alice), name="team-files")
    raw().put_object(Bucket="team-files", Key=KEY, Body=BODY)
    return links.link_create(
        actor=as_actor(alice), bucket="team-files", key=KEY, expires_at=in_hours(1), **options
    )


def claim_for(new: links.NewLink, index: int) -> link_counter.Claim:
    link = new.link
    event = audit.Event(stranger(f"198.51.100.{index + 1}"), "link.download", "success", KEY, KEY)
    return link_counter.Claim(link_id=link.pk, token_hash=link.token_hash, event=event)


def run_together(claims: list[link_counter.Claim]) -> list[object]:
    """Count the claims from as many threads at once; return each one's result or exception."""
    start = threading.Barrier(len(claims))
    results: list[object] = [None] * len(claims)

    def attempt(index: int) -> None:
        try:
            start.wait()
            results[index] = link_counter.count_download(claims[index])
        except Exception as error:  # the test looks at what each thread got
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(len(claims))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a download never got its answer"
    return results


@pytest.mark.django_db(transaction=True)
def test_a_lone_download_is_counted_with_its_row(moto_s3, alice):
    new = make_link(alice, max_downloads=1)
    with executed_statements() as statements:
        assert link_counter.count_download(claim_for(new, 0)) is True
    if connection.vendor == "postgresql":
        # Counter, row and chain head in one statement, committed on its own.
        assert statements == ["WITH"]
    else:
        # One transaction: the counter, then the head read, the row, the head moved.
        assert statements == ["BEGIN", "UPDATE", "SELECT", "INSERT", "UPDATE", "COMMIT"]
    assert link_counter.count_download(claim_for(new, 1)) is False  # the limit was 1
    assert ShareLink.objects.get().downloads == 1
    row = AuditEvent.objects.get(action="link.download")
    assert (row.outcome, row.client_ip) == ("success", "198.51.100.1")
    assert audit.verify() == []


@pytest.mark.django_db(transaction=True)
def test_parallel_downloads_count_exactly_the_limit_with_one_row_each(moto_s3, alice):
    new = make_link(alice, max_downloads=5)
    results = run_together([claim_for(new, n) for n in range(16)])
    assert results.count(True) == 5 and results.count(False) == 11
    assert ShareLink.objects.get().downloads == 5
    rows = AuditEvent.objects.filter(action="link.download", outcome="success")
    assert rows.count() == 5
    assert len(set(rows.values_list("client_ip", flat=True))) == 5  # each its own row
    assert audit.verify() == []


@pytest.mark.django_db(transaction=True)
def test_unlimited_link_counts_every_parallel_download(moto_s3, alice):
    new = make_link(alice)
    results = run_together([claim_for(new, n) for n in range(12)])
    assert results == [True] * 12
    assert ShareLink.objects.get().downloads == 12
    assert AuditEvent.objects.filter(action="link.download").count() == 12
    assert audit.verify() == []


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_fails_its_downloads_and_the_next_one_works(moto_s3, alice, monkeypatch):
    new = make_link(alice)
    real = link_counter.download_guard

    def broken(**kwargs) -> audit.Guard:
        raise RuntimeError("database went away")

    monkeypatch.setattr(link_counter, "download_guard", broken)
    results = run_together([claim_for(new, n) for n in range(6)])
    assert all(isinstance(result, RuntimeError) for result in results)
    assert ShareLink.objects.get().downloads == 0
    assert not AuditEvent.objects.filter(action="link.download").exists()

    monkeypatch.setattr(link_counter, "download_guard", real)
    assert run_together([claim_for(new, n) for n in range(3)]) == [True] * 3
    assert ShareLink.objects.get().downloads == 3
