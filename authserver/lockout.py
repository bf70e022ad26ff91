"""Whom wrong passwords lock out: django-axes' policy for this site's sign-in.

``authserver.conf.axes_settings()`` points django-axes at the two functions here. A failure counts
against the pair (username, address), so a stranger's wrong passwords, for a made-up account or for
the owner's, never lock the owner out from her own address (OWASP ASVS 4.0 V2.2.1: lockout must not
be an attack of its own); and every lockout expires (NIST SP 800-63B §5.2.2: throttle, don't lock
forever). One address that fails for many usernames (password spraying) is locked as a whole once its
failures reach ``ADDRESS_FAILURE_FACTOR`` times ``AXES_FAILURE_LIMIT`` within the cool-off: high enough
that people behind one shared address mistyping now and then never reach it.

The address count reads django-axes' database handler's attempts (its default handler); with the cache
handler only the pair is counted.
"""

from datetime import timedelta

from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

# Django's AuthenticationForm names its field `username` whatever the user model's USERNAME_FIELD
# (an email login too), and so does the `credentials` dict `authenticate()` passes on.
USERNAME_FIELD = "username"
PAIR = ("username", "ip_address")
ADDRESS_FAILURE_FACTOR = 10


def lockout_username(request, credentials: dict | None = None) -> str | None:
    """``AXES_USERNAME_CALLABLE``: the username a sign-in names, in one case, so that ``Ada@`` and
    ``ada@`` count as one account's failures."""
    if credentials is not None:
        username = credentials.get(USERNAME_FIELD)
    else:
        username = getattr(request, "POST", {}).get(USERNAME_FIELD)
    return username.casefold() if isinstance(username, str) else None


def lockout_parameters(request_or_attempt, credentials: dict | None = None) -> list:
    """``AXES_LOCKOUT_PARAMETERS``: the pair (username, address); the address as a whole too once it
    failed too often for any usernames (password spraying)."""
    parameters: list = [list(PAIR)]
    if isinstance(request_or_attempt, HttpRequest):
        limit = ADDRESS_FAILURE_FACTOR * get_failure_limit(request_or_attempt, credentials)
        if address_failures(request_or_attempt) >= limit:
            parameters.append("ip_address")
    return parameters


def address_failures(request: HttpRequest) -> int:
    """Failed sign-ins from the request's address within the cool-off, for every username tried."""
    address = getattr(request, "axes_ip_address", None)
    if not address:
        return 0
    attempts = AccessAttempt.objects.filter(ip_address=address)
    cool_off: timedelta | None = get_cool_off(request)
    if cool_off is not None:
        now = getattr(request, "axes_attempt_time", None) or timezone.now()
        attempts = attempts.filter(attempt_time__gte=now - cool_off)
    return attempts.aggregate(failures=Sum("failures_since_start"))["failures"] or 0
