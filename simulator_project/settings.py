"""One settings module driven by the environment.

Unset variables give the embedded default: SQLite under SIMULATOR_DATA_DIR, the in-process limiter and
eager Celery. Every variable is documented in the README.
"""

from pathlib import Path

import dj_database_url
from django.core.management.utils import get_random_secret_key

from simulator_project.env import env_bool, env_float, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("SIMULATOR_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # Every worker process must share one key (sessions, admin logins), so the embedded default keeps it on disk.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    _secret_file = DATA_DIR / "secret_key"
    if not _secret_file.exists():
        _secret_file.write_text(get_random_secret_key())
        _secret_file.chmod(0o600)
    SECRET_KEY = _secret_file.read_text().strip()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["*"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",  # `manage.py runserver` serves the ASGI app (with the data plane) through daphne
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # staff tokens for the management API (`manage.py management_token`)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc assets served locally: the machines are offline
    "channels",
    "generators_app",
    "limits_app",
    "recordings_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "simulator_project.urls"
ASGI_APPLICATION = "simulator_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

_DATABASE_URL = env_str("DATABASE_URL", "")
if _DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(_DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # An unreachable database host fails fast (readiness probe, startup) instead of hanging on TCP.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "simulator.sqlite3"),
            # BEGIN IMMEDIATE: a transaction that reads and then writes (an import job) takes the write lock at
            # its start and waits for it (timeout), instead of failing at once with "database is locked" when
            # the server process writes at the same time (SQLite refuses a read lock's upgrade then).
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# No channel layer: consumers answer HTTP only and never talk to each other.
CHANNEL_LAYERS: dict = {}

REDIS_URL = env_str("REDIS_URL", "")

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or REDIS_URL
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# The queue tasks go to and a worker reads by default: give simulators sharing one Redis their own queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Staff tokens (`Token` or `Bearer`) and SIMULATOR_MANAGEMENT_TOKEN; data-plane keys never open /api/.
        "simulator_project.api.authentication.ManagementTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "simulator_project.api.exceptions.management_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AOAI simulator management API",
    "DESCRIPTION": "Deployments, keys, limit/latency/fault profiles, recording sets and recordings. "
    "Authenticate with `Authorization: Token <token>` (or `Bearer <token>`).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,  # write-only fields (secrets) appear in request schemas only
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Uploaded import files and produced exports of recording jobs (recordings_app.Job); web and worker must share it.
MEDIA_ROOT = Path(env_str("SIMULATOR_MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "media/"  # never served as is: job files are downloaded through the admin (staff only)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("SIMULATOR_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- the simulator's own settings -------------------------------------------------------------------------
SIMULATOR_API_KEY = env_str("SIMULATOR_API_KEY", "")
# A management-API token for the embedded setup (scripts, CI): maps to a staff service user.
SIMULATOR_MANAGEMENT_TOKEN = env_str("SIMULATOR_MANAGEMENT_TOKEN", "")
SIMULATOR_CONFIG = env_str("SIMULATOR_CONFIG", "")
# Extensions (docs/extensions.md): dotted module paths or .py files, comma-separated, loaded once per process.
SIMULATOR_EXTENSIONS = env_list("SIMULATOR_EXTENSIONS", [])
SIMULATOR_REGION = env_str("SIMULATOR_REGION", "East US")
# Empty means every published AOAI api-version is accepted (generators_app.api_versions).
SIMULATOR_API_VERSIONS = env_list("SIMULATOR_API_VERSIONS", [])
SIMULATOR_SEED_DEFAULT_DEPLOYMENTS = env_bool("SIMULATOR_SEED_DEFAULT_DEPLOYMENTS", True)
# How often each process checks the configuration version stamp that admin/API/config edits bump.
SIMULATOR_CONFIG_POLL_SECONDS = env_float("SIMULATOR_CONFIG_POLL_SECONDS", 1.0)
SIMULATOR_MAX_BODY_BYTES = int(env_float("SIMULATOR_MAX_BODY_BYTES", 32 * 1024 * 1024))

# --- Responses API (docs/agents.md) ------------------------------------------------------------------------
# Responses kept for previous_response_id: per process, and in Redis too when REDIS_URL is set (all workers).
SIMULATOR_RESPONSES_TTL_SECONDS = env_float("SIMULATOR_RESPONSES_TTL_SECONDS", 3600.0)
SIMULATOR_RESPONSES_MAX_STORED = int(env_float("SIMULATOR_RESPONSES_MAX_STORED", 10_000))
SIMULATOR_RESPONSES_MAX_BYTES = int(env_float("SIMULATOR_RESPONSES_MAX_BYTES", 16 * 1024 * 1024))

# --- images and audio (docs/images-audio.md) ---------------------------------------------------------------
# The base of image links in `url` answers; empty: the scheme and host the client called (X-Forwarded-* first).
SIMULATOR_PUBLIC_URL = env_str("SIMULATOR_PUBLIC_URL", "")
# How long an image link stays valid (AOAI's links last a day, OpenAI's an hour).
SIMULATOR_IMAGE_URL_TTL_SECONDS = int(env_float("SIMULATOR_IMAGE_URL_TTL_SECONDS", 3600))

# --- rate limits (docs/limits.md): shared through Redis when REDIS_URL is set, in process otherwise ----------
# Every deployment's limiter state is the Redis hash "<prefix>:<deployment>"; give each simulator its own prefix
# when several share one Redis but must not share quotas.
SIMULATOR_LIMITER_KEY_PREFIX = env_str("SIMULATOR_LIMITER_KEY_PREFIX", "simulator:limits")
# A Redis call slower than this counts as "Redis unreachable": the limiter falls back to the in-process one.
SIMULATOR_LIMITER_REDIS_TIMEOUT_SECONDS = env_float("SIMULATOR_LIMITER_REDIS_TIMEOUT_SECONDS", 1.0)
# While Redis is down, one background probe per process checks it this often (never a request).
SIMULATOR_LIMITER_PROBE_SECONDS = env_float("SIMULATOR_LIMITER_PROBE_SECONDS", 5.0)

# --- team setup: health, metrics, request log, shutdown, first admin (docs/team-setup.md) ----------------
# Each /readyz check (database, Redis) fails after this long: an unreachable host must not hang the probe.
SIMULATOR_READY_TIMEOUT_SECONDS = env_float("SIMULATOR_READY_TIMEOUT_SECONDS", 2.0)
# How often each process moves its request counts into the shared metric files (generators_app/observability).
SIMULATOR_METRICS_FLUSH_SECONDS = env_float("SIMULATOR_METRICS_FLUSH_SECONDS", 0.5)
# One JSON line per data-plane request on stdout; prompt text in it only when SIMULATOR_LOG_PROMPTS is set.
SIMULATOR_REQUEST_LOG = env_bool("SIMULATOR_REQUEST_LOG", True)
SIMULATOR_LOG_PROMPTS = env_bool("SIMULATOR_LOG_PROMPTS", False)
# On SIGTERM, in-flight requests and streams get this long to finish before they are cut.
SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS = env_float("SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS", 20.0)
# A Django admin superuser created at first start (`manage.py prepare`) when both are set.
SIMULATOR_ADMIN_USERNAME = env_str("SIMULATOR_ADMIN_USERNAME", "")
SIMULATOR_ADMIN_PASSWORD = env_str("SIMULATOR_ADMIN_PASSWORD", "")
SIMULATOR_ADMIN_EMAIL = env_str("SIMULATOR_ADMIN_EMAIL", "")

# --- latency and faults (docs/latency-faults.md) -------------------------------------------------------------
# Honour the per-request x-simulator-latency-ms and x-simulator-fault headers (turn off for a shared simulator
# whose clients must not choose their own latency and failures).
SIMULATOR_ALLOW_OVERRIDES = env_bool("SIMULATOR_ALLOW_OVERRIDES", True)
# The latency profiles the default deployments get at first start: "realistic" (per model family, like a real
# deployment) or "zero" (no delay, for throughput tests; the test suite and `python -m bench` use it).
SIMULATOR_DEFAULT_LATENCY = env_str("SIMULATOR_DEFAULT_LATENCY", "realistic")

# --- record and replay (docs/record-replay.md) ------------------------------------------------------------
# Record modes: how long to wait for the upstream to accept the connection, and between two bytes of its answer.
SIMULATOR_UPSTREAM_CONNECT_TIMEOUT_SECONDS = env_float("SIMULATOR_UPSTREAM_CONNECT_TIMEOUT_SECONDS", 10.0)
SIMULATOR_UPSTREAM_READ_TIMEOUT_SECONDS = env_float("SIMULATOR_UPSTREAM_READ_TIMEOUT_SECONDS", 300.0)
# Replay: recordings' answers each process keeps in memory (least recently used ones are dropped first).
SIMULATOR_REPLAY_CACHE_ENTRIES = int(env_float("SIMULATOR_REPLAY_CACHE_ENTRIES", 4096))
# Replay hit counts are added to the database in batches this often (off the request path).
SIMULATOR_HIT_FLUSH_SECONDS = env_float("SIMULATOR_HIT_FLUSH_SECONDS", 1.0)
