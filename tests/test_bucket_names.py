"""S3's bucket naming rules, checked by the form before any S3 call (corpus from SECURITY.md)."""

import pytest
from django.urls import reverse

from sharing.forms import bucket_name_problem
from tests.conftest import audit_rows, client_for

INVALID = [
    "",
    "ab",
    "a" * 64,
    "MyBucket",
    "my_bucket",
    "-bucket",
    "bucket-",
    "my..bucket",
    "192.168.5.4",
    "xn--abc",
    "sthree-x",
    "amzn-s3-demo-x",
    "x-s3alias",
    "x--ol-s3",
    "x.mrap",
    "x--x-s3",
    "bucket name",
    "bücket",
    "my.-bucket",
    "my-.bucket",
    "x--table-s3",
]
VALID = ["abc", "a" * 63, "my-bucket", "my.bucket.2026", "123bucket", "b-1-2-3"]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_have_a_reason(name):
    assert bucket_name_problem(name)


@pytest.mark.parametrize("name", VALID)
def test_valid_names_pass(name):
    assert bucket_name_problem(name) is None


@pytest.mark.parametrize("name", INVALID)
def test_create_form_refuses_without_touching_s3(client, alice, moto_s3, name):
    response = client_for(client, alice).post(reverse("bucket_create"), {"name": name})
    assert response.status_code == 400
    assert b"form-errors" in response.content
    # The refusal is the only row: no intent, so S3 was never asked.
    assert audit_rows(action="bucket.create") == [("bucket.create", "event", "refused")]


def test_reason_is_specific():
    assert "3 to 63" in bucket_name_problem("ab")
    assert "IP address" in bucket_name_problem("192.168.5.4")
    assert "reserved" in bucket_name_problem("xn--abc")
