"""Keys and certificates that close the embedded SeaweedFS server's ports other than S3.

weed reads `security.toml` from -config_dir, then its working directory; the launcher points both
at the data dir, where this module writes that file before every start. On first run it generates
a private CA and a certificate per weed component (mutual TLS on every gRPC port, and HTTPS with
client certificates on the master, volume and admin ports) and the JWT keys the volume server
checks on every read and write by fileId. Neither Django nor boto3 is imported here: settings.py
imports sharing.embedded, which imports this module.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import socket
import tomllib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SECURITY_FILE = "security.toml"
# Relative to the data dir, weed's working directory, so the data dir can be moved as a whole.
CERT_DIR = "security"
# Every component of `weed mini` that serves or dials gRPC; "client" is what `weed shell` and the
# S3 gateway's own dials use. Each gets its own key, all signed by one CA made for this data dir.
COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "client")
CERT_LIFETIME = datetime.timedelta(days=3650)
# The bundle is regenerated whole (new CA, new keys) this long before any certificate expires.
RENEW_BEFORE = datetime.timedelta(days=30)
# The HTTP ports that stay open under -disableHttp (the filer's is closed by that flag).
HTTPS_COMPONENTS = ("master", "volume", "admin")
JWT_WRITE_SECONDS = 10  # weed's default: a token is used at once, for one chunk
JWT_READ_SECONDS = 60  # weed's default: a read token must outlive a slow chunk download
JWT_SECTIONS = (
    ("jwt.signing", JWT_WRITE_SECONDS),
    ("jwt.signing.read", JWT_READ_SECONDS),
    ("jwt.filer_signing", JWT_WRITE_SECONDS),
    ("jwt.filer_signing.read", JWT_READ_SECONDS),
)
LOOPBACK = "127.0.0.1"
# A plaintext gRPC server answers this HTTP/2 preface with a SETTINGS frame; a TLS one hangs up.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
# What each HTTP port serves to anyone when it is left open (-disableHttp leaves the filer's 404).
TELLTALE_PATHS = {"master": "/", "volume": "/status", "filer": "/", "admin": "/metrics"}


def cert_paths(data_dir: Path) -> dict[str, Path]:
    """Return the PEM files of the bundle: "ca" and, per component, "<name>.crt" and "<name>.key"."""
    folder = Path(data_dir) / CERT_DIR
    paths = {"ca": folder / "ca.crt"}
    for name in COMPONENTS:
        paths[f"{name}.crt"] = folder / f"{name}.crt"
        paths[f"{name}.key"] = folder / f"{name}.key"
    return paths


def ensure_security_config(data_dir: Path) -> Path:
    """Write <data_dir>/security.toml, generating its certificates and keys on first run.

    The file is rewritten at every start from the keys it already holds, so an edited or older
    file cannot leave a port open. The caller holds the data dir's lock: no other launcher
    writes here at the same time, and weed is not running.
    """
    data_dir = Path(data_dir)
    path = data_dir / SECURITY_FILE
    if not _certificates_are_usable(data_dir):
        _generate_certificates(data_dir)
    keys = _jwt_keys(path) or {section: secrets.token_urlsafe(32) for section, _ in JWT_SECTIONS}
    tmp = path.with_name(f".{SECURITY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    _write_private(tmp, _render(data_dir, keys).encode())
    os.replace(tmp, path)
    return path


def unprotected_ports(host: str, ports: dict[str, int]) -> list[str]:
    """Return the names of weed's ports (S3 aside) that answer a client without a certificate."""
    unprotected = []
    for name, port in ports.items():
        if name.endswith(".grpc"):
            answer = _exchange(host, port, HTTP2_PREFACE)
            if len(answer) >= 9 and answer[3] == 4:  # a SETTINGS frame
                unprotected.append(name)
        elif name in TELLTALE_PATHS:
            request = f"GET {TELLTALE_PATHS[name]} HTTP/1.0\r\nHost: {host}\r\n\r\n"
            if _exchange(host, port, request.encode()).startswith(
                (b"HTTP/1.0 200", b"HTTP/1.1 200")
            ):
                unprotected.append(name)
    return unprotected


def _exchange(host: str, port: int, request: bytes) -> bytes:
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(request)
            answer = b""
            while len(answer) < 16 and (chunk := sock.recv(16 - len(answer))):
                answer += chunk
            return answer
    except OSError:
        return b""  # refused, reset or silent: nothing served


def _certificates_are_usable(data_dir: Path) -> bool:
    paths = cert_paths(data_dir)
    renew_at = datetime.datetime.now(datetime.UTC) + RENEW_BEFORE
    try:
        if not all(path.is_file() for path in paths.values()):
            return False
        for name in ("ca", *(f"{component}.crt" for component in COMPONENTS)):
            cert = x509.load_pem_x509_certificate(paths[name].read_bytes())
            if cert.not_valid_after_utc < renew_at:
                return False
    except (OSError, ValueError):
        return False
    return True


def _jwt_keys(path: Path) -> dict[str, str] | None:
    """Return the JWT keys of an existing security.toml, or None unless all are there."""
    try:
        config = tomllib.loads(path.read_text())
        keys = {}
        for section, _ in JWT_SECTIONS:
            table = config
            for part in section.split("."):
                table = table[part]
            keys[section] = table["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(key, str) and len(key) >= 32 for key in keys.values()):
        return None
    return keys


def _generate_certificates(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = data_dir / CERT_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    paths = cert_paths(data_dir)
    now = datetime.datetime.now(datetime.UTC)
    # The CA's key signs the bundle and is thrown away: nothing signs another certificate later,
    # and a renewal makes a new CA. Only the CA's certificate is kept, to verify peers.
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"s3portal weed CA {now:%Y%m%d}")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(paths["ca"], ca_cert.public_bytes(serialization.Encoding.PEM))
    for name in COMPONENTS:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(subject, ca_name, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            # Each component both serves and dials the others with the same certificate.
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(paths[f"{name}.crt"], cert.public_bytes(serialization.Encoding.PEM))
        _write_private(
            paths[f"{name}.key"],
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate a clock a bit behind
        .not_valid_after(now + CERT_LIFETIME)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, content: bytes) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(content)


def _render(data_dir: Path, keys: dict[str, str]) -> str:
    paths = {name: str(path.relative_to(data_dir)) for name, path in cert_paths(data_dir).items()}
    lines = [
        "# Generated by sharing/embedded_security.py for the embedded SeaweedFS server.",
        "# Rewritten at every start (edits are lost). Delete it for new JWT keys, delete",
        f"# {CERT_DIR}/ for new certificates.",
        "",
        "# The volume server refuses reads and writes by fileId without a token signed with these",
        "# keys (by the master or the filer, for the S3 gateway); the filer's keys gate its IAM API.",
    ]
    for section, seconds in JWT_SECTIONS:
        lines += [
            f"[{section}]",
            f'key = "{keys[section]}"',
            f"expires_after_seconds = {seconds}",
            "",
        ]
    lines += [
        "[access]",
        "ui = false",
        "",
        "# Mutual TLS on every gRPC port (and the gRPC sockets in /tmp): a peer needs a",
        "# certificate signed by this data dir's CA.",
        "[grpc]",
        f'ca = "{paths["ca"]}"',
    ]
    for name in COMPONENTS:
        lines += [
            "",
            f"[grpc.{name}]",
            f'cert = "{paths[f"{name}.crt"]}"',
            f'key = "{paths[f"{name}.key"]}"',
        ]
    lines += [
        "",
        "# HTTPS with client certificates on the master, volume and admin ports: their status pages",
        "# and metrics (bucket names, sizes, traffic) answer only the components and weed shell.",
        "[https.client]",
        "enabled = true",
        f'cert = "{paths["client.crt"]}"',
        f'key = "{paths["client.key"]}"',
        f'ca = "{paths["ca"]}"',
    ]
    for name in HTTPS_COMPONENTS:
        lines += [
            "",
            f"[https.{name}]",
            f'cert = "{paths[f"{name}.crt"]}"',
            f'key = "{paths[f"{name}.key"]}"',
            f'ca = "{paths["ca"]}"',
        ]
    return "\n".join(lines) + "\n"
