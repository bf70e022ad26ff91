"""Settings for the project, read from the environment with working local defaults.

Every knob an operator turns is an environment variable documented in README.md ("Settings").
Nothing secret lives in the repository: in development the secret key and the OpenID Connect
signing key are generated on first start and kept under ``var/`` (git-ignored); with
``DJANGO_DEBUG`` off both must come from the environment.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from corsheaders.defaults import default_headers as default_cors_headers
from django.core.exceptions import ImproperlyConfigured

from authserver.conf import axes_settings, oauth2_provider_settings
from config.env import env_bool, env_float, env_int, env_list, env_str, persistent_rsa_key, persistent_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DJANGO_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", True)

# --- Public origin --------------------------------------------------------------------------
# SITE_URL is the origin clients see (``https://mcp.example.com``): the OAuth issuer and the origin of
# the MCP resource identifiers. When it is unset, the origin of each request is used, so
# http://localhost:8000 and http://127.0.0.1:8000 both work locally. `manage.py check` refuses a
# SITE_URL that is not an origin (authserver.E004).
SITE_URL = env_str("SITE_URL", "").rstrip("/")

# --- The MCP endpoint (mcpapp/conf.py has every key and its default) --------------------------
MCPAPP = {
    "SERVER_NAME": env_str("MCP_SERVER_NAME", "Django MCP"),
    "STATELESS_HTTP": env_bool("MCP_STATELESS_HTTP", True),
    "ALLOWED_ORIGINS": env_list("MCP_ALLOWED_ORIGINS", []),
    "TOKEN_CACHE_SECONDS": env_float("MCP_TOKEN_CACHE_SECONDS", 60),
    "TOKEN_CACHE_MAX_ENTRIES": env_int("MCP_TOKEN_CACHE_MAX_ENTRIES", 10_000),
    "TOKEN_REVOCATION_POLL_SECONDS": env_float("MCP_TOKEN_REVOCATION_POLL_SECONDS", 0.5),
}

# --- Client registration and housekeeping (authserver/conf.py has every key and its default) ---
AUTHSERVER = {
    "SITE_NAME": env_str("SITE_NAME", "Django MCP"),
    "NATIVE_APP_REDIRECT_SCHEMES": env_list(
        "NATIVE_APP_REDIRECT_SCHEMES", ["cursor", "vscode", "vscode-insiders", "windsurf"]
    ),
    "REGISTRATION_MAX_BODY_BYTES": env_int("REGISTRATION_MAX_BODY_BYTES", 64 * 1024),
    "REGISTRATION_MAX_REDIRECT_URIS": env_int("REGISTRATION_MAX_REDIRECT_URIS", 10),
    "REGISTRATION_MAX_URI_LENGTH": env_int("REGISTRATION_MAX_URI_LENGTH", 2000),
    "REGISTRATION_MAX_FIELD_LENGTH": env_int("REGISTRATION_MAX_FIELD_LENGTH", 200),
    "REGISTRATION_RATE_LIMIT": env_int("REGISTRATION_RATE_LIMIT", 30),
    "REGISTRATION_RATE_WINDOW_SECONDS": env_int("REGISTRATION_RATE_WINDOW_SECONDS", 3600),
    "TOKEN_RATE_LIMIT_PER_ADDRESS": env_int("TOKEN_RATE_LIMIT_PER_ADDRESS", 600),
    "TOKEN_RATE_LIMIT_PER_CLIENT": env_int("TOKEN_RATE_LIMIT_PER_CLIENT", 6_000),
    "TOKEN_RATE_WINDOW_SECONDS": env_int("TOKEN_RATE_WINDOW_SECONDS", 60),
    "AUDIT_REFUSAL_WINDOW_SECONDS": env_int("AUDIT_REFUSAL_WINDOW_SECONDS", 60),
    "AUDIT_REFUSAL_ROWS_PER_WINDOW": env_int("AUDIT_REFUSAL_ROWS_PER_WINDOW", 10),
    "CLIENT_UNUSED_GRACE_HOURS": env_int("CLIENT_UNUSED_GRACE_HOURS", 24),
    "CLIENT_IDLE_RETENTION_DAYS": env_int("CLIENT_IDLE_RETENTION_DAYS", 90),
    "AUDIT_RETENTION_DAYS": env_int("AUDIT_RETENTION_DAYS", 365),
}

# --- Core -----------------------------------------------------------------------------------
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = persistent_secret(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
if SITE_URL and urlsplit(SITE_URL).hostname and urlsplit(SITE_URL).hostname not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(urlsplit(SITE_URL).hostname)
CSRF_TRUSTED_ORIGINS = [SITE_URL] if SITE_URL else []

INSTALLED_APPS = [
    # First, so its `runserver` (ASGI on uvicorn) replaces Django's WSGI one.
    "mcpapp",
    "authserver",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "oauth2_provider",
    "axes",
    # The demo app: per-user notes and the MCP tools for them (see its mcp_tools.py).
    "notes",
]

MIDDLEWARE = [
    # Failures answer 503 (database away) or 500, as JSON on the JSON endpoints, never a traceback;
    # first, so that what Django answers with a page anywhere below (a bad Host included) is JSON there.
    "authserver.errors.ErrorResponseMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Lets audit events recorded from model signals know the caller's address.
    "authserver.audit.AuditRequestMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it answers locked-out sign-ins.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses to authenticate while an account or address is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------
# SQLite (a file under the project) by default; PostgreSQL with DATABASE_URL=postgres://user:pass@host/name.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DATABASE_VENDOR = DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]  # "sqlite3" or "postgresql"
if DATABASE_VENDOR == "sqlite3":
    # SQLite serves the embedded default well only with WAL (readers never block the writer),
    # IMMEDIATE transactions (a writer takes the lock up front instead of failing on upgrade,
    # which is what select_for_update cannot do here) and a busy timeout.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file too: the async ORM and each MCP request run in threads of their own, which an
    # in-memory database would serve only through SQLite's shared cache (table locks, no WAL).
    # One per test run (its process id), so two runs from one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
    # Persistent connections: an MCP request's sync code runs in a thread mcpapp keeps for the next
    # one (mcpapp/work.py), so its connection is reused instead of opened and closed per request
    # (with its WAL pragmas); a thread of Django's own handler ends with its request, and its
    # connection with it.
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
elif DATABASE_VENDOR == "postgresql":
    DATABASES["default"]["OPTIONS"] = {"connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5)}
    if env_bool("DATABASE_POOL", True):
        # Under ASGI each request's sync code runs in a thread of its own, so persistent
        # connections (CONN_MAX_AGE) would pile up per thread: Django's docs recommend a pool.
        # One pool per worker process. With conn_health_checks Django has the pool check a
        # connection before handing it out, so one broken by a database restart is replaced.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            # Each request in flight holds one; 4 workers × 20 stays under PostgreSQL's default 100.
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 20),
            # How long a request waits for a connection (under load, or while the database is
            # away) before it is answered 503.
            "timeout": env_int("DATABASE_POOL_TIMEOUT_SECONDS", 10),
            # psycopg_pool retries a lost server with doubling delays; capped, so that service
            # resumes within seconds of the database coming back, not as long again as it was away.
            "reconnect_timeout": 5,
        }

# --- Cache -----------------------------------------------------------------------------------
# Rate limits and DOT's metadata-document backoff live here, so every worker must see the same
# cache: the database by default (its table is made by `migrate`), Redis with CACHE_URL=redis://...
# (needs the `redis` package). CACHE_URL=locmem:// keeps it per process (one worker only).
# Nothing here may be forgotten early (rate-limit counts, CWE-799; revoked tokens' tombstones, RFC 7009
# §1), yet the database and per-process caches delete entries once they hold MAX_ENTRIES (Django's
# default 300, the first third by key): ~300 requests from distinct addresses emptied them
# (authserver.W017). A flood must now make a million live entries (a ~200 MB table, whose rows each
# write counts: ~30 ms at that size). `manage.py prune` deletes expired rows, which Django keeps until
# the table is full; past it a tenth is culled, not a third. Redis: `maxmemory-policy noeviction`.
CACHE_URL = env_str("CACHE_URL", "")
CACHE_CAPACITY = {"MAX_ENTRIES": env_int("CACHE_MAX_ENTRIES", 1_000_000), "CULL_FREQUENCY": 10}
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": CACHE_CAPACITY}}
elif not CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
            "OPTIONS": CACHE_CAPACITY,
        }
    }
else:
    raise ImproperlyConfigured(f"CACHE_URL must be redis://..., rediss://... or locmem://, not {CACHE_URL!r}")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule on passwords: a changed password revokes the person's tokens (authserver/accounts.py).
    {"NAME": "authserver.accounts.PasswordChangeSignsOut"},
]

# Django's default list (people's passwords: PBKDF2), plus the one OAuth client secrets are stored with.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "authserver.hashers.ClientSecretHasher",
]

# --- Failed sign-ins (django-axes) ------------------------------------------------------------
# After AXES_FAILURE_LIMIT failures for one username from one address, that pair is refused with 429
# for AXES_COOLOFF_MINUTES; an address failing ten times as often, for any usernames, is refused as a
# whole; an account failing 100 times from many addresses is refused except at addresses it signed in
# from lately; an IPv6 address counts by its /64 (authserver.conf.axes_settings, the policy any site
# applies). Attempts are kept in the database, so the limit holds across workers.
globals().update(
    axes_settings(
        failure_limit=env_int("AXES_FAILURE_LIMIT", 5),
        cooloff=timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15)),
    )
)
AXES_VERBOSE = False

LOGIN_URL = "authserver:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Security headers -----------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Served over HTTPS (SITE_URL https://...): cookies only over TLS, plain HTTP redirected, and HSTS.
# Behind a TLS-terminating proxy, uvicorn's --forwarded-allow-ips lets the request scheme say https.
if SITE_URL.startswith("https://"):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# --- CORS -----------------------------------------------------------------------------------
# The OAuth endpoints answer any origin (authserver/cors.py); nothing else is opened. MCP clients send
# their protocol version on discovery requests too (MCP authorization, "Protocol version header").
CORS_ALLOW_HEADERS = (*default_cors_headers, "mcp-protocol-version")

# --- OAuth 2.1 authorization server (django-oauth-toolkit) ----------------------------------
OIDC_RSA_PRIVATE_KEY = env_str("OIDC_RSA_PRIVATE_KEY", "")
if not OIDC_RSA_PRIVATE_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("OIDC_RSA_PRIVATE_KEY (a PEM RSA key) must be set when DJANGO_DEBUG is off.")
    OIDC_RSA_PRIVATE_KEY = persistent_rsa_key(VAR_DIR / "oidc_rsa_private_key.pem")

OAUTH2_PROVIDER_APPLICATION_MODEL = "authserver.Application"
# django-oauth-toolkit, configured as authserver's authorization server (authserver/conf.py).
OAUTH2_PROVIDER = oauth2_provider_settings(
    site_url=SITE_URL,
    oidc_rsa_private_key=OIDC_RSA_PRIVATE_KEY,
    access_token_expire_seconds=env_int("ACCESS_TOKEN_EXPIRE_SECONDS", 3600),
    refresh_token_expire_seconds=env_int("REFRESH_TOKEN_EXPIRE_SECONDS", 30 * 24 * 3600),
)

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # No token, code or secret in a log line, even one a client put in a URL (authserver/log_redaction.py).
    "filters": {"secrets_redacted": {"()": "authserver.log_redaction.SecretsRedacted"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["secrets_redacted"]}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default config gives `django` a console handler of its own (with DEBUG on): its
        # lines (the autoreloader's "Watching for file changes") would print twice with the root's.
        "django": {"handlers": [], "level": "INFO"},
        # DOT logs each refused redirect URI and metadata fetch at WARNING; keep them.
        "oauth2_provider": {"level": "INFO"},
        # oauthlib's DEBUG lines carry request parameters and tokens: never below INFO.
        "oauthlib": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
