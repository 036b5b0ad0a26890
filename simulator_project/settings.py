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
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "simulator.sqlite3"),
            "OPTIONS": {"timeout": 20},
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
SIMULATOR_REGION = env_str("SIMULATOR_REGION", "East US")
# Empty means every published AOAI api-version is accepted (generators_app.api_versions).
SIMULATOR_API_VERSIONS = env_list("SIMULATOR_API_VERSIONS", [])
SIMULATOR_SEED_DEFAULT_DEPLOYMENTS = env_bool("SIMULATOR_SEED_DEFAULT_DEPLOYMENTS", True)
# How often each process checks the configuration version stamp that admin/API/config edits bump.
SIMULATOR_CONFIG_POLL_SECONDS = env_float("SIMULATOR_CONFIG_POLL_SECONDS", 1.0)
SIMULATOR_MAX_BODY_BYTES = int(env_float("SIMULATOR_MAX_BODY_BYTES", 32 * 1024 * 1024))
