"""The socket guard: no test reaches beyond this machine, and moto-backed pages need no more."""

import socket

import boto3
import pytest
from django.urls import reverse
from pytest_socket import SocketConnectBlockedError

from sharing.models import AuditEvent
from tests.conftest import client_for

TEST_NET = ("192.0.2.1", 80)  # RFC 5737 documentation address: routed nowhere


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_a_connection_beyond_this_machine_is_refused():
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(TEST_NET, timeout=1)


def test_connections_to_this_machine_still_work():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname(), timeout=1):
            pass


def test_object_page_measures_public_access_on_moto(client, alice, bucket):
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=bucket, Key="notes.txt", Body=b"hello"
    )
    response = client_for(client, alice).get(
        reverse("object_detail", args=[bucket]), {"key": "notes.txt"}
    )
    assert response.status_code == 200
    # The anonymous probe was answered (by moto), not lost on the way to s3.amazonaws.com.
    assert 'data-testid="public-state">private<' in response.content.decode()
    outcome = AuditEvent.objects.get(action="object.public_state", phase="outcome")
    assert outcome.message == "An anonymous request got HTTP 403."
