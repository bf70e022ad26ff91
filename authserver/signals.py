"""Receivers: what DOT, Django's sign-in and django-axes announce, turned into "last used" and audit
events. (The one signal this app sends, ``access_tokens_revoked``, is in ``authserver.revocation``.)"""

from authserver.audit import audit_record, client_deletion_kind, current_actor
from authserver.clients import client_touch
from authserver.consent import consent_touch
from authserver.models import AuditEvent


def token_issued(sender, request, token, **kwargs):
    """DOT sends ``app_authorized`` for every token it issues (code exchange and refresh)."""
    if token.application_id:
        client_touch(client_pk=token.application_id, when=token.created)
    if token.user_id and token.application_id:
        consent_touch(user_id=token.user_id, client_id=token.application_id, when=token.created)
    refreshed = request.POST.get("grant_type") == "refresh_token"
    audit_record(
        kind=AuditEvent.Kind.TOKEN_REFRESHED if refreshed else AuditEvent.Kind.TOKEN_ISSUED,
        user=token.user,
        client=token.application,
        request=request,
        scope=token.scope,
        resource=list(token.resource or []),
        grant_type=str(request.POST.get("grant_type", ""))[:100],
        # A service client's token acts as its service user, not a person (authserver.service_clients).
        acting_as="service" if token.application and token.application.is_service else "person",
    )


def client_saved(sender, instance, created, raw=False, **kwargs):
    if raw:  # loaddata
        return
    kind = AuditEvent.Kind.CLIENT_REGISTERED if created else AuditEvent.Kind.CLIENT_UPDATED
    audit_record(kind=kind, client=instance, source=instance.registration_source)


def client_deleted(sender, instance, **kwargs):
    # Who deleted it: the operator in the admin (no one for `manage.py prune`).
    audit_record(
        kind=client_deletion_kind(),
        user=current_actor(),
        client=instance,
        client_gone=True,
        source=instance.registration_source,
    )


def login_failed(sender, credentials, request=None, **kwargs):
    # Django passes the credentials with the password already replaced by "********".
    username = str(credentials.get("username", ""))[:150]
    audit_record(kind=AuditEvent.Kind.LOGIN_FAILED, request=request, username=username)


def login_locked(sender, request, username, ip_address, **kwargs):
    audit_record(kind=AuditEvent.Kind.LOGIN_LOCKED, request=request, username=str(username or "")[:150])
