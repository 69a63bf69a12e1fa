"""The embedded server's ports other than S3: each attack a local process could make, replayed.

Every attack is shown to fail, next to the same request made with the keys and certificates the
launcher generated (so a test cannot pass because the request itself was wrong), while the
portal's own S3 access keeps working.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import urllib3
from urllib3.filepost import encode_multipart_formdata

from sharing import embedded_security
from sharing.embedded import HOST, EmbeddedS3, EmbeddedS3Error, free_s3_port
from tests.conftest import server_client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

SECRET = b"the quarterly numbers, not for anyone else"
SHELL_TIMEOUT = 10  # without the certificates weed shell waits for the master forever
GRPC_SOCKET = "/tmp/seaweedfs-{name}-grpc-{port}.sock"
# Sent to a gRPC port: a plaintext gRPC server answers the HTTP/2 preface with a SETTINGS frame.
GRPC_PROBE = r"""
import json, socket, ssl, sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def answers(address, tls, cert):
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family) as sock:
            sock.settimeout(3)
            sock.connect(address if isinstance(address, str) else tuple(address))
            if tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                context.set_alpn_protocols(["h2"])
                if cert:
                    context.load_cert_chain(*cert)
                sock = context.wrap_socket(sock)
            sock.sendall(PREFACE)
            frame = b""
            while len(frame) < 9:
                chunk = sock.recv(9 - len(frame))
                if not chunk:
                    break
                frame += chunk
            return len(frame) == 9 and frame[3] == 4
    except OSError:
        return False


targets, cert = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    json.dumps(target): {
        "plaintext": answers(target, False, None),
        "tls without certificate": answers(target, True, None),
        "tls with certificate": answers(target, True, cert),
    }
    for target in targets
}))
"""


@pytest.fixture
def secret_object(embedded_s3):
    """A bucket and key holding SECRET, written through the S3 port with the portal's keys."""
    client = server_client(embedded_s3)
    bucket = f"security-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="report.txt", Body=SECRET)
    yield bucket, "report.txt"
    client.delete_object(Bucket=bucket, Key="report.txt")
    client.delete_bucket(Bucket=bucket)


def s3_body(server: EmbeddedS3, bucket: str, key: str) -> bytes:
    return server_client(server).get_object(Bucket=bucket, Key=key)["Body"].read()


def weed_shell(server: EmbeddedS3, commands: list[str], *, cwd: Path, home: Path) -> str:
    """Return what `weed shell`, run in cwd with HOME=home, printed for commands."""
    ports = server.ports
    process = subprocess.Popen(
        [
            server.weed,
            "shell",
            f"-master={HOST}:{ports['master']}.{ports['master.grpc']}",
            f"-filer={HOST}:{ports['filer']}.{ports['filer.grpc']}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        start_new_session=True,
    )
    try:
        output, _ = process.communicate("\n".join(commands).encode() + b"\n", SHELL_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output.decode(errors="replace")


@pytest.fixture
def outsider_dirs(tmp_path) -> tuple[Path, Path]:
    """A working directory without security.toml and an empty HOME: a neighbour's shell."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    return cwd, home


def file_id(server: EmbeddedS3, bucket: str, key: str, home: Path) -> str:
    """Return the volume fileId of the object's only chunk, asked with the client certificate."""
    output = weed_shell(
        server, [f"fs.meta.cat /buckets/{bucket}/{key}"], cwd=server.data_dir, home=home
    )
    found = re.findall(r'"fileId":\s*"([^"]+)"', output)
    assert len(found) == 1, output
    return found[0]


def security_config(server: EmbeddedS3) -> dict:
    return tomllib.loads((server.data_dir / embedded_security.SECURITY_FILE).read_text())


def volume_token(server: EmbeddedS3, fid: str, *, section: str) -> str:
    """Return an HS256 JWT for fid, as the master or filer signs it (SeaweedFileIdClaims)."""
    key = security_config(server)["jwt"]["signing"]
    key = key["read"]["key"] if section == "read" else key["key"]

    def encoded(part: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")

    signing_input = (
        encoded({"alg": "HS256", "typ": "JWT"})
        + b"."
        + encoded({"fid": fid, "exp": int(time.time()) + 30})
    )
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def outsider_request(url: str, method: str = "GET", **kwargs) -> tuple[int | None, bytes]:
    """Request as a neighbour without certificates would: no client cert, no server check."""
    http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False, timeout=5)
    try:
        response = http.request(method, url, **kwargs)
    except urllib3.exceptions.HTTPError:
        return None, b""
    return response.status, response.data


def insider_request(server: EmbeddedS3, url: str, method: str = "GET", **kwargs):
    """Request with the client certificate the launcher generated, as weed's own clients do."""
    paths = embedded_security.cert_paths(server.data_dir)
    http = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED",
        ca_certs=str(paths["ca"]),
        cert_file=str(paths["client.crt"]),
        key_file=str(paths["client.key"]),
        retries=False,
        timeout=5,
    )
    return http.request(method, url, **kwargs)


def test_weed_shell_without_the_certificates_neither_reads_nor_deletes(
    embedded_s3, secret_object, outsider_dirs, tmp_path
):
    bucket, key = secret_object
    path = f"/buckets/{bucket}/{key}"
    # The same command with the generated client certificate prints the file: it is the right one.
    assert SECRET.decode() in weed_shell(
        embedded_s3, [f"fs.cat {path}"], cwd=embedded_s3.data_dir, home=tmp_path
    )

    cwd, home = outsider_dirs
    output = weed_shell(embedded_s3, [f"fs.cat {path}", f"fs.rm {path}"], cwd=cwd, home=home)

    assert SECRET.decode() not in output
    assert s3_body(embedded_s3, bucket, key) == SECRET


def test_volume_port_neither_serves_nor_takes_a_file_by_its_id(
    embedded_s3, secret_object, tmp_path
):
    bucket, key = secret_object
    fid = file_id(embedded_s3, bucket, key, tmp_path)
    volume = f"{HOST}:{embedded_s3.ports['volume']}"
    forged = SECRET.upper()  # same length, so a successful overwrite would read back whole
    body, content_type = encode_multipart_formdata({"file": ("report.txt", forged)})

    for scheme in ("http", "https"):
        status, data = outsider_request(f"{scheme}://{volume}/{fid}")
        assert SECRET not in data, (scheme, status)
        outsider_request(
            f"{scheme}://{volume}/{fid}",
            "POST",
            body=body,
            headers={"Content-Type": content_type},
        )
    assert s3_body(embedded_s3, bucket, key) == SECRET

    # The client certificate alone is not enough either: the volume server wants its JWT.
    assert insider_request(embedded_s3, f"https://{volume}/{fid}").status == 401
    refused = insider_request(
        embedded_s3,
        f"https://{volume}/{fid}",
        "POST",
        body=body,
        headers={"Content-Type": content_type},
    )
    assert refused.status == 401
    # With a token signed by the read key the same GET returns the bytes: the fileId is right.
    read_token = volume_token(embedded_s3, fid, section="read")
    granted = insider_request(
        embedded_s3, f"https://{volume}/{fid}", headers={"Authorization": f"Bearer {read_token}"}
    )
    assert (granted.status, granted.data) == (200, SECRET)
    # And a POST signed with the write key is what would have overwritten it.
    write_token = volume_token(embedded_s3, fid, section="write")
    written = insider_request(
        embedded_s3,
        f"https://{volume}/{fid}",
        "POST",
        body=body,
        headers={"Content-Type": content_type, "Authorization": f"Bearer {write_token}"},
    )
    assert written.status == 201, written.data
    reread = insider_request(
        embedded_s3, f"https://{volume}/{fid}", headers={"Authorization": f"Bearer {read_token}"}
    )
    assert reread.data == forged


STATUS_PAGES = [
    ("master", "/", b"SeaweedFS"),
    ("master", "/cluster/status", b"Leader"),
    ("volume", "/status", None),  # None: the bucket's name, listed as a volume's collection
    ("volume", "/ui/index.html", b"SeaweedFS"),
    ("admin", "/metrics", None),  # per-bucket S3 traffic
]


@pytest.mark.parametrize(("port", "path", "telltale"), STATUS_PAGES)
def test_status_pages_say_nothing_without_the_certificates(
    embedded_s3, secret_object, port, path, telltale
):
    bucket, _ = secret_object
    telltale = telltale or bucket.encode()
    address = f"{HOST}:{embedded_s3.ports[port]}"

    for scheme in ("http", "https"):
        status, data = outsider_request(f"{scheme}://{address}{path}")
        assert status != 200, (scheme, data[:200])
        assert telltale not in data
        assert bucket.encode() not in data
        assert b"Version" not in data

    if path == "/ui/index.html":
        return  # weed serves the volume UI to no one once JWT keys are set, certificate or not
    page = insider_request(embedded_s3, f"https://{address}{path}")
    assert page.status == 200
    assert telltale in page.data


def grpc_answers(server: EmbeddedS3, targets: list) -> dict[str, dict[str, bool]]:
    """Return, per target (a [host, port] or a socket path), who gets an HTTP/2 answer."""
    paths = embedded_security.cert_paths(server.data_dir)
    # A subprocess, because the test run's socket guard refuses Unix sockets; it dials only these.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            GRPC_PROBE,
            json.dumps(targets),
            json.dumps([str(paths["client.crt"]), str(paths["client.key"])]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


ONLY_WITH_CERTIFICATE = {
    "plaintext": False,
    "tls without certificate": False,
    "tls with certificate": True,
}


def test_grpc_ports_and_sockets_want_a_certificate(embedded_s3):
    names = ("master", "volume", "filer", "s3", "admin")
    grpc_ports = [embedded_s3.ports[f"{name}.grpc"] for name in names]
    targets = [[HOST, port] for port in grpc_ports] + [
        GRPC_SOCKET.format(name=name, port=port)
        for name, port in zip(names, grpc_ports, strict=True)
    ]

    answers = grpc_answers(embedded_s3, targets)

    assert answers == {json.dumps(target): ONLY_WITH_CERTIFICATE for target in targets}


def test_security_files_are_private(embedded_s3):
    files = [embedded_s3.data_dir / embedded_security.SECURITY_FILE]
    files += embedded_security.cert_paths(embedded_s3.data_dir).values()
    for path in files:
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    folder = embedded_s3.data_dir / embedded_security.CERT_DIR
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    keys = security_config(embedded_s3)["jwt"]
    assert len(keys["signing"]["key"]) >= 32
    assert keys["signing"]["key"] != keys["signing"]["read"]["key"]


def test_keys_are_kept_across_starts_and_a_broken_bundle_is_replaced(tmp_path):
    path = embedded_security.ensure_security_config(tmp_path)
    first, ca = path.read_text(), (tmp_path / "security" / "ca.crt").read_bytes()
    assert embedded_security.ensure_security_config(tmp_path).read_text() == first
    assert (tmp_path / "security" / "ca.crt").read_bytes() == ca

    # An edited file is rewritten whole, with the same keys.
    path.write_text(first.replace("ui = false", "ui = true").split("[grpc]")[0])
    assert embedded_security.ensure_security_config(tmp_path).read_text() == first

    (tmp_path / "security" / "volume.key").unlink()
    renewed = embedded_security.ensure_security_config(tmp_path).read_text()
    assert (tmp_path / "security" / "volume.key").is_file()
    assert (tmp_path / "security" / "ca.crt").read_bytes() != ca
    assert tomllib.loads(renewed)["jwt"] == tomllib.loads(first)["jwt"]


def test_a_weaker_config_of_the_user_or_the_environment_is_ignored(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".seaweedfs").mkdir(parents=True)
    (home / ".seaweedfs" / "security.toml").write_text(
        '[access]\nui = true\n[jwt.signing]\nkey = ""\n'
    )
    (tmp_path / "empty-ca.crt").write_text("")
    monkeypatch.setenv("HOME", str(home))
    # weed prefers WEED_* variables to the file; an unreadable CA would turn gRPC TLS off quietly.
    monkeypatch.setenv("WEED_GRPC_CA", str(tmp_path / "empty-ca.crt"))
    monkeypatch.setenv("WEED_ACCESS_UI", "true")
    server = EmbeddedS3(tmp_path / "data", s3_port=free_s3_port())
    server.start()
    try:
        client = server_client(server)
        client.create_bucket(Bucket="kept-private")
        client.put_object(Bucket="kept-private", Key="a.txt", Body=SECRET)
        status, data = outsider_request(f"http://{HOST}:{server.ports['volume']}/status")
        assert status != 200
        assert b"kept-private" not in data
        target = [HOST, server.ports["master.grpc"]]
        assert grpc_answers(server, [target]) == {json.dumps(target): ONLY_WITH_CERTIFICATE}
    finally:
        server.stop()


def test_a_server_whose_ports_stay_open_is_stopped_not_used(tmp_path, monkeypatch):
    # As when weed cannot load a certificate: it then serves gRPC without TLS, silently.
    monkeypatch.setattr(embedded_security, "ensure_security_config", lambda data_dir: None)
    server = EmbeddedS3(tmp_path / "data", s3_port=free_s3_port())

    with pytest.raises(EmbeddedS3Error, match="answer without a certificate"):
        server.start()

    assert server.pid is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, server.ports["volume"]), timeout=2).close()


def test_the_portal_still_reads_writes_and_presigns(embedded_s3, secret_object):
    bucket, key = secret_object
    client = server_client(embedded_s3)
    upload = client.create_multipart_upload(Bucket=bucket, Key="big.bin")
    parts = []
    for number, byte in enumerate((b"a", b"b"), start=1):
        body = byte * (5 * 1024 * 1024)
        etag = client.upload_part(
            Bucket=bucket, Key="big.bin", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    client.complete_multipart_upload(
        Bucket=bucket, Key="big.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60
    )
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own server
            assert response.read() == SECRET
        big = client.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
        assert big == b"a" * (5 * 1024 * 1024) + b"b" * (5 * 1024 * 1024)
    finally:
        client.delete_object(Bucket=bucket, Key="big.bin")
