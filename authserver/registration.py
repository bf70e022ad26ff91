"""Who may register which redirect URIs and metadata: the policy for RFC 7591 registration and
Client ID Metadata Documents, applied before django-oauth-toolkit stores anything.

Redirect URIs (RFC 9700 §2.1, RFC 8252 §7):

- ``https`` URIs with a host;
- ``http`` only to a loopback host (``127.0.0.1``, ``[::1]``, ``localhost``), which then matches on
  any port (RFC 8252 §7.3; DOT's matcher with ``ALLOW_LOCALHOST_LOOPBACK``);
- private-use schemes of native apps (RFC 8252 §7.1): reverse-domain schemes (``com.example.app:``)
  and the well-known agent schemes in ``NATIVE_APP_REDIRECT_SCHEMES`` (``cursor:``, ``vscode:``);
- never a fragment (RFC 6749 §3.1.2), credentials, a wildcard, or any other scheme
  (``javascript:``, ``data:``, ``file:``...).
"""

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
# Schemes that can run code or read files wherever they are opened: never a redirect target.
DANGEROUS_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "view-source"}


def is_loopback_host(hostname: str | None) -> bool:
    """``localhost`` or a loopback IP literal (RFC 8252 §7.3, §8.3)."""
    if not hostname:
        return False
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def is_private_use_scheme(scheme: str) -> bool:
    """RFC 8252 §7.1: a native app's own scheme (reverse domain name, or a listed agent scheme)."""
    scheme = scheme.lower()
    if not SCHEME.match(scheme) or scheme in DANGEROUS_SCHEMES or scheme in ("http", "https"):
        return False
    return "." in scheme or scheme in settings.NATIVE_APP_REDIRECT_SCHEMES


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered as a redirect URI, or None when it can."""
    if len(uri) > settings.REGISTRATION_MAX_URI_LENGTH:
        return f"a redirect URI is longer than {settings.REGISTRATION_MAX_URI_LENGTH} characters"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in uri):
        return "a redirect URI contains whitespace or control characters"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "a redirect URI is not a valid URI"
    scheme = parts.scheme.lower()
    if not scheme:
        return "a redirect URI must be absolute"
    # RFC 6749 §3.1.2: the redirection endpoint MUST NOT include a fragment component.
    if "#" in uri:
        return "a redirect URI must not contain a fragment"
    if "*" in uri:
        return "a redirect URI must not contain wildcards"
    if "@" in parts.netloc:
        return "a redirect URI must not carry credentials"
    if scheme == "https":
        return None if parts.hostname else "an https redirect URI needs a host"
    if scheme == "http":
        # RFC 8252 §7.3 / RFC 9700 §2.1: plain http only to this device's loopback interface.
        if is_loopback_host(parts.hostname):
            return None
        return "http redirect URIs must point at a loopback host (127.0.0.1, [::1] or localhost); use https"
    if is_private_use_scheme(scheme):
        return None
    return f"the {scheme!r} scheme is not allowed for redirect URIs"


def registration_problem(data: dict) -> tuple[str, str] | None:
    """RFC 7591 §3.2.2: ``(error, description)`` for metadata this server will not register, else None.

    Checked before django-oauth-toolkit sees the request, so a refused registration stores nothing.
    """
    redirect_uris = data.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not all(isinstance(uri, str) for uri in redirect_uris):
        return "invalid_redirect_uri", "redirect_uris must be an array of strings"
    if not redirect_uris:
        return "invalid_redirect_uri", "at least one redirect URI is required"
    if len(redirect_uris) > settings.REGISTRATION_MAX_REDIRECT_URIS:
        return "invalid_redirect_uri", f"at most {settings.REGISTRATION_MAX_REDIRECT_URIS} redirect URIs are allowed"
    for uri in redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem:
            return "invalid_redirect_uri", problem

    short, long = settings.REGISTRATION_MAX_FIELD_LENGTH, settings.REGISTRATION_MAX_URI_LENGTH
    caps = {
        **dict.fromkeys(("client_name", "software_id", "software_version"), short),
        **dict.fromkeys(("client_uri", "logo_uri", "tos_uri", "policy_uri", "scope"), long),
    }
    for field, cap in caps.items():
        value = data.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            return "invalid_client_metadata", f"{field} must be a string"
        if len(value) > cap:
            return "invalid_client_metadata", f"{field} is longer than {cap} characters"

    # RFC 7591 §2.1: grant_types and response_types must agree. This server issues codes only.
    grant_types = data.get("grant_types", ["authorization_code"])
    response_types = data.get("response_types", ["code"])
    for field, value in (("grant_types", grant_types), ("response_types", response_types)):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return "invalid_client_metadata", f"{field} must be an array of strings"
    unsupported = set(grant_types) - {"authorization_code", "refresh_token"}
    if unsupported:
        return "invalid_client_metadata", f"unsupported grant_types: {', '.join(sorted(unsupported))}"
    if "authorization_code" not in grant_types:
        return "invalid_client_metadata", "grant_types must include authorization_code"
    if set(response_types) != {"code"}:
        return "invalid_client_metadata", 'response_types must be ["code"] (the authorization code flow)'
    return None
