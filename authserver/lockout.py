"""Whom wrong passwords lock out: django-axes' policy for this site's sign-in.

``authserver.conf.axes_settings()`` points django-axes at the functions here. Three counts, each within
the cool-off (``AXES_COOLOFF_TIME``), and every lockout expires (NIST SP 800-63B §5.2.2: throttle, don't
lock forever):

- **the pair** (username, address): ``AXES_FAILURE_LIMIT`` failures pause it. A stranger's wrong
  passwords, for a made-up account or for the owner's, never lock the owner out from her own address
  (OWASP ASVS 4.0 V2.2.1: lockout must not be an attack of its own).
- **the address**, for every username (password spraying): locked as a whole once its failures reach
  ``ADDRESS_FAILURE_FACTOR`` times ``AXES_FAILURE_LIMIT``, high enough that people behind one shared
  address mistyping now and then never reach it.
- **the account**, from every address (NIST SP 800-63B §5.2.2: at most 100 consecutive failed attempts
  per account; here at most 100 within a cool-off, a sign-in between them or not): once
  ``ACCOUNT_FAILURE_LIMIT`` failures for one account are counted, it is locked from every address
  except those it signed in from in the last ``KNOWN_ADDRESS_AGE``, until its failures age out.

An address is what :func:`lockout_address` (``AXES_CLIENT_IP_CALLABLE``) counts: an IPv6 address by its
/64 (RFC 6177: one subscriber is typically given a whole /64, so rotating its 2^64 addresses buys no
guesses), an IPv4-mapped one as IPv4, as ``authserver.ratelimit.address_counted`` counts callers; a /64
is stored as its first address (``2001:db8:1:2::``), so ``AXES_IP_WHITELIST``-style lists must name that.
The audit trail keeps the address itself (:func:`request_address`, read by ``authserver.audit.client_ip``).

The account ceiling's trade-off. A ceiling that locked the account from everywhere would let anyone who
knows a username keep its owner out, and cheaply: a /48, which many sites get whole, holds 65,536 /64s.
So (1) each address's share of the count is capped at ``AXES_FAILURE_LIMIT`` (with
``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT`` off, a locked-out request counts nothing), so reaching
the ceiling takes ``ACCOUNT_FAILURE_LIMIT / AXES_FAILURE_LIMIT`` (20) addresses within one cool-off; and
(2) addresses the account signed in from lately (django-axes' access log, ``AccessLog``) are exempt from
it, so the owner at home or at work keeps signing in while a guesser elsewhere is stopped (NIST SP
800-63B §5.2.2 names the user's IP address among the signals that may relax throttling). What it costs:
during such an attack the owner cannot sign in from an address new to her account until the cool-off
ends, and a guesser sharing her address (one NAT, one /64) is held only by the pair and address counts.
A site that sets ``AXES_DISABLE_ACCESS_LOG`` has no known addresses: the ceiling then locks everyone.

The counts read django-axes' database handler's attempts (its default handler); with the cache handler
only the pair is counted.
"""

import ipaddress
from datetime import timedelta

from axes.conf import settings as axes_conf
from axes.helpers import get_client_ip_address, get_cool_off, get_failure_limit
from axes.models import AccessAttempt, AccessLog
from django.contrib.auth import get_user_model
from django.db.models import QuerySet, Sum
from django.http import HttpRequest
from django.utils import timezone

from authserver.ratelimit import address_counted

# Django's AuthenticationForm names its field `username` whatever the user model's USERNAME_FIELD
# (an email login too), and so does the `credentials` dict `authenticate()` passes on.
USERNAME_FIELD = "username"
PAIR = ("username", "ip_address")
ADDRESS_FAILURE_FACTOR = 10
# NIST SP 800-63B §5.2.2: "no more than 100 consecutive failed authentication attempts" per account.
ACCOUNT_FAILURE_LIMIT = 100
# How recently an account must have signed in from an address for the account ceiling to spare it.
KNOWN_ADDRESS_AGE = timedelta(days=30)
LOCKOUT_ADDRESS = "authserver.lockout.lockout_address"


def lockout_username(request, credentials: dict | None = None) -> str | None:
    """``AXES_USERNAME_CALLABLE``: whose failures a sign-in counts as. An account's own username when
    one is named exactly (CWE-178: ``straße`` and ``strasse``, or ``Strasse`` and ``strasse``, are two
    accounts, and one signing in must not reset the other's count, which django-axes does by this key);
    else the name typed, case-folded, so that ``Ada@`` and ``ada@`` for no account count as one."""
    username = _username_typed(request, credentials)
    if username is None:
        return None
    return _account_username(username) or username.casefold()


def request_address(request) -> str | None:
    """The caller's own address: with :func:`lockout_address` configured, ``REMOTE_ADDR`` (behind a
    proxy, uvicorn's ``--forwarded-allow-ips`` puts the caller's there); with a site's own
    ``AXES_CLIENT_IP_CALLABLE``, or none, what django-axes reads."""
    if axes_conf.AXES_CLIENT_IP_CALLABLE in (LOCKOUT_ADDRESS, lockout_address):
        return request.META.get("REMOTE_ADDR") or None
    return get_client_ip_address(request)


def lockout_address(request) -> str | None:
    """``AXES_CLIENT_IP_CALLABLE``: the address failures count against, an IPv6 one by its /64
    (NIST SP 800-63B §5.2.2, RFC 6177), an IPv4-mapped one as IPv4; None for no address or garbage.
    django-axes keeps it in an IP address column (``inet`` on PostgreSQL), so a /64 is written as its
    first address: ``2001:db8:1:2::7`` as ``2001:db8:1:2::``."""
    address = request_address(request)
    try:
        ipaddress.ip_address(address or "")
    except ValueError:
        return None
    return str(ipaddress.ip_network(address_counted(address)).network_address)


def lockout_parameters(request_or_attempt, credentials: dict | None = None) -> list:
    """``AXES_LOCKOUT_PARAMETERS``: the pair (username, address); the address as a whole too once it
    failed too often for any usernames (password spraying); the account as a whole once it failed too
    often from many addresses, except at an address it signed in from lately."""
    parameters: list = [list(PAIR)]
    if isinstance(request_or_attempt, HttpRequest):
        limit = get_failure_limit(request_or_attempt, credentials)
        if address_failures(request_or_attempt) >= ADDRESS_FAILURE_FACTOR * limit:
            parameters.append("ip_address")
        if account_failures(request=request_or_attempt, credentials=credentials) >= ACCOUNT_FAILURE_LIMIT:
            if not address_known_for_account(request=request_or_attempt, credentials=credentials):
                parameters.append("username")
    return parameters


def address_failures(request: HttpRequest) -> int:
    """Failed sign-ins from the request's address (as :func:`lockout_address` counts it) within the
    cool-off, for every username tried."""
    address = getattr(request, "axes_ip_address", None)
    if not address:
        return 0
    attempts = _within_cool_off(AccessAttempt.objects.filter(ip_address=address), request)
    return attempts.aggregate(failures=Sum("failures_since_start"))["failures"] or 0


def account_failures(*, request: HttpRequest, credentials: dict | None = None) -> int:
    """Failed sign-ins for the account the request names within the cool-off, from every address, each
    address counting at most ``AXES_FAILURE_LIMIT`` (NIST SP 800-63B §5.2.2), so that one address alone
    never reaches ``ACCOUNT_FAILURE_LIMIT``."""
    username = lockout_username(request, credentials)
    if username is None:
        return 0
    share = get_failure_limit(request, credentials)
    attempts = _within_cool_off(AccessAttempt.objects.filter(username=username), request)
    per_address = attempts.values("ip_address").annotate(failures=Sum("failures_since_start"))
    return sum(min(row["failures"] or 0, share) for row in per_address)


def address_known_for_account(*, request: HttpRequest, credentials: dict | None = None) -> bool:
    """Whether the account the request names signed in from its address (as :func:`lockout_address`
    counts it) within ``KNOWN_ADDRESS_AGE``, by django-axes' access log. Only an account's own name has
    known addresses; a name that is no account's has none."""
    address = getattr(request, "axes_ip_address", None)
    typed = _username_typed(request, credentials)
    account = _account_username(typed) if typed is not None else None
    if not address or account is None:
        return False
    since = timezone.now() - KNOWN_ADDRESS_AGE
    # The log holds the account's own username (django-axes writes `user.get_username()`): exactly that,
    # never a case-folded twin's sign-in (CWE-178).
    return AccessLog.objects.filter(username=account, ip_address=address, attempt_time__gte=since).exists()


def sign_in_refused_while_locked(request) -> bool:
    """Whether django-axes refused this sign-in without trying the password, because it was locked out
    before it came: it marks the request locked out, and (``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT``
    off) counts no failure for it, so it sets no failure count on the request."""
    return bool(getattr(request, "axes_locked_out", False)) and getattr(request, "axes_failures_since_start", 0) is None


def _account_username(typed: str) -> str | None:
    """The username of the account ``typed`` names exactly (as Django's ModelBackend finds it), or None."""
    user_model = get_user_model()
    if "\x00" in typed:  # PostgreSQL refuses a NUL in a query; no username holds one
        return None
    field = user_model.USERNAME_FIELD
    return user_model._default_manager.filter(**{field: typed}).values_list(field, flat=True).first()


def _username_typed(request, credentials: dict | None) -> str | None:
    if credentials is not None:
        username = credentials.get(USERNAME_FIELD)
    else:
        username = getattr(request, "POST", {}).get(USERNAME_FIELD)
    return username if isinstance(username, str) else None


def _within_cool_off(attempts: QuerySet, request: HttpRequest) -> QuerySet:
    cool_off: timedelta | None = get_cool_off(request)
    if cool_off is None:
        return attempts
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    return attempts.filter(attempt_time__gte=now - cool_off)
