"""Settings, read from the environment (see .env.example).

Without any variable set the project runs on embedded defaults: SQLite and Celery's filesystem
broker under ``var/``, a file cache. Debug is off unless ``DJANGO_DEBUG=1`` (``make run`` and
``make test`` set it); with debug off a real secret key and the allowed hosts are required.
``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse_lazy
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


# Off unless asked for: a deployment that forgets the variable must not serve debug pages.
DEBUG = env_bool("DJANGO_DEBUG", False)

_INSECURE_KEY = "django-insecure-local-development-only"
SECRET_KEY = env("DJANGO_SECRET_KEY", _INSECURE_KEY)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")


def _weak_secret(key: str) -> bool:
    # Django's own deployment check (security.W009): long, varied, and not a placeholder.
    placeholder = key.startswith(("django-insecure", "change-me"))
    return placeholder or len(key) < 50 or len(set(key)) < 5


if not DEBUG:
    if _weak_secret(SECRET_KEY):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a random value of 50 characters or more when "
            "DJANGO_DEBUG is off, for example: python -c "
            "'import secrets; print(secrets.token_urlsafe(50))' "
            "(the demo and the tests run with DJANGO_DEBUG=1 instead: make run, make test)"
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG is off.")
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_CONTENT_TYPE_NOSNIFF = True

# HTTPS (see .env.example for production values): redirect plain HTTP, send HSTS, and trust
# the reverse proxy's X-Forwarded-Proto (only behind a proxy that sets it on every request).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(env("DJANGO_SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (Django's own middleware). Scripts only from this site, or inline
# with the request's nonce ({{ csp_nonce }}). Unfold's Alpine.js evaluates its x-* attributes
# with Function(), hence 'unsafe-eval'; Unfold's theme colours are an inline <style> and Alpine
# binds style attributes, hence inline styles.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE, CSP.UNSAFE_EVAL],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Sessions end after this many minutes without a request (SESSION_IDLE_MINUTES, default two
# hours); each request pushes the end back, writing the session at most once a minute.
SESSION_COOKIE_AGE = int(float(env("SESSION_IDLE_MINUTES", "120")) * 60)
SESSION_IDLE_REFRESH_SECONDS = 60

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the docs page's assets, served by us: no internet needed
    "shops.apps.SigninRecordsConfig",  # django-axes
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "couriers",
    "shops",
    "billing",
    "intercepts",
    "claims",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The second sign-in step: which device verified this session, then send a user who has
    # not passed the step (but has, or must have, an authenticator) to it.
    "django_otp.middleware.OTPMiddleware",
    "shops.two_factor.TwoFactorMiddleware",
    "shops.signin.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a refused sign-in of a locked user or address into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL names another one.
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL)
    if _db["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
        # psycopg's pool keeps connections open between requests and tasks.
        _db["CONN_MAX_AGE"] = 0
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(env("DATABASE_POOL_MIN", "1")),
            "max_size": int(env("DATABASE_POOL_MAX", "10")),
            "timeout": 10,
        }
    else:
        _db["CONN_MAX_AGE"] = int(env("DATABASE_CONN_MAX_AGE", "60"))
        _db["CONN_HEALTH_CHECKS"] = True
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        "OPTIONS": {
            # WAL lets the web process read while the worker writes; IMMEDIATE takes the write
            # lock at BEGIN so two writers queue on the busy timeout instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache (also used for locks and rate limits): Redis when REDIS_URL is set, else files in var/.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "pi"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "cache",
        }
    }
# Sessions are read from the cache and written through to the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Sign-in: django-axes counts failed sign-ins (the login page and the PIN reset's password
# check) per user and per address; SIGNIN_FAILURE_LIMIT failures lock that user, or that
# address, for SIGNIN_COOLOFF_MINUTES. Axes is asked first and refuses a locked sign-in before
# the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(env("SIGNIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(env("SIGNIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "shops.signin.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# The records are shown read-only to platform staff by the workbench's own admin pages.
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False
# Behind a reverse proxy, the number of proxies that append to X-Forwarded-For; unset, the
# address is the connection's own (shops.addresses, for sign-in and API keys alike).
SIGNIN_PROXY_COUNT = int(env("SIGNIN_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "shops.addresses.client_ip"

# Two-step sign-in (TOTP authenticator app, with recovery codes): required for platform staff
# and shop owners while this is on; on by default whenever debug is off. The demo leaves it off
# so its printed logins work alone.
WORKBENCH_REQUIRE_2FA = env_bool("WORKBENCH_REQUIRE_2FA", not DEBUG)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "Parcel intercepts workbench")
# Superusers see authenticator devices in the admin without their keys.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [
    BASE_DIR / "locale",
    BASE_DIR / "locale" / "unfold",
    BASE_DIR / "locale" / "axes",
    BASE_DIR / "locale" / "admin",
]
TIME_ZONE = env("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"

# Claim evidence (photos, PDFs): private files, served only through the claim's own pages.
# Local files by default; any django-storages backend by configuration, for example
# CLAIM_EVIDENCE_STORAGE=storages.backends.s3.S3Storage with its options as JSON in
# CLAIM_EVIDENCE_STORAGE_OPTIONS (a private bucket: no public URL is ever handed out).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "claim_evidence": {
        "BACKEND": env("CLAIM_EVIDENCE_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": json.loads(
            env(
                "CLAIM_EVIDENCE_STORAGE_OPTIONS",
                json.dumps({"location": str(VAR_DIR / "claim-evidence"), "base_url": None}),
            )
        ),
    },
    "shipment_uploads": {
        "BACKEND": env("SHIPMENT_UPLOADS_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": json.loads(
            env(
                "SHIPMENT_UPLOADS_STORAGE_OPTIONS",
                json.dumps({"location": str(VAR_DIR / "shipment-uploads"), "base_url": None}),
            )
        ),
    },
}
# A shipment upload: the file's size and rows (a 100,000-row workbook is about 3 MB).
SHIPMENT_UPLOAD_MAX_BYTES = int(env("SHIPMENT_UPLOAD_MAX_BYTES", str(30 * 1024 * 1024)))
SHIPMENT_UPLOAD_MAX_ROWS = int(env("SHIPMENT_UPLOAD_MAX_ROWS", "200000"))
# Evidence (photos, PDFs) a merchant sends: each file's size and how many one record holds.
# The generic limits (shipment anomalies' answers) default to the claims' older settings, and
# claims keep theirs (CLAIM_EVIDENCE_*), which default to the generic ones.
EVIDENCE_MAX_BYTES = int(
    env("EVIDENCE_MAX_BYTES", env("CLAIM_EVIDENCE_MAX_BYTES", str(10 * 1024 * 1024)))
)
EVIDENCE_MAX_FILES = int(env("EVIDENCE_MAX_FILES", env("CLAIM_EVIDENCE_MAX_FILES", "9")))
CLAIM_EVIDENCE_MAX_BYTES = int(env("CLAIM_EVIDENCE_MAX_BYTES", str(EVIDENCE_MAX_BYTES)))
CLAIM_EVIDENCE_MAX_FILES = int(env("CLAIM_EVIDENCE_MAX_FILES", str(EVIDENCE_MAX_FILES)))

LOGIN_URL = reverse_lazy("admin:login")
LOGIN_REDIRECT_URL = reverse_lazy("admin:index")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # One line per gateway request would drown the log; failures are logged by our own code.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# Celery: the filesystem broker under var/ unless CELERY_BROKER_URL names Redis.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        # Where the transport keeps its exchange tables (by default a folder in the cwd).
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    for folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / folder).mkdir(parents=True, exist_ok=True)
CELERY_TIMEZONE = TIME_ZONE

# Tracking: the public base URL couriers push to, the sandbox courier the demo talks to, and a
# factor on polling intervals (the demo's sandbox runs a fast clock). Unset, the first two
# follow the demo's ports (``PORT`` and ``SANDBOX_PORT``, as ``make run`` passes them), so one
# variable moves a server and everything that talks to it.
SITE_URL = env("SITE_URL", f"http://127.0.0.1:{env('PORT', '8000')}")
SANDBOX_PORT = int(env("SANDBOX_PORT", "8765"))
COURIER_SANDBOX_URL = env("COURIER_SANDBOX_URL", f"http://127.0.0.1:{SANDBOX_PORT}")
TRACKING_POLL_SCALE = float(env("TRACKING_POLL_SCALE", "1"))
# Courier pushes: the largest body read (a larger one is answered 413 and only an excerpt kept),
# how long refused and applied raw pushes are kept, how far a signed push time may be from our
# clock (either way), how far in the future a scan may be dated, and how many refused pushes per
# gateway account and minute are stored (the rest are answered alike and only counted).
COURIER_PUSH_MAX_BYTES = int(env("COURIER_PUSH_MAX_BYTES", str(64 * 1024)))
COURIER_PUSH_REFUSED_RETENTION_DAYS = int(env("COURIER_PUSH_REFUSED_RETENTION_DAYS", "7"))
COURIER_PUSH_ACCEPTED_RETENTION_DAYS = int(env("COURIER_PUSH_ACCEPTED_RETENTION_DAYS", "30"))
COURIER_PUSH_TIME_WINDOW_S = int(env("COURIER_PUSH_TIME_WINDOW_S", "600"))
# "off" turns the check off (a sandbox courier on an accelerated clock dates scans ahead, and
# its signed push times too, so receiving its SF and Kdniao pushes also needs a wider window;
# the demo's runs paced and needs neither).
_scan_skew = env("COURIER_SCAN_FUTURE_SKEW_S", "3600")
COURIER_SCAN_FUTURE_SKEW_S = None if _scan_skew == "off" else int(_scan_skew)
COURIER_PUSH_REFUSED_PER_MINUTE = int(env("COURIER_PUSH_REFUSED_PER_MINUTE", "60"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Billing: a top-up above this many fen (default 50,000 yuan) waits for a second finance user.
BILLING_TOP_UP_APPROVAL_FEN = int(env("BILLING_TOP_UP_APPROVAL_FEN", "5000000"))

# Outbound webhooks (shops.webhooks): the timeout of one request, the retry schedule (a failed
# delivery waits a random time up to base * 2^(attempt-1), at most the cap, and is retried until
# the window since it was queued has passed), and how long a rotated secret keeps signing
# beside the new one.
# Plain http to this machine (127.0.0.1, localhost, ::1) is allowed for an endpoint only in
# development and tests: read once from DJANGO_DEBUG here, because the test runner turns DEBUG off.
WEBHOOK_ALLOW_LOOPBACK_HTTP = env_bool("WEBHOOK_ALLOW_LOOPBACK_HTTP", DEBUG)
WEBHOOK_TIMEOUT_S = float(env("WEBHOOK_TIMEOUT_S", "5"))
WEBHOOK_RETRY_BASE_S = float(env("WEBHOOK_RETRY_BASE_S", "30"))
WEBHOOK_RETRY_CAP_S = float(env("WEBHOOK_RETRY_CAP_S", "3600"))
WEBHOOK_RETRY_WINDOW_S = int(env("WEBHOOK_RETRY_WINDOW_S", str(24 * 3600)))
WEBHOOK_SECRET_OVERLAP_S = int(env("WEBHOOK_SECRET_OVERLAP_S", str(24 * 3600)))

# The ERP API: API keys only (no session: a browser's cookie must not drive it), JSON only.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["shops.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "shops.api.pagination.ApiCursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["shops.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env("API_RATE_PER_KEY", "1200/min")},
    "EXCEPTION_HANDLER": "shops.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# How long an Idempotency-Key's answer is kept and replayed.
API_IDEMPOTENCY_TTL_S = int(env("API_IDEMPOTENCY_TTL_S", str(24 * 3600)))
# A claim still running this long belongs to a request that died; a retry takes it over.
API_IDEMPOTENCY_ABANDONED_S = int(env("API_IDEMPOTENCY_ABANDONED_S", "300"))
SPECTACULAR_SETTINGS = {
    "TITLE": "Parcel intercepts ERP API",
    "DESCRIPTION": (
        "After-sales, parcels, eligibility and fees, intercepts, claims for intercepted "
        "parcels lost or damaged, the wallet and invoice requests of one shop. Authenticate "
        "with `Authorization: Bearer <API key>`; send an `Idempotency-Key` with every POST. "
        "Money is in fen."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ParcelStageEnum": "couriers.stages.ParcelStage.choices",
        "ClaimStatusEnum": "claims.models.ClaimStatus.choices",
        "ClaimReasonEnum": "claims.models.ClaimReason.choices",
        "ClaimChannelEnum": "claims.api.serializers.CHANNEL_CHOICES",
        "ClaimPayoutEnum": "claims.api.serializers.PAYOUT_CHOICES",
        "ShipmentChannelEnum": "intercepts.api.serializers.SHIPMENT_CHANNEL_CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "shops.api.schema.add_error_responses",
    ],
}

UNFOLD = {
    "ACCOUNT": {
        "navigation": [
            {"title": _("Two-step sign-in"), "link": reverse_lazy("admin:two_factor_setup")},
        ],
    },
    "SITE_TITLE": _("Parcel intercepts"),
    "SITE_HEADER": _("After-sales workbench"),
    "SITE_SUBHEADER": _("Parcel intercepts"),
    "SITE_SYMBOL": "local_shipping",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_LANGUAGES": True,
    # The arrow back to the list (keeping its filters) beside a record's breadcrumbs.
    "SHOW_BACK_BUTTON": True,
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": False,
        "navigation": [
            {
                "title": _("After-sales"),
                "items": [
                    {
                        "title": _("After-sale orders"),
                        "icon": "assignment_return",
                        "link": reverse_lazy("admin:intercepts_aftersale_changelist"),
                        "permission": "shops.navigation.after_sales",
                    },
                    {
                        "title": _("Intercept records"),
                        "icon": "block",
                        "link": reverse_lazy("admin:intercepts_interceptrequest_changelist"),
                        "permission": "shops.navigation.intercept_records",
                    },
                    {
                        "title": _("Claims"),
                        "icon": "gavel",
                        "link": reverse_lazy("admin:claims_claim_changelist"),
                        "permission": "shops.navigation.claims",
                    },
                    {
                        "title": _("Shipment anomalies"),
                        "icon": "report",
                        "link": reverse_lazy("admin:intercepts_shipmentanomaly_changelist"),
                        "permission": "shops.navigation.shipment_anomalies",
                    },
                    {
                        "title": _("Orders"),
                        "icon": "receipt_long",
                        "link": reverse_lazy("admin:intercepts_order_changelist"),
                        "permission": "shops.navigation.orders",
                    },
                    {
                        "title": _("Shipment uploads"),
                        "icon": "upload_file",
                        "link": reverse_lazy("admin:intercepts_shipmentupload_changelist"),
                        "permission": "shops.navigation.shipment_uploads",
                    },
                    {
                        "title": _("Parcels"),
                        "icon": "package_2",
                        "link": reverse_lazy("admin:intercepts_parcel_changelist"),
                        "permission": "shops.navigation.parcels",
                    },
                    {
                        "title": _("Shops"),
                        "icon": "storefront",
                        "link": reverse_lazy("admin:shops_shop_changelist"),
                        "permission": "shops.navigation.shops",
                    },
                    {
                        "title": _("E-waybill accounts"),
                        "icon": "badge",
                        "link": reverse_lazy("admin:shops_ewaybillaccount_changelist"),
                        "permission": "shops.navigation.ewaybill_accounts",
                    },
                    {
                        "title": _("API keys"),
                        "icon": "key",
                        "link": reverse_lazy("admin:shops_apikey_changelist"),
                        "permission": "shops.navigation.api_keys",
                    },
                    {
                        "title": _("Webhook endpoints"),
                        "icon": "webhook",
                        "link": reverse_lazy("admin:shops_webhookendpoint_changelist"),
                        "permission": "shops.navigation.webhook_endpoints",
                    },
                    {
                        "title": _("Webhook deliveries"),
                        "icon": "outbox",
                        "link": reverse_lazy("admin:shops_webhookdelivery_changelist"),
                        "permission": "shops.navigation.webhook_deliveries",
                    },
                ],
            },
            {
                "title": _("Billing"),
                "items": [
                    {
                        "title": _("Wallets"),
                        "icon": "account_balance_wallet",
                        "link": reverse_lazy("admin:billing_wallet_changelist"),
                        "permission": "shops.navigation.wallets",
                    },
                    {
                        "title": _("Ledger entries"),
                        "icon": "receipt",
                        "link": reverse_lazy("admin:billing_ledgerentry_changelist"),
                        "permission": "shops.navigation.ledger_entries",
                    },
                    {
                        "title": _("Fee holds"),
                        "icon": "lock_clock",
                        "link": reverse_lazy("admin:billing_hold_changelist"),
                        "permission": "shops.navigation.holds",
                    },
                    {
                        "title": _("Invoice requests"),
                        "icon": "request_quote",
                        "link": reverse_lazy("admin:billing_invoicerequest_changelist"),
                        "permission": "shops.navigation.invoices",
                    },
                    {
                        "title": _("Top-up records"),
                        "icon": "history",
                        "link": reverse_lazy("admin:billing_topup_changelist"),
                        "permission": "shops.navigation.top_ups",
                    },
                    {
                        "title": _("Wallet adjustments"),
                        "icon": "tune",
                        "link": reverse_lazy("admin:billing_adjustment_changelist"),
                        "permission": "shops.navigation.adjustments",
                    },
                    {
                        "title": _("Fee rules"),
                        "icon": "sell",
                        "link": reverse_lazy("admin:billing_feerule_changelist"),
                        "permission": "shops.navigation.fee_rules",
                    },
                    {
                        "title": _("Finance exports"),
                        "icon": "download",
                        "link": reverse_lazy("admin:billing_export_changelist"),
                        "permission": "shops.navigation.finance_exports",
                    },
                    {
                        "title": _("Held settlements"),
                        "icon": "pause_circle",
                        "link": reverse_lazy("admin:intercepts_shipmentanomaly_held"),
                        "permission": "shops.navigation.held_settlements",
                    },
                    {
                        "title": _("Claim payouts"),
                        "icon": "payments",
                        "link": reverse_lazy("admin:claims_claimpayout_changelist"),
                        "permission": "shops.navigation.claim_payouts",
                    },
                ],
            },
            {
                "title": _("Platform"),
                "items": [
                    {
                        "title": _("Intercept policy"),
                        "icon": "rule",
                        "link": reverse_lazy("admin:intercepts_interceptpolicy_changelist"),
                        "permission": "shops.navigation.intercept_policy",
                    },
                    {
                        "title": _("Couriers"),
                        "icon": "local_shipping",
                        "link": reverse_lazy("admin:couriers_courier_changelist"),
                        "permission": "shops.navigation.couriers",
                    },
                    {
                        "title": _("Gateway accounts"),
                        "icon": "key",
                        "link": reverse_lazy("admin:couriers_courieraccount_changelist"),
                        "permission": "shops.navigation.courier_accounts",
                    },
                    {
                        "title": _("Courier pushes"),
                        "icon": "call_received",
                        "link": reverse_lazy("admin:intercepts_courierpush_changelist"),
                        "permission": "shops.navigation.courier_pushes",
                    },
                    {
                        "title": _("Sign-in locks"),
                        "icon": "lock_person",
                        "link": reverse_lazy("admin:axes_accessattempt_changelist"),
                        "permission": "shops.navigation.signin_attempts",
                    },
                    {
                        "title": _("Failed sign-ins"),
                        "icon": "no_accounts",
                        "link": reverse_lazy("admin:axes_accessfailurelog_changelist"),
                        "permission": "shops.navigation.signin_failures",
                    },
                    {
                        "title": _("Sign-in log"),
                        "icon": "login",
                        "link": reverse_lazy("admin:axes_accesslog_changelist"),
                        "permission": "shops.navigation.signin_log",
                    },
                    {
                        "title": _("Users"),
                        "icon": "person",
                        "link": reverse_lazy("admin:auth_user_changelist"),
                        "permission": "shops.navigation.users",
                    },
                    {
                        "title": _("Groups"),
                        "icon": "group",
                        "link": reverse_lazy("admin:auth_group_changelist"),
                        "permission": "shops.navigation.groups",
                    },
                ],
            },
        ],
    },
}
