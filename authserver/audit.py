"""The audit trail: one ``AuditEvent`` per security event, recorded by ``audit_record``.

Views, DOT's signals, Django's and django-axes' sign-in signals, the admin and the management
commands all record through ``audit_record``. The address comes from the request being served
(``AuditRequestMiddleware`` makes it reachable from model signals), read the way django-axes reads
it, so the audit trail and the sign-in lockout agree on who someone is behind a proxy.
"""

import ipaddress
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from axes.helpers import get_client_ip_address
from django.utils import timezone

from authserver.conf import app_settings
from authserver.models import Application, AuditEvent

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


@contextmanager
def client_deletions_recorded_as(kind: AuditEvent.Kind):
    """Inside this block a deleted client is recorded as ``kind`` (pruning says "pruned")."""
    token = _client_deletion.set(kind)
    try:
        yield
    finally:
        _client_deletion.reset(token)


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
