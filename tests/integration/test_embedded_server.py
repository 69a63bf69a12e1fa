"""The embedded SeaweedFS server: loopback only, keys enforced, data kept across restarts."""

import subprocess
from pathlib import Path

import pytest

from sharing.embedded import EmbeddedS3, EmbeddedS3Error, free_s3_port, port_block
from tests.conftest import server_client

pytestmark = pytest.mark.integration


def listening_addresses(port: int) -> set[str]:
    output = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True
    ).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in output.splitlines() if line.strip()}


def test_every_listener_is_on_loopback_only(embedded_s3):
    block = port_block(int(embedded_s3.endpoint_url.rsplit(":", 1)[1]))
    for name in ("s3", "master", "volume", "filer"):
        assert listening_addresses(block[name]) == {"127.0.0.1"}, name
    for default_port in (8888, 9333, 23646):
        assert listening_addresses(default_port) == set()


def test_keys_are_generated_once_and_kept_private(embedded_s3):
    config = next(arg for arg in embedded_s3.command() if arg.startswith("-s3.config="))
    path = Path(config.split("=", 1)[1])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert embedded_s3.credentials.secret_key in path.read_text()
    assert len(embedded_s3.credentials.secret_key) >= 32


def test_data_survives_a_restart_and_ports_are_checked(tmp_path):
    server = EmbeddedS3(tmp_path / "data", s3_port=free_s3_port())
    server.start()
    try:
        client = server_client(server)
        client.create_bucket(Bucket="kept")
        client.put_object(Bucket="kept", Key="a/b.txt", Body=b"still here")
        twin = EmbeddedS3(tmp_path / "other", s3_port=int(server.endpoint_url.rsplit(":", 1)[1]))
        with pytest.raises(EmbeddedS3Error):
            twin.start(timeout=10)
    finally:
        server.stop()
    server.start()
    try:
        body = server_client(server).get_object(Bucket="kept", Key="a/b.txt")["Body"].read()
        assert body == b"still here"
    finally:
        server.stop()
