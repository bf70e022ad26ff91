"""authserver's settings: one dict setting, ``AUTHSERVER``, with every default defined here.

Read lazily, on first use (``app_settings.REGISTRATION_RATE_LIMIT``), and read again whenever the
setting changes (``override_settings`` sends ``setting_changed``, as django-oauth-toolkit's settings
listen for), so a site's own values always reach the code; nothing is read at import time. The site's public
origin is not here: it is django-oauth-toolkit's ``OIDC_ISS_ENDPOINT`` (the issuer, RFC 8414 §2),
read through :func:`authserver.resources.public_origin`, so the issuer and every URL this site
publishes cannot disagree. :func:`oauth2_provider_settings` builds DOT's ``OAUTH2_PROVIDER`` dict
with this app's policy, so a site sets the few values that are its own.

Misconfiguration is reported by ``manage.py check`` (``authserver/checks.py``), never at import.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

SETTING_NAME = "AUTHSERVER"

DEFAULTS: dict[str, Any] = {
    # What the sign-in and consent pages call this site ("Sign in to <SITE_NAME>"); empty: its host name.
    "SITE_NAME": "",
    # Private-use redirect schemes (RFC 8252 §7.1) of well-known agents; reverse-domain schemes
    # (com.example.app) are always allowed.
    "NATIVE_APP_REDIRECT_SCHEMES": ["cursor", "vscode", "vscode-insiders", "windsurf"],
    # RFC 7591 registration limits: a larger body is 413; longer lists and strings are refused.
    "REGISTRATION_MAX_BODY_BYTES": 64 * 1024,
    "REGISTRATION_MAX_REDIRECT_URIS": 10,
    "REGISTRATION_MAX_URI_LENGTH": 2000,
    "REGISTRATION_MAX_FIELD_LENGTH": 200,
    # Registrations per client address per window (429 with Retry-After above it), counted in the cache.
    "REGISTRATION_RATE_LIMIT": 30,
    "REGISTRATION_RATE_WINDOW_SECONDS": 3600,
    # `manage.py prune`: self-registered clients never used within the grace period, or idle longer
    # than the retention period, are deleted; so are audit events older than their retention.
    "CLIENT_UNUSED_GRACE_HOURS": 24,
    "CLIENT_IDLE_RETENTION_DAYS": 90,
    "AUDIT_RETENTION_DAYS": 365,
    # Token endpoint rate limits, counted in the cache (429 with Retry-After above one; 0 switches it off):
    # requests per address (at the token and, counted apart, the revocation endpoint), and tokens issued
    # per client, per window. An address is a person's agents or a whole office behind one NAT: 10 a
    # second on average is far above what they send (a token lives an hour), and far below a flood.
    "TOKEN_RATE_LIMIT_PER_ADDRESS": 600,
    "TOKEN_RATE_LIMIT_PER_CLIENT": 6_000,
    "TOKEN_RATE_WINDOW_SECONDS": 60,
    # Refusals anyone can cause (a garbage client assertion) are audited once per kind, client, address
    # and reason per window, with how many there were; at most this many rows per kind and client per
    # window, the rest counted on one more.
    "AUDIT_REFUSAL_WINDOW_SECONDS": 60,
    "AUDIT_REFUSAL_ROWS_PER_WINDOW": 10,
}


class AppSettings:
    """``<setting_name>[name]`` if the site set it, else the default; an unknown name is an AttributeError.
    A value read is kept (the MCP path reads some on every request) until the setting changes."""

    def __init__(self, setting_name: str, defaults: dict[str, Any]):
        self.setting_name = setting_name
        self.defaults = defaults
        setting_changed.connect(self._setting_changed, weak=False)

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"{self.setting_name} has no setting {name!r}")
        value = self.user_settings().get(name, self.defaults[name])
        setattr(self, name, value)  # found in __dict__ from now on, until _setting_changed
        return value

    def _setting_changed(self, *, setting: str, **kwargs) -> None:
        if setting == self.setting_name:
            for name in self.defaults:
                self.__dict__.pop(name, None)

    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, self.setting_name, None) or {}

    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings()) - set(self.defaults))

    def unknown_keys_check(self, check_id: str) -> list:
        """A system check error (``check_id``) naming the keys the site set that this app does not know."""
        from django.core import checks

        unknown = self.unknown_keys()
        if not unknown:
            return []
        return [
            checks.Error(
                f"{self.setting_name} has unknown keys: {', '.join(unknown)}.",
                hint="The keys are listed in README.md, 'Add it to your Django site'.",
                id=check_id,
            )
        ]


app_settings = AppSettings(SETTING_NAME, DEFAULTS)

AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
# RFC 7523 §2.1 (an identity assertion grant, MCP enterprise-managed authorization) and RFC 8693 (this
# server issuing such grants for its own signed-in people, to other authorization servers).
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
# The MCP extension a resource server advertises when this authorization server accepts ID-JAGs.
ENTERPRISE_MANAGED_AUTHORIZATION = "io.modelcontextprotocol/enterprise-managed-authorization"

# django-oauth-toolkit's settings that make it this authorization server. `manage.py check` warns
# when a site's OAUTH2_PROVIDER differs from one of these (authserver.W010).
OAUTH2_PROVIDER_POLICY: dict[str, Any] = {
    "OAUTH2_VALIDATOR_CLASS": "authserver.dot.validator.MCPOAuth2Validator",
    # oauthlib's OpenID Connect server with the PKCE and request syntax checks added.
    "OAUTH2_SERVER_CLASS": "authserver.dot.server.OAuthServer",
    "OAUTH2_BACKEND_CLASS": "authserver.dot.backend.AbsoluteURIOAuthLibCore",
    # Client secrets are generated (~760 bits), so a salted HMAC-SHA256, not PBKDF2 (authserver/hashers.py).
    "CLIENT_SECRET_HASHER": "client_secret_pbkdf2_sha256",
    # Scopes come from `authserver.scopes.scope_registry`, where installed apps add their own.
    "SCOPES_BACKEND_CLASS": "authserver.scopes.RegistryScopes",
    # OAuth 2.1: authorization code with PKCE S256 only; public clients are the common case.
    "PKCE_REQUIRED": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    # client_credentials: for service clients an operator creates (authserver.service_clients); the
    # jwt-bearer grant carries a trusted IdP's identity assertion, token exchange issues them
    # (authserver.identity_assertions).
    "OAUTH2_GRANT_TYPES_SUPPORTED": [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        JWT_BEARER_GRANT_TYPE,
        TOKEN_EXCHANGE_GRANT_TYPE,
    ],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": AUTH_METHODS,
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": AUTH_METHODS,
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
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    # DOT's own token-history auto-approval stays off: consent is remembered by authserver.ConsentGrant.
    "REQUEST_APPROVAL_PROMPT": "force",
    # RFC 7591/7592: agents register themselves, anonymously.
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    # Client ID Metadata Documents: an https URL as client_id, fetched SSRF-hardened by DOT; each new
    # document saved counts against the per-address registration limit, as an RFC 7591 registration does.
    "CIMD_ENABLED": True,
    "CIMD_REGISTRATION_PERMISSION_CLASSES": ("authserver.ratelimit.MetadataDocumentRegistrationLimit",),
    # DOT's fetcher, then "none" for documents that also list it as supported (ChatGPT's private_key_jwt).
    "CIMD_METADATA_FETCHER": "authserver.dot.metadata_documents.MetadataDocumentFetcher",
    "OIDC_ENABLED": True,
}


def oauth2_provider_settings(
    *,
    site_url: str = "",
    oidc_rsa_private_key: str = "",
    access_token_expire_seconds: int = 3600,
    refresh_token_expire_seconds: int = 30 * 24 * 3600,
    **overrides: Any,
) -> dict[str, Any]:
    """django-oauth-toolkit's ``OAUTH2_PROVIDER`` for this authorization server, for a site's settings.

    ``site_url`` is the public origin (``https://mcp.example.com``): the issuer of RFC 8414 metadata,
    RFC 9207 ``iss`` and OpenID Connect, and the origin of the MCP resource identifiers (RFC 8707).
    Empty: each request's origin (local development). ``oidc_rsa_private_key`` (PEM) signs ID tokens;
    without one the ``openid`` scope is not offered (``authserver.W003``). ``overrides`` are DOT
    settings by their own names, e.g. ``OAUTH2_PROTECTED_RESOURCE_NAME``.
    """
    dot_settings = {
        **OAUTH2_PROVIDER_POLICY,
        "OIDC_ISS_ENDPOINT": site_url.rstrip("/"),
        "OIDC_RSA_PRIVATE_KEY": oidc_rsa_private_key,
        "OIDC_ENABLED": bool(oidc_rsa_private_key),
        "ACCESS_TOKEN_EXPIRE_SECONDS": access_token_expire_seconds,
        "REFRESH_TOKEN_EXPIRE_SECONDS": refresh_token_expire_seconds,
    }
    dot_settings.update(overrides)
    return dot_settings


def refresh_token_lifetime() -> timedelta | None:
    """django-oauth-toolkit's ``REFRESH_TOKEN_EXPIRE_SECONDS`` (seconds or a timedelta) as a timedelta;
    None when refresh tokens never expire."""
    from oauth2_provider.settings import oauth2_settings  # not at import: the site's settings build on this module

    lifetime = oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS
    if not lifetime:
        return None
    return lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=lifetime)


def site_name(request) -> str:
    """What the pages call this site: ``AUTHSERVER["SITE_NAME"]``, else the host the person came to."""
    return app_settings.SITE_NAME or request.get_host().split(":")[0]


def axes_settings(*, failure_limit: int = 5, cooloff: timedelta = timedelta(minutes=15)) -> dict[str, Any]:
    """django-axes' settings for this site's sign-in, for a site's settings: ``globals().update(axes_settings())``.

    ``failure_limit`` wrong passwords for one username from one address pause that pair for ``cooloff``
    (429, the sign-in page's own "Too many attempts" page); a sign-in resets the count. Another address,
    or another username from that address, is not paused: a stranger's wrong passwords never lock the
    owner out. Only an address that failed ten times as often, for any usernames (password spraying),
    is paused as a whole; and an account that failed 100 times from many addresses is paused except at
    addresses it signed in from lately (``authserver.lockout``). An IPv6 address counts by its /64.
    ``manage.py check`` warns about a policy that locks a whole address or a whole account, that never
    expires, that counts failures for no account, or each IPv6 address apart (authserver.W013, W015,
    W016, W018).
    """
    return {
        "AXES_FAILURE_LIMIT": failure_limit,
        "AXES_COOLOFF_TIME": cooloff,
        "AXES_LOCKOUT_PARAMETERS": "authserver.lockout.lockout_parameters",
        # NIST SP 800-63B §5.2.2, RFC 6177: an IPv6 address counts by its /64, which one subscriber
        # typically holds whole (the audit trail keeps the address itself).
        "AXES_CLIENT_IP_CALLABLE": "authserver.lockout.lockout_address",
        # CWE-770: a sign-in refused while locked out counts nothing (django-axes would otherwise append
        # its POST data to the attempt's row each time, and restart the cool-off): the lock ends
        # `cooloff` after it began, and one address adds at most `failure_limit` to an account's count.
        "AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT": False,
        # The sign-in form's field, whatever the user model's USERNAME_FIELD (an email login too).
        "AXES_USERNAME_FORM_FIELD": "username",
        "AXES_USERNAME_CALLABLE": "authserver.lockout.lockout_username",
        "AXES_RESET_ON_SUCCESS": True,
        "AXES_HTTP_RESPONSE_CODE": 429,
        "AXES_LOCKOUT_TEMPLATE": "authserver/locked_out.html",
    }
