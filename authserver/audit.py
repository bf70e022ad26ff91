"""The audit trail: one ``AuditEvent`` per security event, recorded by ``audit_record``.

Views, DOT's signals, Django's and django-axes' sign-in signals, the admin and the management
commands all record through ``audit_record``. The address comes from the request being served
(``AuditRequestMiddleware`` makes it reachable from model signals), read the way django-axes reads
it, so the audit trail and the sign-in lockout agree on who someone is behind a proxy.

Refusals that anyone can cause as often as they like (a client assertion for no such client, a garbage
one for a real client) are recorded through ``audit_record_bounded``, whose writes stay bounded
whatever arrives: a flood is a few rows saying how many, not a row per request kept for a year.
Alarms (a redeemed code replayed, a rotated refresh token reused: a stolen credential) are recorded
through ``audit_record_alarm``: the first at once, in full; its repeats, which whoever holds the
credential can send as often as they like, bounded like refusals (CWE-770).
"""

import hashlib
import ipaddress
import json
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from authserver.conf import app_settings
from authserver.lockout import request_address
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
    """The caller's address as django-axes reads it (``AXES_*`` settings cover proxies), or None: the
    address itself, not the /64 the sign-in lockout counts (``authserver.lockout.request_address``)."""
    if request is None:
        return None
    address = request_address(request)
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


def audit_record_bounded(
    *, kind: AuditEvent.Kind, client: Application | None = None, request=None, user=None, **detail
) -> None:
    """Record a refusal that anyone may cause as often as they like, in writes that stay bounded.

    One row per kind, client, address (an IPv6 one by its /64) and ``detail`` (the reason) per window of
    ``AUDIT_REFUSAL_WINDOW_SECONDS``, written by the first such refusal, so a known client's "key not
    rotated in" is there at once. Its ``detail["refusals_at_least"]`` is rewritten each time the
    window's count doubles (2, 4, 8, ...: N refusals cost about log2 N writes, and the row says at
    least half of them). Many addresses or reasons would make many rows: once a kind and client have
    ``AUDIT_REFUSAL_ROWS_PER_WINDOW`` rows in the window, their further refusals are counted on one
    more row (``TOO_MANY_REFUSALS``), and make no cache entries of their own. ``user``: whom the
    refused credential acted for, named on the row (not part of what keys it).
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
    # The row's writer is whoever adds its cache entry first: an add is atomic on every backend, while
    # the database cache's incr (get, then set) lets concurrent refusals each read a count of 1.
    if cache.add(row, 0, timeout=window + 1):
        if not past_cap:
            rows.count(rows_key, now=now)
        event = audit_record(kind=kind, user=user, client=client, request=request, refusals_at_least=1, **detail)
        cache.set(row, event.pk, timeout=window + 1)
    elif count > 1 and count & (count - 1) == 0:  # a power of two
        event_pk = cache.get(row)  # 0 while the first refusal's row is being written
        if event_pk:
            AuditEvent.objects.filter(pk=event_pk).update(detail={**detail, "refusals_at_least": count})


def audit_record_alarm(*, kind: AuditEvent.Kind, client: Application, user=None, request=None, **detail) -> None:
    """Record an alarm that ``detail`` names (a replayed code, a reused refresh token family).

    The first one at once, with ``audit_record``: never folded into a count whatever else floods the
    trail, since it is the operator's sign that a credential was stolen. Every later one, which
    whoever holds the credential may send as often as they like, through ``audit_record_bounded``
    with the same ``detail`` (CWE-770: its rows stay bounded). "First" is what the trail itself
    remembers (no event of this kind, client and detail is there), decided once among concurrent
    requests by an atomic add in the cache every worker shares.
    """
    client_id = client.client_id if client is not None else ""
    recorded = AuditEvent.objects.filter(
        kind=kind, client_id=client_id, **{f"detail__{name}": value for name, value in detail.items()}
    ).exists()
    digest = hashlib.sha256(json.dumps([kind, client_id, detail], sort_keys=True, default=str).encode()).hexdigest()
    first_key = f"authserver:audit-alarm:{digest[:32]}"
    if not recorded and cache.add(first_key, 1, timeout=app_settings.AUDIT_REFUSAL_WINDOW_SECONDS + 1):
        audit_record(kind=kind, user=user, client=client, request=request, **detail)
    else:
        audit_record_bounded(kind=kind, client=client, request=request, user=user, **detail)


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
