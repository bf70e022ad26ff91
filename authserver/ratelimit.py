"""Rate limits per caller over Django's cache, which every worker shares (the database by default).

A fixed window: at most ``limit`` requests per ``window`` seconds per key, so a burst straddling two
windows can reach twice the limit, which is fine for slowing abuse down and costs one cache entry
per key. Over the limit, ``hit`` says how long until the window ends, for ``Retry-After``.

Refused with RFC 6585 §4's 429 and ``Retry-After`` (RFC 9110 §10.2.3), in RFC 6749 §5.2's JSON shape
with ``temporarily_unavailable``: RFC 6749 §5.2 has no code for "too many requests", and this is the
registered OAuth code for "try again later" (RFC 6749 §4.1.2.1) that registration's 429 and the
site's 503 already answer, so a client handles every "not now" alike.

The token endpoint (:func:`token_rate_limit_refusal`, ``TOKEN_RATE_*`` settings; 0 switches a limit off):

- per address, every request, refused or not (the address as the audit trail reads it);
- per client, the tokens issued to a client that authenticated (a confidential one: RFC 6749 §2.3),
  counted once it got its token, so nobody can spend a client's allowance by naming its client_id,
  which is public. Above it, every request naming that client is refused until the window ends.
  A public client (a metadata-document client, an agent registered with ``none``) has no allowance
  of its own: it does not authenticate (RFC 6749 §2.1) and is one client_id shared by everyone who
  uses it, so a count per client would let any one of them spend everyone's tokens. Nor is it
  counted per (client, person): the person is known only once the grant has been checked, each of
  their requests already counts against their address, and signing in is held by the lockout.

The revocation endpoint is limited per address too (a public client revokes by naming its client_id,
so a per-client count would be anyone's to spend). Introspection is not limited: only clients an
operator allowed get answers, and a resource server may introspect for every request it serves.

Registration is limited per address (``registration_rate_limit``, an IPv6 address by its /64), by
RFC 7591 and by metadata document alike (:class:`MetadataDocumentRegistrationLimit`); RFC 7592
updates and deletions spend the same allowance (each writes, CWE-770).
"""

import base64
import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

from django.core.cache import cache
from django.http import JsonResponse
from oauth2_provider.models import get_application_model

from authserver.client_keys import AssertionInvalid, jwt_unverified_claims
from authserver.conf import app_settings
from authserver.errors import json_error


@dataclass(frozen=True)
class RateLimit:
    name: str
    limit: int
    window: int  # seconds

    def window_key(self, key: str, *, now: float) -> str:
        """The cache key counting ``key`` in the window holding ``now``."""
        window_start = int(now // self.window) * self.window
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # any key fits any backend's key rules
        return f"authserver:ratelimit:{self.name}:{digest}:{window_start}"

    def count(self, key: str, *, now: float | None = None) -> int:
        """Count one request for ``key``; returns how many this window holds, this one included."""
        now = time.time() if now is None else now
        cache_key = self.window_key(key, now=now)
        cache.add(cache_key, 0, timeout=self.window + 1)
        try:
            return cache.incr(cache_key)
        except ValueError:  # the entry expired between add and incr
            cache.add(cache_key, 1, timeout=self.window + 1)
            return 1

    def hit(self, key: str, *, now: float | None = None) -> int | None:
        """Count one request for ``key``: None when allowed, else the seconds until it will be."""
        now = time.time() if now is None else now
        if self.count(key, now=now) <= self.limit:
            return None
        return self.retry_after(now=now)

    def exceeded(self, key: str, *, now: float | None = None) -> int | None:
        """Without counting: None while ``key`` is within the limit, else the seconds until it will be."""
        now = time.time() if now is None else now
        if (cache.get(self.window_key(key, now=now)) or 0) < self.limit:
            return None
        return self.retry_after(now=now)

    def retry_after(self, *, now: float) -> int:
        return max(1, math.ceil(int(now // self.window) * self.window + self.window - now))


def address_counted(address: str | None) -> str:
    """What a per-address limit counts ``address`` as: an IPv6 address by its /64, which one subscriber
    is typically given whole (RFC 6177), so that its 2^64 addresses are one caller."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if parsed.version == 6 and parsed.ipv4_mapped:  # a dual-stack listener sees IPv4 as ::ffff:a.b.c.d
        parsed = parsed.ipv4_mapped
    if parsed.version == 4:
        return str(parsed)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))


def registration_rate_limit() -> RateLimit:
    return RateLimit(
        "registration", limit=app_settings.REGISTRATION_RATE_LIMIT, window=app_settings.REGISTRATION_RATE_WINDOW_SECONDS
    )


class MetadataDocumentRegistrationLimit:
    """DOT's ``CIMD_REGISTRATION_PERMISSION_CLASSES`` (its seam for who may register by metadata
    document): fetching a Client ID Metadata Document and saving it as a client is a registration,
    which anyone can cause, signed in or not, by naming an https URL as ``client_id`` at the
    authorization, token or revocation endpoint. Counted against RFC 7591 registration's per-address
    limit (``REGISTRATION_RATE_LIMIT``, refused attempts too); over it, DOT takes the client_id for
    unknown, as for a document it could not fetch."""

    def has_permission(self, request, client_id) -> bool:
        from authserver.audit import client_ip, current_request  # not at import: it imports this module

        # `request` is oauthlib's, whose headers DOT copied from the Django request's META.
        address = client_ip(current_request()) or getattr(request, "headers", {}).get("REMOTE_ADDR")
        return registration_rate_limit().hit(address_counted(address)) is None


def too_many_requests(retry_after: int, description: str) -> JsonResponse:
    """RFC 6585 §4: 429, with when to come back (RFC 9110 §10.2.3: ``Retry-After`` in seconds)."""
    refused = json_error("temporarily_unavailable", f"{description}; try again in {retry_after} seconds", status=429)
    refused["Retry-After"] = str(retry_after)
    refused["Cache-Control"] = "no-store"
    return refused


def _address_rate_limit(endpoint: str) -> RateLimit | None:
    limit, window = app_settings.TOKEN_RATE_LIMIT_PER_ADDRESS, app_settings.TOKEN_RATE_WINDOW_SECONDS
    return RateLimit(f"{endpoint}-address", limit=limit, window=window) if limit else None


def _client_rate_limit() -> RateLimit | None:
    limit, window = app_settings.TOKEN_RATE_LIMIT_PER_CLIENT, app_settings.TOKEN_RATE_WINDOW_SECONDS
    return RateLimit("token-client", limit=limit, window=window) if limit else None


def basic_credentials_decoded(authorization: str) -> str | None:
    """The ``id:secret`` of a ``Basic`` ``Authorization`` header read strictly (RFC 7617 §2: base64, UTF-8),
    or None: the one reading the client authentication and the per-client allowance share."""
    try:
        return base64.b64decode(authorization.partition(" ")[2].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return None


def client_id_named(request) -> str | None:
    """The client a token request names, before anything checks it: the user of HTTP Basic
    authentication (RFC 6749 §2.3.1, form-encoded), else the body's ``client_id``, else the ``sub``
    of a client assertion (RFC 7523 §3); None when it names none that can be read."""
    authorization = request.headers.get("Authorization", "")
    if authorization.partition(" ")[0].lower() == "basic":
        decoded = basic_credentials_decoded(authorization)
        if decoded is None:
            return None
        return unquote_plus(decoded.split(":", 1)[0]) or None
    if request.POST.get("client_id"):
        return request.POST["client_id"]
    if not request.POST.get("client_assertion"):
        return None
    try:
        subject = jwt_unverified_claims(request.POST["client_assertion"]).get("sub")
    except AssertionInvalid:
        return None
    return subject if isinstance(subject, str) and subject else None


def token_rate_limit_refusal(request, *, endpoint: str = "token") -> JsonResponse | None:
    """The 429 for a request to the token (or revocation) ``endpoint`` over a limit, or None. Counts
    the request against its address; at the token endpoint, checks the client it names too."""
    from authserver.audit import client_ip  # not at import: it imports this module

    address_limit = _address_rate_limit(endpoint)
    if address_limit is not None:
        retry_after = address_limit.hit(address_counted(client_ip(request)))
        if retry_after is not None:
            return too_many_requests(retry_after, "Too many requests from your address")
    client_limit = _client_rate_limit() if endpoint == "token" else None
    client_id = client_id_named(request) if client_limit is not None else None
    if client_id is not None:
        retry_after = client_limit.exceeded(client_id)
        if retry_after is not None:
            return too_many_requests(retry_after, "Too many tokens issued to this client")
    return None


def client_authenticates(*, client_id: str) -> bool:
    """Whether the client named ``client_id`` is one that authenticates to get a token: a confidential
    client (RFC 6749 §2.1), whose credentials the validator checked before any token was issued."""
    Application = get_application_model()
    return Application.objects.filter(client_id=client_id, client_type=Application.CLIENT_CONFIDENTIAL).exists()


def token_issued_count(request) -> None:
    """A token was issued on ``request``: count it against the client it named, when that client
    authenticated (a confidential one, which proved to be it). RFC 6749 §2.1: a public client is
    shared by all its users and proves nothing, so it is not counted (see the module docstring)."""
    client_limit = _client_rate_limit()
    client_id = client_id_named(request) if client_limit is not None else None
    if client_id is not None and client_authenticates(client_id=client_id):
        client_limit.count(client_id)
