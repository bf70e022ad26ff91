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

from config.env import env_bool, env_float, env_int, env_list, env_str, persistent_rsa_key, persistent_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DJANGO_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", True)

# --- Public origin --------------------------------------------------------------------------
# SITE_URL is the origin clients see (``https://mcp.example.com``). When it is unset, the origin
# of each request is used, so http://localhost:8000 and http://127.0.0.1:8000 both work locally.
SITE_URL = env_str("SITE_URL", "").rstrip("/")
if SITE_URL:
    _site = urlsplit(SITE_URL)
    if _site.scheme not in ("http", "https") or not _site.hostname or _site.path or _site.query:
        raise ImproperlyConfigured(f"SITE_URL must be an origin like https://mcp.example.com, not {SITE_URL!r}")

# Where the MCP endpoint lives; its absolute URL is the RFC 8707 resource identifier.
MCP_MOUNT_PATH = "/star"
MCP_RESOURCE_PATH = MCP_MOUNT_PATH + "/mcp"
MCP_SSE_RESOURCE_PATH = MCP_MOUNT_PATH + "/sse"  # the legacy SSE transport, for clients that only speak it
# Stateless Streamable HTTP: no per-process session state, so any worker can answer any request.
MCP_STATELESS_HTTP = env_bool("MCP_STATELESS_HTTP", True)
MCP_SERVER_NAME = env_str("MCP_SERVER_NAME", "Django MCP")
# Browser origins allowed to call the MCP endpoint (its Origin check, and its CORS answers), besides
# the site's own origin and, with DEBUG on, loopback ones (MCP Inspector): e.g. https://app.example.com.
MCP_ALLOWED_ORIGINS = [origin.rstrip("/").lower() for origin in env_list("MCP_ALLOWED_ORIGINS", [])]
for _origin in MCP_ALLOWED_ORIGINS:
    _parts = urlsplit(_origin)
    if _parts.scheme not in ("http", "https") or not _parts.hostname or _parts.path or _parts.query:
        raise ImproperlyConfigured(f"MCP_ALLOWED_ORIGINS holds origins like https://app.example.com, not {_origin!r}")
# Verified access tokens are remembered per worker for this long (never past their expiry; 0: look
# every token up on every request). A revocation is refused at once by the worker that made it and
# within MCP_TOKEN_REVOCATION_POLL_SECONDS by the others, through CACHES (mcpapp/token_cache.py).
MCP_TOKEN_CACHE_SECONDS = env_float("MCP_TOKEN_CACHE_SECONDS", 60)
MCP_TOKEN_CACHE_MAX_ENTRIES = env_int("MCP_TOKEN_CACHE_MAX_ENTRIES", 10_000)
MCP_TOKEN_REVOCATION_POLL_SECONDS = env_float("MCP_TOKEN_REVOCATION_POLL_SECONDS", 0.5)

# --- Client registration policy (authserver/registration.py) ----------------------------------
# Private-use redirect schemes (RFC 8252 §7.1) of well-known agents; reverse-domain schemes
# (com.example.app) are always allowed.
NATIVE_APP_REDIRECT_SCHEMES = env_list(
    "NATIVE_APP_REDIRECT_SCHEMES", ["cursor", "vscode", "vscode-insiders", "windsurf"]
)
REGISTRATION_MAX_BODY_BYTES = env_int("REGISTRATION_MAX_BODY_BYTES", 64 * 1024)  # larger bodies: 413
REGISTRATION_MAX_REDIRECT_URIS = env_int("REGISTRATION_MAX_REDIRECT_URIS", 10)
REGISTRATION_MAX_URI_LENGTH = env_int("REGISTRATION_MAX_URI_LENGTH", 2000)
REGISTRATION_MAX_FIELD_LENGTH = env_int("REGISTRATION_MAX_FIELD_LENGTH", 200)  # client_name and other strings
# Registrations per client address per window (429 with Retry-After above it), counted in CACHES.
REGISTRATION_RATE_LIMIT = env_int("REGISTRATION_RATE_LIMIT", 30)
REGISTRATION_RATE_WINDOW_SECONDS = env_int("REGISTRATION_RATE_WINDOW_SECONDS", 3600)
# `manage.py prune`: self-registered clients never used within the grace period, or idle longer than
# the retention period, are deleted; so are audit events older than their retention.
CLIENT_UNUSED_GRACE_HOURS = env_int("CLIENT_UNUSED_GRACE_HOURS", 24)
CLIENT_IDLE_RETENTION_DAYS = env_int("CLIENT_IDLE_RETENTION_DAYS", 90)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)

# --- Core -----------------------------------------------------------------------------------
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = persistent_secret(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
if SITE_URL and urlsplit(SITE_URL).hostname not in ALLOWED_HOSTS:
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
    "django.contrib.humanize",
    "corsheaders",
    "oauth2_provider",
    "axes",
    # The demo app: per-user notes and the MCP tools for them (see its mcp_tools.py).
    "notes",
]

MIDDLEWARE = [
    # Failures answer 503 (database away) or 500, as JSON on the JSON endpoints, never a traceback;
    # first, so that what Django answers with a page anywhere below (a bad Host included) is JSON there.
    "config.errors.ErrorResponseMiddleware",
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
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif not CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}}
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
# After AXES_FAILURE_LIMIT failures for one account, or from one address, sign-in is refused with
# 429 for AXES_COOLOFF_MINUTES. Attempts are kept in the database, so the limit holds across workers.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

LOGIN_URL = "login"
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
# Browser-based MCP clients (MCP Inspector) call the OAuth endpoints cross-origin with bearer
# tokens or PKCE, never cookies, so any origin may call them; nothing else is opened.
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_URLS_REGEX = r"^/(\.well-known/.*|o/(token|revoke_token|introspect|userinfo|register)/.*)$"
# MCP clients send their protocol version on discovery requests too (MCP authorization, "Protocol
# version header"); a browser asks first whether it may.
CORS_ALLOW_HEADERS = (*default_cors_headers, "mcp-protocol-version")

# --- OAuth 2.1 authorization server (django-oauth-toolkit) ----------------------------------
OIDC_RSA_PRIVATE_KEY = env_str("OIDC_RSA_PRIVATE_KEY", "")
if not OIDC_RSA_PRIVATE_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("OIDC_RSA_PRIVATE_KEY (a PEM RSA key) must be set when DJANGO_DEBUG is off.")
    OIDC_RSA_PRIVATE_KEY = persistent_rsa_key(VAR_DIR / "oidc_rsa_private_key.pem")

ACCESS_TOKEN_EXPIRE_SECONDS = env_int("ACCESS_TOKEN_EXPIRE_SECONDS", 3600)
REFRESH_TOKEN_EXPIRE_SECONDS = env_int("REFRESH_TOKEN_EXPIRE_SECONDS", 30 * 24 * 3600)

_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]

OAUTH2_PROVIDER_APPLICATION_MODEL = "authserver.Application"

OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "authserver.validators.MCPOAuth2Validator",
    # oauthlib's OpenID Connect server with the PKCE syntax checks (RFC 7636 §4.1-4.2) added.
    "OAUTH2_SERVER_CLASS": "authserver.oauth_server.OAuthServer",
    "OAUTH2_BACKEND_CLASS": "authserver.backends.AbsoluteURIOAuthLibCore",
    # Client secrets are generated (~760 bits), so a salted HMAC-SHA256, not PBKDF2 (authserver/hashers.py).
    "CLIENT_SECRET_HASHER": "client_secret_pbkdf2_sha256",
    # One issuer for RFC 8414 metadata, RFC 9207 `iss`, OIDC and RFC 9728 authorization_servers:
    # SITE_URL when set, else derived from the request origin by DOT in each of those places.
    "OIDC_ISS_ENDPOINT": SITE_URL,
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": OIDC_RSA_PRIVATE_KEY,
    # Scopes come from `authserver.scopes.scope_registry`, where installed apps add their own.
    "SCOPES_BACKEND_CLASS": "authserver.scopes.RegistryScopes",
    # OAuth 2.1: authorization code with PKCE S256 only; public clients are the common case.
    "PKCE_REQUIRED": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    # client_credentials: for clients an operator creates (e.g. a resource server that introspects);
    # such tokens act for no user, so the MCP endpoint refuses them.
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token", "client_credentials"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": _AUTH_METHODS,
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": _AUTH_METHODS,
    # https only; `authserver.models.Application` adds http for loopback redirect URIs (RFC 8252 §7.3).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    # RFC 8252 §7.3: a loopback redirect matches on any port (the app picks one at run time).
    "ALLOW_LOCALHOST_LOOPBACK": True,
    # Every RFC 9700 gate on.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # Refresh tokens rotate on every use; replaying a used one revokes the whole family.
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TOKEN_EXPIRE_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": REFRESH_TOKEN_EXPIRE_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    # DOT's own token-history auto-approval stays off: consent is remembered by authserver.ConsentGrant.
    "REQUEST_APPROVAL_PROMPT": "force",
    # RFC 7591/7592: agents register themselves, anonymously.
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    # Client ID Metadata Documents: an https URL as client_id, fetched SSRF-hardened by DOT.
    "CIMD_ENABLED": True,
    # DOT's fetcher, then "none" for documents that also list it as supported (ChatGPT's private_key_jwt).
    "CIMD_METADATA_FETCHER": "authserver.metadata_documents.MetadataDocumentFetcher",
    "OAUTH2_PROTECTED_RESOURCE_NAME": MCP_SERVER_NAME,
}

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # No token, code or secret in a log line, even one a client put in a URL (authserver/log_redaction.py).
    "filters": {"secrets_redacted": {"()": "authserver.log_redaction.SecretsRedacted"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["secrets_redacted"]}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # DOT logs each refused redirect URI and metadata fetch at WARNING; keep them.
        "oauth2_provider": {"level": "INFO"},
        # oauthlib's DEBUG lines carry request parameters and tokens: never below INFO.
        "oauthlib": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
