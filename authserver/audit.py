"""The audit trail: one ``AuditEvent`` per security event, recorded by ``audit_record``.

Views, DOT's signals, Django's and django-axes' sign-in signals, the admin and the management
commands all record through ``audit_record``. The address comes from the request being served
(``AuditRequestMiddleware`` makes it reachable from model signals), read the way django-axes reads
it, so the audit trail and the sign-in lockout agree on who someone is behind a proxy.

Refusals that anyone can cause as often as they like (a client assertion for no such client, a garbage
one for a real client) are recorded through ``audit_record_bounded``, whose writes stay bounded
whatever arrives: a flood is a few rows saying how many, not a row per request kept for a year.
"""

import ipaddress
import json
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from axes.helpers import get_client_ip_address
from django.core.cache import cache
from django.utils import timezone

from authserver.conf import app_settings
from authserver.models import Application, AuditEvent
from authserver.ratelimit import RateLimit, address_counted

_current_request: ContextVar = ContextVar("authserver_audit_request", default=None)
_client_deletion: ContextVar = ContextVar("authserver_audit_client_deletion", default=AuditEvent.Kind.CLIENT_DELETED)


class AuditRequestMiddleware:
    """Makes the request being served available to events recorded from model signals."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


def client_ip(request) -> str | None:
    """The caller's address as django-axes reads it (``AXES_*`` settings cover proxies), or None."""
    if request is None:
        return None
    address = get_client_ip_address(request)
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def audit_record(
    *,
    kind: AuditEvent.Kind,
    user=None,
    client: Application | None = None,
    request=None,
    username: str = "",
    client_gone: bool = False,
    **detail,
) -> AuditEvent:
    """Record one event; ``detail`` holds what else an operator needs (scopes, counts, reasons).

    ``client_gone``: the client is being deleted, so the event keeps its id and name as text only.
    """
    request = request if request is not None else _current_request.get()
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return AuditEvent.objects.create(
        kind=kind,
        user=user,
        username=username or (user.get_username() if user is not None else ""),
        application=client if client is not None and client.pk and not client_gone else None,
        client_id=client.client_id if client is not None else "",
        client_name=client.name if client is not None else "",
        ip=client_ip(request),
        detail=detail,
    )


# What the row counting a window's refusals past AUDIT_REFUSAL_ROWS_PER_WINDOW says.
TOO_MANY_REFUSALS = "More refusals than AUDIT_REFUSAL_ROWS_PER_WINDOW rows record, from any address, counted here"


def audit_record_bounded(*, kind: AuditEvent.Kind, client: Application | None = None, request=None, **detail) -> None:
    """Record a refusal that anyone may cause as often as they like, in writes that stay bounded.

    One row per kind, client, address (an IPv6 one by its /64) and ``detail`` (the reason) per window of
    ``AUDIT_REFUSAL_WINDOW_SECONDS``, written by the first such refusal, so a known client's "key not
    rotated in" is there at once. Its ``detail["refusals_at_least"]`` is rewritten each time the
    window's count doubles (2, 4, 8, ...: N refusals cost about log2 N writes, and the row says at
    least half of them). Many addresses or reasons would make many rows: once a kind and client have
    ``AUDIT_REFUSAL_ROWS_PER_WINDOW`` rows in the window, their further refusals are counted on one
    more row (``TOO_MANY_REFUSALS``), and make no cache entries of their own.
    """
    request = request if request is not None else _current_request.get()
    client_id = client.client_id if client is not None else ""
    window = app_settings.AUDIT_REFUSAL_WINDOW_SECONDS
    now = time.time()
    rows = RateLimit("audit-refusal-rows", limit=app_settings.AUDIT_REFUSAL_ROWS_PER_WINDOW, window=window)
    rows_key = f"{kind}:{client_id}"
    past_cap = rows.exceeded(rows_key, now=now) is not None
    if past_cap:
        key, detail = json.dumps([kind, client_id, "too many"]), {"reason": TOO_MANY_REFUSALS}
    else:
        key = json.dumps([kind, client_id, address_counted(client_ip(request)), detail], sort_keys=True, default=str)
    counter = RateLimit("audit-refusals", limit=1, window=window)
    count, row = counter.count(key, now=now), counter.window_key(key, now=now) + ":row"
    if count == 1:
        if not past_cap:
            rows.count(rows_key, now=now)
        event = audit_record(kind=kind, client=client, request=request, refusals_at_least=1, **detail)
        cache.set(row, event.pk, timeout=window + 1)
    elif count & (count - 1) == 0:  # a power of two
        event_pk = cache.get(row)  # None while the first refusal's row is being written
        if event_pk is not None:
            AuditEvent.objects.filter(pk=event_pk).update(detail={**detail, "refusals_at_least": count})


@contextmanager
def client_deletions_recorded_as(kind: AuditEvent.Kind):
    """Inside this block a deleted client is recorded as ``kind`` (pruning says "pruned")."""
    token = _client_deletion.set(kind)
    try:
        yield
    finally:
        _client_deletion.reset(token)


def current_request():
    """The request being served (``AuditRequestMiddleware``), or None outside one."""
    return _current_request.get()


def current_actor():
    """The signed-in user of the request being served (an operator in the admin), or None."""
    request = _current_request.get()
    user = getattr(request, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def client_deletion_kind() -> AuditEvent.Kind:
    return _client_deletion.get()


def audit_prune(*, now: datetime | None = None) -> int:
    """Delete events older than ``AUDIT_RETENTION_DAYS``; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=app_settings.AUDIT_RETENTION_DAYS)
    deleted, _by_model = AuditEvent.objects.filter(time__lt=cutoff).delete()
    return deleted
