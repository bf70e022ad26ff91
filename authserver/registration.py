"""Who may register which redirect URIs and metadata: the policy for RFC 7591 registration and
Client ID Metadata Documents, applied before django-oauth-toolkit stores anything.

Redirect URIs (RFC 9700 §2.1, RFC 8252 §7):

- ``https`` URIs with a host;
- ``http`` only to a loopback host (``127.0.0.1``, ``[::1]``, ``localhost``), which then matches on
  any port (RFC 8252 §7.3; DOT's matcher with ``ALLOW_LOCALHOST_LOOPBACK``);
- private-use schemes of native apps (RFC 8252 §7.1): reverse-domain schemes (``com.example.app:``)
  and the well-known agent schemes in ``NATIVE_APP_REDIRECT_SCHEMES`` (``cursor:``, ``vscode:``);
- never a fragment (RFC 6749 §3.1.2), credentials, a wildcard, non-ASCII characters (RFC 3986: an
  internationalized host is written in its ``xn--`` form) or any other scheme (``javascript:``,
  ``data:``, ``file:``...);
- matched exactly as registered (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3), with only the loopback
  port exception.

Client metadata (RFC 7591 §2) is parsed once, by :func:`client_metadata_parse`, into what this
server registers; every refusal names the field.
"""

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authserver.conf import app_settings
from authserver.display_text import display_text_problem

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
    return "." in scheme or scheme in app_settings.NATIVE_APP_REDIRECT_SCHEMES


def _has_space_or_control(text: str) -> bool:
    return any(ord(char) <= 0x20 or ord(char) == 0x7F for char in text)


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered as a redirect URI, or None when it can."""
    if len(uri) > app_settings.REGISTRATION_MAX_URI_LENGTH:
        return f"a redirect URI is longer than {app_settings.REGISTRATION_MAX_URI_LENGTH} characters"
    if _has_space_or_control(uri):
        return "a redirect URI contains whitespace or control characters"
    if not uri.isascii():
        return "a redirect URI must be ASCII (RFC 3986); write an internationalized host in its xn-- form"
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


# RFC 8252 §7.3: a loopback redirect URI, split around its port (which may differ at run time).
LOOPBACK_REDIRECT = re.compile(r"^(http://(?:127\.0\.0\.1|\[::1\]|localhost))(?::\d{1,5})?([/?].*)?$")


def redirect_uri_matches(*, registered: str, requested: str) -> bool:
    """OAuth 2.1 §4.1.1 / RFC 9700 §4.1.3: simple string comparison; for a loopback ``http`` URI
    (RFC 8252 §7.3) the port may differ, nothing else, not even the case of a letter."""
    if requested == registered:
        return True
    loopback = LOOPBACK_REDIRECT.match(registered), LOOPBACK_REDIRECT.match(requested)
    return all(loopback) and loopback[0].groups("") == loopback[1].groups("")


class ClientMetadataRefused(Exception):
    """RFC 7591 §3.2.2: metadata this server will not register; ``error`` is the RFC's code."""

    def __init__(self, error: str, description: str, *, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
# What this server issues for a registered client: codes, and refresh tokens with them.
GRANT_TYPES = ("authorization_code", "refresh_token")
RESPONSE_TYPES = ("code",)
# RFC 7591 §2 metadata kept and echoed as registered: URLs shown (or linked) as the client's.
URL_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
TEXT_FIELDS = ("software_id", "software_version")
MAX_CONTACTS = 10


@dataclass(frozen=True)
class ClientMetadata:
    """What this server registers from an RFC 7591 request."""

    redirect_uris: list[str]
    token_endpoint_auth_method: str
    client_name: str = ""
    # URL_FIELDS, TEXT_FIELDS and contacts, as registered.
    descriptive: dict = field(default_factory=dict)


def _refuse(field_name: str, problem: str, error: str = "invalid_client_metadata"):
    raise ClientMetadataRefused(error, f"{field_name}: {problem}")


def _text(data: dict, name: str, cap: int) -> str | None:
    value = data.get(name)
    return None if value is None else _text_value(name, value, cap)


def _text_value(name: str, value, cap: int) -> str:
    if not isinstance(value, str):
        _refuse(name, "must be a string")
    if len(value) > cap:
        _refuse(name, f"is longer than {cap} characters")
    problem = display_text_problem(value)
    if problem:
        _refuse(name, problem)
    return value


def _strings(data: dict, name: str, default: list[str]) -> list[str]:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        _refuse(name, "must be an array of strings")
    return value


def _web_url_problem(url: str) -> str | None:
    if not url.isascii() or _has_space_or_control(url):
        return "must be an ASCII URL without spaces"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        return "must be an https URL with a host"
    return None


def client_metadata_parse(data: dict, *, auth_method_default: str = "client_secret_basic") -> ClientMetadata:
    """RFC 7591 §2 metadata as this server registers it, or :class:`ClientMetadataRefused`.

    ``null`` is the same as leaving a field out (RFC 7592 §2.2 treats omitted fields as null), and
    fields this server does not understand are ignored (RFC 7591 §2). A client without
    ``token_endpoint_auth_method`` gets ``auth_method_default`` (RFC 7591 §2: client_secret_basic
    at registration; on an RFC 7592 update, the method it has).
    """
    data = {name: value for name, value in data.items() if value is not None}

    redirect_uris = data.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not all(isinstance(uri, str) for uri in redirect_uris):
        _refuse("redirect_uris", "must be an array of strings", "invalid_redirect_uri")
    if not redirect_uris:
        _refuse("redirect_uris", "at least one redirect URI is required", "invalid_redirect_uri")
    if len(redirect_uris) > app_settings.REGISTRATION_MAX_REDIRECT_URIS:
        cap = app_settings.REGISTRATION_MAX_REDIRECT_URIS
        _refuse("redirect_uris", f"at most {cap} are allowed", "invalid_redirect_uri")
    for uri in redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem:
            _refuse("redirect_uris", problem, "invalid_redirect_uri")

    short, long = app_settings.REGISTRATION_MAX_FIELD_LENGTH, app_settings.REGISTRATION_MAX_URI_LENGTH
    client_name = _text(data, "client_name", short) or ""
    descriptive: dict = {}
    for name in TEXT_FIELDS:
        value = _text(data, name, short)
        if value is not None:
            descriptive[name] = value
    for name in URL_FIELDS:
        value = _text(data, name, long)
        if value is not None:
            problem = _web_url_problem(value)
            if problem:
                _refuse(name, problem)
            descriptive[name] = value
    contacts = _strings(data, "contacts", [])
    if len(contacts) > MAX_CONTACTS:
        _refuse("contacts", f"at most {MAX_CONTACTS} are allowed")
    for contact in contacts:
        _text_value("contacts", contact, short)
    if contacts:
        descriptive["contacts"] = contacts
    # RFC 7591 §2 `scope`: accepted, not registered: every client may ask for every scope this
    # server has, and the person decides on the consent page.
    _text(data, "scope", long)

    auth_method = data.get("token_endpoint_auth_method", auth_method_default)
    if not isinstance(auth_method, str) or auth_method not in AUTH_METHODS:
        _refuse("token_endpoint_auth_method", f"must be one of {', '.join(AUTH_METHODS)}")

    # RFC 7591 §2.1: grant_types and response_types must agree. This server issues codes only.
    grant_types = _strings(data, "grant_types", ["authorization_code"])
    response_types = _strings(data, "response_types", ["code"])
    unsupported = set(grant_types) - set(GRANT_TYPES)
    if unsupported:
        _refuse("grant_types", f"unsupported: {', '.join(sorted(unsupported))}")
    if "authorization_code" not in grant_types:
        _refuse("grant_types", "must include authorization_code")
    if set(response_types) != set(RESPONSE_TYPES):
        _refuse("response_types", 'must be ["code"] (the authorization code flow)')
    return ClientMetadata(
        redirect_uris=redirect_uris,
        token_endpoint_auth_method=auth_method,
        client_name=client_name,
        descriptive=descriptive,
    )
