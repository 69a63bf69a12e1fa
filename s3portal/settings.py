"""S3 Portal settings: one file, read from the environment (see .env.example)."""

import datetime
import json
import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    """Return a variable, or the contents of the file named by <NAME>_FILE (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise ImproperlyConfigured(f"{name} must be 'true' or 'false', not {value!r}")
    return value == "true"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def generated_secret(name: str) -> str:
    # A fresh clone must run without configuration, so the key is made once and kept under var/.
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def recorded_ports(path: Path) -> dict[str, int]:
    """Return the ports `make run` recorded in path while it serves ({} when it does not)."""
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {name: value for name, value in recorded.items() if type(value) is int}


# `make run` records the ports it serves on (runportal), so that a command run later from a plain
# shell reaches the same servers; PORT or S3_PORT in the environment still wins.
RUNTIME_FILE = VAR_DIR / "runtime.json"
_recorded = recorded_ports(RUNTIME_FILE)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY") or generated_secret("secret_key")
# The audit rows' MAC key: never in the database, so that whoever can write the database cannot
# forge rows (sharing/audit/trail.py). Generated into var/ for the embedded default.
AUDIT_KEY = env("AUDIT_KEY") or generated_secret("audit_key")
PORT = env_int("PORT", _recorded.get("port", 8000))
SITE_URL = env("SITE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", SITE_URL)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "sharing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "sharing.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "sharing.middleware.ViewerTimeZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sharing.middleware.StorageErrorMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "s3portal.urls"
WSGI_APPLICATION = "s3portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        # A kept connection that the server closed (restart, idle timeout) is replaced before
        # use instead of failing the next request.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Audit rows are appended from every request: writers take the write lock when they begin
    # (IMMEDIATE) and wait for it up to the timeout, and readers do not block them (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests run concurrent writers: they need a database file as `make run` has, not the
    # in-memory default whose shared cache refuses a second writer at once ("table is locked");
    # one per test run, so that two runs side by side do not share it.
    DATABASES["default"]["TEST"] = {
        "NAME": f"{tempfile.gettempdir()}/s3portal-test-{os.getpid()}.sqlite3"
    }
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"].endswith("postgresql") and DATABASE_PREPARED_STATEMENTS:
    # Every request runs the same few statements (the audit append above all): planned once per
    # connection instead of once per call, they cost PostgreSQL a third of the CPU. Turn this off
    # behind a pooler in transaction mode that cannot keep prepared statements (PgBouncer < 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=5
    )
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # The search index's trigram GIN index (sharing/migrations/0012) is an OpClass expression,
    # which needs this app's expression wrappers; SQLite uses FTS5 instead.
    INSTALLED_APPS.append("django.contrib.postgres")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache holds what every process must see alike: the storage circuit breaker and the
# link-password counters. A file cache under var/ serves one machine; several need REDIS_URL.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }
# Hints that one process may keep to itself (a file just seen in storage).
CACHES["local"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}

# Background work goes through Django's Tasks API (django-tasks, the backport of Django 6.0's).
# By default tasks are rows in the database and `make run` starts their worker (`db_worker`);
# TASKS_BACKEND names another backend for several machines (README, "Background work").
TASKS_BACKEND = env("TASKS_BACKEND") or "django_tasks_db.DatabaseBackend"  # empty: the default
TASKS = {"default": {"BACKEND": TASKS_BACKEND, "QUEUES": ["default"]}}
if TASKS_BACKEND.startswith("django_tasks_rq."):
    RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0"}}
    # Both apps, as django-tasks-rq's README says: django_rq reads RQ_QUEUES and gives
    # `manage.py rqworker --job-class django_tasks_rq.Job default`.
    at = INSTALLED_APPS.index("django_tasks_db")
    INSTALLED_APPS[at:at] = ["django_rq", "django_tasks_rq"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "bucket_list"
LOGOUT_REDIRECT_URL = "login"
# Login throttling by django-axes: failures are counted in the database (so every process sees
# them) per account and per address; a success resets nothing, so logging in to one's own account
# does not buy more guesses at another's. Counts fall off after LOGIN_FAILURE_WINDOW seconds.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = datetime.timedelta(seconds=env_int("LOGIN_FAILURE_WINDOW", 900))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "sharing.audit.client_ip"
AXES_LOCKOUT_CALLABLE = "sharing.views.auth.locked_out"
AXES_DISABLE_ACCESS_LOG = True  # logins are in the audit trail

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")  # until the browser names the viewer's (tz cookie)
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["s3portal.formats"]  # one date format everywhere, the admin included

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/pico", BASE_DIR / "node_modules" / "@picocss" / "pico" / "css"),
    ("vendor/uppy", BASE_DIR / "node_modules" / "uppy" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_BACKEND", "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Email: the console by default, SMTP when EMAIL_HOST is set.
EMAIL_HOST = env("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "S3 Portal <portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Storage. With no endpoint or keys given, the project starts its own SeaweedFS (sharing/embedded.py).
S3_ENDPOINT_URL = env("S3_ENDPOINT_URL")
S3_ACCESS_KEY_ID = env("S3_ACCESS_KEY_ID")
S3_SECRET_ACCESS_KEY = env("S3_SECRET_ACCESS_KEY")
S3_SESSION_TOKEN = env("S3_SESSION_TOKEN")
S3_EMBEDDED = env_bool("S3_EMBEDDED", not (S3_ENDPOINT_URL or S3_ACCESS_KEY_ID))
S3_PORT = env_int("S3_PORT", _recorded.get("s3_port", 8333))
S3_EMBEDDED_DIR = VAR_DIR / "s3"
if S3_EMBEDDED:
    from sharing.embedded import load_or_create_credentials

    _embedded_keys = load_or_create_credentials(S3_EMBEDDED_DIR)
    S3_ENDPOINT_URL = S3_ENDPOINT_URL or f"http://127.0.0.1:{S3_PORT}"
    S3_ACCESS_KEY_ID = _embedded_keys.access_key
    S3_SECRET_ACCESS_KEY = _embedded_keys.secret_key
S3_REGION = env("S3_REGION", "us-east-1")
S3_ADDRESSING_STYLE = env("S3_ADDRESSING_STYLE", "path" if S3_ENDPOINT_URL else "auto")
S3_PUBLIC_ENDPOINT_URL = env("S3_PUBLIC_ENDPOINT_URL")
# A stalled storage must not stall the portal (sharing/s3/health.py): page calls give up within a
# few seconds, long operations (copies, multipart completion) get a longer read timeout, and a
# circuit breaker shared by all processes refuses S3 calls for a cool-down after repeated failures.
S3_CONNECT_TIMEOUT = env_int("S3_CONNECT_TIMEOUT", 2)
S3_READ_TIMEOUT = env_int("S3_READ_TIMEOUT", 3)
S3_LONG_READ_TIMEOUT = env_int("S3_LONG_READ_TIMEOUT", 120)
S3_MAX_ATTEMPTS = env_int("S3_MAX_ATTEMPTS", 3)
S3_REQUEST_BUDGET = env_int("S3_REQUEST_BUDGET", 5)
S3_BREAKER_FAILURES = env_int("S3_BREAKER_FAILURES", 3)
S3_BREAKER_WINDOW = env_int("S3_BREAKER_WINDOW", 30)
S3_BREAKER_COOL_DOWN = env_int("S3_BREAKER_COOL_DOWN", 5)
# SeaweedFS refuses a path segment over 255 bytes; AWS has no such limit (0 = none).
S3_MAX_KEY_SEGMENT_BYTES = env_int("S3_MAX_KEY_SEGMENT_BYTES", 255 if S3_EMBEDDED else 0)

# Files: limits checked before any byte is stored.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024**3)
UPLOAD_MAX_FILES = env_int("UPLOAD_MAX_FILES", 1000)
# true: browsers send file parts to the portal, which streams them on to S3 (S3 not reachable).
UPLOAD_VIA_PORTAL = env_bool("UPLOAD_VIA_PORTAL", False)
UPLOAD_PART_BYTES = env_int("UPLOAD_PART_BYTES", 16 * 1024**2)
UPLOAD_URL_SECONDS = env_int("UPLOAD_URL_SECONDS", 600)
# ZIP downloads of folders and selections: refused up front above these.
ARCHIVE_MAX_BYTES = env_int("ARCHIVE_MAX_BYTES", 10 * 1024**3)
ARCHIVE_MAX_FILES = env_int("ARCHIVE_MAX_FILES", 10_000)
# Previews on the object page and a share link's page (sharing/services/previews.py): text is
# read by one ranged GET of its head; images and PDFs above the media cap are not previewed.
PREVIEW_TEXT_BYTES = env_int("PREVIEW_TEXT_BYTES", 256 * 1024)
PREVIEW_CSV_ROWS = env_int("PREVIEW_CSV_ROWS", 500)
PREVIEW_MEDIA_MAX_BYTES = env_int("PREVIEW_MEDIA_MAX_BYTES", 50 * 1024**2)
# Thumbnails of images and of PDFs' first pages (sharing/services/thumbnails.py), made by tasks and
# kept in the named storage "thumbnails": by default a bucket of the portal's own on the same
# endpoint (created on first use, never shown to people); THUMBNAILS_STORAGE_BACKEND names any
# other Django storage, THUMBNAILS_STORAGE_OPTIONS (JSON) its options.
THUMBNAILS_BUCKET = env("THUMBNAILS_BUCKET", "s3portal-thumbnails")
THUMBNAILS_STORAGE_BACKEND = env("THUMBNAILS_STORAGE_BACKEND", "sharing.s3.PortalS3Storage")
if THUMBNAILS_STORAGE_BACKEND == "sharing.s3.PortalS3Storage":
    _thumbnail_options: dict = {"bucket_name": THUMBNAILS_BUCKET}
elif THUMBNAILS_STORAGE_BACKEND == "django.core.files.storage.FileSystemStorage":
    _thumbnail_options = {"location": str(VAR_DIR / "thumbnails")}
else:
    _thumbnail_options = {}
_thumbnail_options.update(json.loads(env("THUMBNAILS_STORAGE_OPTIONS", "{}")))
STORAGES["thumbnails"] = {"BACKEND": THUMBNAILS_STORAGE_BACKEND, "OPTIONS": _thumbnail_options}
# Files larger than this get no thumbnail (never read); Pillow's own pixel limit refuses bombs.
THUMBNAIL_MAX_SOURCE_BYTES = env_int("THUMBNAIL_MAX_SOURCE_BYTES", 25 * 1024**2)

# Security: HTTPS=true in production turns on redirects, secure cookies and HSTS.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Share-link tokens live in URLs: they must never leave the site in a Referer header.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "sharing.views.errors.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self' {s3}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)

# Share tokens and secret query values are redacted from every log line and error report
# (sharing/logs.py); runportal gives gunicorn's access and error logs the same filter.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "sharing.logs.RedactSecretsFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["redact", "require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default handlers of these two write unfiltered: replaced by the ones above.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["console"], "propagate": False},
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
DEFAULT_EXCEPTION_REPORTER = "sharing.logs.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "sharing.logs.RedactingExceptionReporterFilter"

# Share links
LINK_PASSWORD_MIN_LENGTH = env_int("LINK_PASSWORD_MIN_LENGTH", 8)
LINK_PASSWORD_ATTEMPTS = env_int("LINK_PASSWORD_ATTEMPTS", 5)
LINK_PASSWORD_WINDOW = env_int("LINK_PASSWORD_WINDOW", 900)
LINK_EMAIL_MAX_RECIPIENTS = env_int("LINK_EMAIL_MAX_RECIPIENTS", 20)
S3_PUBLIC_PROBE_TIMEOUT = env_int("S3_PUBLIC_PROBE_TIMEOUT", 3)
