"""Settings from the environment, system checks, and the production deploy check."""

import socket
import subprocess
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from s3portal import settings as project_settings
from tests.conftest import manage_from_a_shell

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-Zx9!q2Lm#8vR",
    "ALLOWED_HOSTS": "files.example.com",
    "SITE_URL": "https://files.example.com",
    "HTTPS": "true",
    "S3_ENDPOINT_URL": "https://s3.example.com",
    "S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "S3_SECRET_ACCESS_KEY": "secret-from-env",
    "DATABASE_URL": "sqlite:////tmp/s3portal-deploy-check.sqlite3",
}


def manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    return manage_from_a_shell(*args, var_dir=tmp_path, env=env)


def test_deploy_check_is_clean_with_production_variables(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_fails_without_https(tmp_path):
    env = {**PRODUCTION_ENV, "HTTPS": "false"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


def test_env_bool_refuses_other_words(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    with pytest.raises(ImproperlyConfigured, match="true' or 'false"):
        project_settings.env_bool("SOME_FLAG", False)
    monkeypatch.setenv("SOME_FLAG", "TRUE")
    assert project_settings.env_bool("SOME_FLAG", False) is True


def test_secret_can_come_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("EMAIL_HOST_PASSWORD_FILE", str(secret))
    assert project_settings.env("EMAIL_HOST_PASSWORD") == "from-a-file"


def test_env_int_refuses_words(monkeypatch):
    monkeypatch.setenv("PORT_X", "eighty")
    with pytest.raises(ImproperlyConfigured):
        project_settings.env_int("PORT_X", 1)


def test_smtp_is_chosen_by_email_host(tmp_path):
    code = "from django.conf import settings; print(settings.EMAIL_BACKEND)"
    env = {**PRODUCTION_ENV, "EMAIL_HOST": "smtp.example.com"}
    result = manage("shell", "--no-imports", "-c", code, env=env, tmp_path=tmp_path)
    assert result.stdout.strip() == "django.core.mail.backends.smtp.EmailBackend"
    result = manage("shell", "--no-imports", "-c", code, env=PRODUCTION_ENV, tmp_path=tmp_path)
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


def test_embedded_storage_is_default_and_env_replaces_it(tmp_path):
    code = "from django.conf import settings; print(settings.S3_EMBEDDED, settings.S3_ENDPOINT_URL)"
    result = manage("shell", "--no-imports", "-c", code, env={"S3_PORT": "9444"}, tmp_path=tmp_path)
    assert result.stdout.strip() == "True http://127.0.0.1:9444"
    assert (tmp_path / "s3" / "s3.json").exists()
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        env={"S3_ENDPOINT_URL": "http://minio:9000"},
        tmp_path=tmp_path,
    )
    assert result.stdout.strip() == "False http://minio:9000"


def test_postgresql_statements_are_prepared_unless_turned_off(tmp_path):
    code = (
        "from django.conf import settings; o = settings.DATABASES['default'].get('OPTIONS', {}); "
        "print(o.get('server_side_binding'), o.get('prepare_threshold'))"
    )
    env = {"DATABASE_URL": "postgres://portal@db.internal:5432/portal", "S3_EMBEDDED": "false"}
    result = manage("shell", "--no-imports", "-c", code, env=env, tmp_path=tmp_path)
    assert result.stdout.strip() == "True 5", result.stderr
    env["DATABASE_PREPARED_STATEMENTS"] = "false"
    result = manage("shell", "--no-imports", "-c", code, env=env, tmp_path=tmp_path)
    assert result.stdout.strip() == "None None", result.stderr


def check_ids(settings) -> set[str]:
    return {
        message.id for message in run_checks() if message.id and message.id.startswith("sharing.")
    }


def test_checks_pass_by_default(settings):
    assert check_ids(settings) == set()


def test_check_atomic_requests(settings):
    settings.DATABASES = {"default": {**settings.DATABASES["default"], "ATOMIC_REQUESTS": True}}
    assert "sharing.E001" in check_ids(settings)


def test_check_half_credentials(settings):
    settings.S3_SECRET_ACCESS_KEY = ""
    assert "sharing.E002" in check_ids(settings)


def test_check_addressing_style(settings):
    settings.S3_ADDRESSING_STYLE = "sideways"
    assert "sharing.E003" in check_ids(settings)


def test_check_urls(settings):
    settings.SITE_URL = "files.example.com"
    assert "sharing.E004" in check_ids(settings)


def test_check_timeouts(settings):
    settings.S3_CONNECT_TIMEOUT = 0
    assert "sharing.E005" in check_ids(settings)


@pytest.mark.parametrize("part_bytes", [0, 5 * 1024**2 - 1, 5 * 1024**3 + 1])
def test_check_upload_part_size(settings, part_bytes):
    settings.UPLOAD_PART_BYTES = part_bytes
    assert "sharing.E006" in check_ids(settings)


@pytest.mark.parametrize("part_bytes", [5 * 1024**2, 16 * 1024**2, 5 * 1024**3])
def test_upload_part_sizes_s3_accepts_pass(settings, part_bytes):
    settings.UPLOAD_PART_BYTES = part_bytes
    assert "sharing.E006" not in check_ids(settings)


def test_the_storage_breaker_is_shared_by_processes_by_default(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    env = {
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
        "S3_ACCESS_KEY_ID": "key",
        "S3_SECRET_ACCESS_KEY": "secret",
        "S3_BREAKER_COOL_DOWN": "60",
    }
    fail_three_times = (
        "from sharing import s3\n"
        "for _ in range(3):\n"
        "    try: s3.list_buckets()\n"
        "    except s3.S3Error as error: print(error.code)\n"
    )
    first = manage("shell", "--no-imports", "-c", fail_three_times, env=env, tmp_path=tmp_path)
    assert first.stdout.split() == ["EndpointConnectionError"] * 3
    ask = "from sharing import s3; print(s3.breaker_is_open())"
    second = manage("shell", "--no-imports", "-c", ask, env=env, tmp_path=tmp_path)
    assert second.stdout.strip() == "True"
