"""``manage.py check`` for a site using authserver: misconfiguration said with an id and a hint,
never a crash at import (the way ``django.contrib.auth.checks`` does it)."""

from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, reverse

from authserver.conf import OAUTH2_PROVIDER_POLICY, app_settings
from authserver.dot import DOT_VERSION_CHECKED, DOT_VERSIONS_TESTED
from authserver.resources import is_origin

APPLICATION_MODEL = "authserver.Application"
PASSWORD_CHANGE_SIGNS_OUT = "authserver.accounts.PasswordChangeSignsOut"
CLIENT_SECRET_HASHER = "authserver.hashers.ClientSecretHasher"
# Middleware authserver relies on, with what a site loses without it.
MIDDLEWARE_NEEDED = {
    "authserver.errors.ErrorResponseMiddleware": "JSON endpoints answer HTML error pages, 503s lack Retry-After",
    "authserver.audit.AuditRequestMiddleware": "audit events recorded from model signals lose the caller's address",
    "corsheaders.middleware.CorsMiddleware": "browser-based MCP clients cannot call the OAuth endpoints",
    "axes.middleware.AxesMiddleware": "repeated wrong passwords are not locked out",
}
URLCONFS_NEEDED = {
    "oauth2_provider:token": ('path("", include("authserver.urls"))', " at the origin root (RFC 8414 §3)"),
    "authserver:login": ('path("accounts/", include("authserver.account_urls"))', ""),
}


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


@checks.register(checks.Tags.compatibility)
def check_dot_version(app_configs=None, **kwargs):
    try:
        installed = version("django-oauth-toolkit")
    except PackageNotFoundError:  # pragma: no cover - DOT is a dependency
        return []
    lowest, untested = DOT_VERSIONS_TESTED
    if lowest <= _version_tuple(installed) < untested:
        return []
    return [
        checks.Warning(
            f"django-oauth-toolkit {installed} is installed; authserver was tested with "
            f"{'.'.join(map(str, lowest))} up to (not including) {'.'.join(map(str, untested))}.",
            hint=f"Install django-oauth-toolkit=={DOT_VERSION_CHECKED}, or run the test suite "
            "(tests/authserver/test_dot_boundary.py pins every private name used) before serving.",
            id="authserver.W001",
        )
    ]


def _same(configured, policy) -> bool:
    as_list = (list, tuple)
    if isinstance(configured, as_list) and isinstance(policy, as_list):
        return list(configured) == list(policy)
    return configured == policy


@checks.register(checks.Tags.security)
def check_oauth2_provider(app_configs=None, **kwargs):
    from oauth2_provider.settings import DEFAULTS as DOT_DEFAULTS
    from oauth2_provider.settings import oauth2_settings

    found = []
    if getattr(settings, "OAUTH2_PROVIDER_APPLICATION_MODEL", None) != APPLICATION_MODEL:
        found.append(
            checks.Error(
                f"OAUTH2_PROVIDER_APPLICATION_MODEL must be {APPLICATION_MODEL!r}.",
                hint=f'Add OAUTH2_PROVIDER_APPLICATION_MODEL = "{APPLICATION_MODEL}" to the settings.',
                id="authserver.E002",
            )
        )
    configured = {**DOT_DEFAULTS, **(getattr(settings, "OAUTH2_PROVIDER", None) or {})}
    differing = [name for name, value in OAUTH2_PROVIDER_POLICY.items() if not _same(configured.get(name), value)]
    differing = [name for name in differing if name != "OIDC_ENABLED"]  # on only with a signing key (E003)
    if differing:
        found.append(
            checks.Warning(
                "OAUTH2_PROVIDER differs from authserver's policy in: " + ", ".join(differing) + ".",
                hint="Build it with authserver.conf.oauth2_provider_settings(site_url=..., ...), passing only "
                "the values that are the site's own; DOT's defaults offer scopes read/write, the implicit and "
                "password grants, and no registration.",
                id="authserver.W010",
            )
        )
    if oauth2_settings.OIDC_ENABLED and not oauth2_settings.OIDC_RSA_PRIVATE_KEY:
        found.append(
            checks.Error(
                "OpenID Connect is on (the openid scope is offered) but there is no key to sign ID tokens with.",
                hint="Set OIDC_RSA_PRIVATE_KEY (a PEM RSA key: `openssl genrsa 2048`), or leave oidc_rsa_private_key "
                "out of oauth2_provider_settings() to turn OpenID Connect off.",
                id="authserver.E003",
            )
        )
    issuer = oauth2_settings.OIDC_ISS_ENDPOINT or ""
    if issuer and not is_origin(issuer):
        found.append(
            checks.Error(
                f"The public URL (OIDC_ISS_ENDPOINT) must be an origin like https://mcp.example.com, not {issuer!r}.",
                hint="Pass site_url=<scheme>://<host>[:port] to oauth2_provider_settings().",
                id="authserver.E004",
            )
        )
    elif not settings.DEBUG and urlsplit(issuer).scheme != "https":
        found.append(
            checks.Warning(
                f"The public URL is {issuer or 'unset (each request names it)'} with DEBUG off: OAuth 2.1 §1.5 "
                "requires TLS, and without a fixed issuer a Host header chooses the URLs this server publishes.",
                hint="Pass site_url='https://...' to oauth2_provider_settings().",
                id="authserver.W004",
            )
        )
    return found


@checks.register()
def check_site_wiring(app_configs=None, **kwargs):
    found = app_settings.unknown_keys_check("authserver.E005")
    validators = [entry.get("NAME") for entry in settings.AUTH_PASSWORD_VALIDATORS]
    if PASSWORD_CHANGE_SIGNS_OUT not in validators:
        found.append(
            checks.Warning(
                "A changed password does not revoke the person's OAuth tokens.",
                hint=f'Add {{"NAME": "{PASSWORD_CHANGE_SIGNS_OUT}"}} to AUTH_PASSWORD_VALIDATORS.',
                id="authserver.W006",
            )
        )
    for middleware, loss in MIDDLEWARE_NEEDED.items():
        if middleware not in settings.MIDDLEWARE:
            found.append(
                checks.Warning(
                    f"{middleware} is not in MIDDLEWARE: {loss}.",
                    hint="README.md, 'Add it to your Django site', lists the middleware and their order.",
                    id="authserver.W007",
                )
            )
    for name, include in (
        ("oauth2_provider:token", "authserver.urls"),
        ("authserver:login", "authserver.account_urls"),
    ):
        try:
            reverse(name)
        except NoReverseMatch:
            found.append(
                checks.Error(
                    f"{include} is not in the site's URLs ({name} has no URL).",
                    hint=f'Add path("", include("{include}")) to the URLconf'
                    + (
                        " (at the origin root: RFC 8414 §3 puts metadata there)."
                        if include == "authserver.urls"
                        else ""
                    ),
                    id="authserver.E008",
                )
            )
    if CLIENT_SECRET_HASHER not in settings.PASSWORD_HASHERS:
        found.append(
            checks.Error(
                "Confidential clients' secrets cannot be hashed or checked: the client secret hasher is not "
                "in PASSWORD_HASHERS.",
                hint=f'Add "{CLIENT_SECRET_HASHER}" to PASSWORD_HASHERS, after the hasher for people\'s passwords.',
                id="authserver.E011",
            )
        )
    allowed_headers = [header.lower() for header in getattr(settings, "CORS_ALLOW_HEADERS", ())]
    if "corsheaders" in settings.INSTALLED_APPS and "mcp-protocol-version" not in allowed_headers:
        found.append(
            checks.Warning(
                "Browsers will not let MCP clients send MCP-Protocol-Version to the discovery documents.",
                hint='Set CORS_ALLOW_HEADERS = (*corsheaders.defaults.default_headers, "mcp-protocol-version").',
                id="authserver.W012",
            )
        )
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if not settings.DEBUG and backend.endswith(("LocMemCache", "DummyCache")):
        found.append(
            checks.Warning(
                "The default cache is per process: registration rate limits, refresh-token and metadata-document "
                "bookkeeping and the revocation of remembered tokens then hold in one worker only.",
                hint="Use a shared cache (Redis, or Django's database cache) when serving with several workers.",
                id="authserver.W009",
            )
        )
    return found


@checks.register(checks.Tags.database)
def check_service_clients(app_configs=None, databases=None, **kwargs):
    """Service clients already stored that get no tokens, or fewer scopes than listed (RFC 6749 §3.3:
    none listed is none issued). Run by ``migrate`` and ``manage.py check --database default``."""
    from django.db import DatabaseError

    from authserver.models import Application
    from authserver.service_clients import service_client_problem

    found = []
    for alias in databases or ():
        candidates = Application.objects.using(alias).filter(
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            registration_source=Application.RegistrationSource.MANUAL,
        )
        try:
            problems = [(client, service_client_problem(client=client)) for client in candidates]
        except DatabaseError:  # not migrated yet: nothing stored to check
            continue
        found.extend(
            checks.Warning(
                f"Service client {client.name or client.client_id!r} ({client.client_id}): {problem}.",
                hint="In the admin (Clients), list the scopes it may get (and save it: that makes its service "
                "user), or tick 'may introspect tokens' if it is a resource server that only introspects.",
                id="authserver.W014",
            )
            for client, problem in problems
            if problem
        )
    return found


LOCKOUT_POLICY = "authserver.lockout.lockout_parameters"
LOCKOUT_ADDRESS = "authserver.lockout.lockout_address"


@checks.register(checks.Tags.security)
def check_sign_in_lockout(app_configs=None, **kwargs):
    """django-axes' lockout policy: whom a stranger's wrong passwords lock out, and for how long."""
    if "axes" not in settings.INSTALLED_APPS:
        return []
    from axes.conf import settings as axes  # django-axes' defaults filled in (3 failures lock an address forever)

    if not axes.AXES_ENABLED or not axes.AXES_LOCK_OUT_AT_FAILURE:
        return []
    hint = "Apply authserver's policy: globals().update(authserver.conf.axes_settings()) in the settings."
    found = []
    parameters = axes.AXES_LOCKOUT_PARAMETERS
    groups = [[group] if isinstance(group, str) else list(group) for group in parameters or ()]
    if not isinstance(parameters, (list, tuple)):
        groups = []  # a site's own callable: its policy, not ours to read (ours counts the pair first)
    # OWASP ASVS 4.0 V2.2.1: a lockout must not be a denial of service of its own.
    for group in groups:
        if "username" not in group:
            who = "everyone signing in from that address, the owner included"
        elif "ip_address" not in group:
            who = "the account's owner, from anywhere: anyone who knows a username can lock it"
        else:
            continue
        found.append(
            checks.Warning(
                f"AXES_LOCKOUT_PARAMETERS locks by {' and '.join(group)}: wrong passwords lock out {who}.",
                hint=hint + ' Or lock by the pair: AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]].',
                id="authserver.W013",
            )
        )
    # NIST SP 800-63B §5.2.2: throttle failed attempts; a lock that never ends needs an operator.
    if axes.AXES_COOLOFF_TIME is None:
        found.append(
            checks.Warning(
                "AXES_COOLOFF_TIME is None: a lockout never ends until `manage.py axes_reset`.",
                hint=hint + " Or set AXES_COOLOFF_TIME = timedelta(minutes=15).",
                id="authserver.W015",
            )
        )
    # Django's sign-in form posts `username` whatever USERNAME_FIELD is: axes reading another field
    # sees no username at all, and its pair lock is then a lock of the whole address.
    counts_usernames = parameters == LOCKOUT_POLICY or any("username" in group for group in groups)
    if counts_usernames and axes.AXES_USERNAME_CALLABLE is None and axes.AXES_USERNAME_FORM_FIELD != "username":
        found.append(
            checks.Warning(
                f"AXES_USERNAME_FORM_FIELD is {str(axes.AXES_USERNAME_FORM_FIELD)!r} (by default the user model's "
                "USERNAME_FIELD), but the sign-in form posts `username`: failures are counted for no account.",
                hint=hint + ' Or set AXES_USERNAME_FORM_FIELD = "username".',
                id="authserver.W016",
            )
        )
    # NIST SP 800-63B §5.2.2 with RFC 6177: one subscriber typically holds a whole IPv6 /64, so counting
    # its addresses one by one gives it 2^64 times the guesses (django-axes' default).
    counts_addresses = parameters == LOCKOUT_POLICY or any("ip_address" in group for group in groups)
    if counts_addresses and axes.AXES_CLIENT_IP_CALLABLE is None:
        found.append(
            checks.Warning(
                "AXES_CLIENT_IP_CALLABLE is not set: django-axes counts each IPv6 address apart, so one "
                "subscriber's /64 gets as many guesses as it has addresses.",
                hint=hint + f' Or set AXES_CLIENT_IP_CALLABLE = "{LOCKOUT_ADDRESS}" (an IPv6 address by its /64).',
                id="authserver.W018",
            )
        )
    return found


# Backends that delete entries once they hold MAX_ENTRIES (Django's default: 300), which entries not
# by age: the database cache the first by key, a local-memory one the most recently used.
CULLING_CACHES = ("DatabaseCache", "LocMemCache", "FileBasedCache")
CACHE_MAX_ENTRIES_MIN = 100_000


def _cache_max_entries(params: dict) -> int:
    # Read as django.core.cache.backends.base.BaseCache reads it.
    value = params.get("max_entries", (params.get("OPTIONS") or {}).get("MAX_ENTRIES", 300))
    try:
        return int(value)
    except (TypeError, ValueError):
        return 300


@checks.register(checks.Tags.caches, checks.Tags.security)
def check_cache_capacity(app_configs=None, **kwargs):
    """A default cache that deletes entries when full forgets, under a flood from many addresses, the
    rate-limit counts (CWE-799: a count forgotten is a limit lifted) and the tombstones that tell other
    workers a token was revoked (RFC 7009 §1: a revocation invalidates the token, in every worker)."""
    params = settings.CACHES.get("default", {})
    backend = params.get("BACKEND", "")
    max_entries = _cache_max_entries(params)
    if not backend.endswith(CULLING_CACHES) or max_entries >= CACHE_MAX_ENTRIES_MIN:
        return []
    return [
        checks.Warning(
            f"The default cache ({backend.rsplit('.', 1)[-1]}) deletes entries once it holds {max_entries:,}: "
            "requests from that many addresses make it forget rate-limit counts and the revocation notices "
            "other workers read.",
            hint=f'Set CACHES["default"]["OPTIONS"] = {{"MAX_ENTRIES": 1_000_000}} (at least '
            f"{CACHE_MAX_ENTRIES_MIN:,}) and run `manage.py prune` on a schedule, or use Redis with "
            "maxmemory-policy noeviction.",
            id="authserver.W017",
        )
    ]
