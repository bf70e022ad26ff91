"""Receivers: what DOT, Django's sign-in and django-axes announce, turned into "last used" and audit
events. (The one signal this app sends, ``access_tokens_revoked``, is in ``authserver.revocation``.)

Failed sign-ins are anyone's to send (CWE-770: their audit rows must stay bounded), yet the first ones
for a real account are what an operator looks for. So a failure for an account, and the lock that
follows, are recorded at once, each row naming the account: the lockout bounds them (``authserver.lockout``:
per address and account, per address, per account). A failure for no account, and every sign-in
django-axes refuses because it was already locked out (it announces a lockout for each), are recorded
through ``audit_record_bounded``: a few rows per window saying how many (a failure for no account
keyed and named by the username tried, a refusal by the address alone).
"""

from django.contrib.auth import get_user_model
from django.db.models import Q

from authserver.audit import audit_record, audit_record_bounded, client_deletion_kind, current_actor
from authserver.clients import client_touch
from authserver.consent import consent_touch
from authserver.lockout import sign_in_refused_while_locked
from authserver.models import AuditEvent

NO_SUCH_ACCOUNT = "no such account"
ALREADY_LOCKED_OUT = "already locked out"


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
    if request is not None and sign_in_refused_while_locked(request):
        return  # django-axes announces the lockout too: `login_locked` records it
    if request is None or account_named(username=username):
        audit_record(kind=AuditEvent.Kind.LOGIN_FAILED, request=request, username=username)
    else:  # CWE-770: anyone can send these
        audit_record_bounded(
            kind=AuditEvent.Kind.LOGIN_FAILED, request=request, reason=NO_SUCH_ACCOUNT, username_tried=username
        )


def login_locked(sender, request, username, ip_address, **kwargs):
    # `username` is django-axes' (authserver.lockout.lockout_username: case-folded), `ip_address` the
    # address it counts (an IPv6 one by its /64); the row names the account as typed and the address itself.
    typed = getattr(request, "axes_credentials", None) or {}
    username = str(typed.get("username") or username or "")[:150]
    if sign_in_refused_while_locked(request):  # CWE-770: django-axes announces this for every refusal
        audit_record_bounded(kind=AuditEvent.Kind.LOGIN_LOCKED, request=request, reason=ALREADY_LOCKED_OUT)
    elif account_named(username=username):  # the lock begins
        audit_record(kind=AuditEvent.Kind.LOGIN_LOCKED, request=request, username=username)
    else:
        audit_record_bounded(
            kind=AuditEvent.Kind.LOGIN_LOCKED, request=request, reason=NO_SUCH_ACCOUNT, username_tried=username
        )


def account_named(*, username: str) -> bool:
    """Whether a sign-in's username names an account, as typed or in lower case (the lockout counts
    ``OWNER``'s failures as ``owner``'s: authserver.lockout.lockout_username). Compared exactly, so
    the same on SQLite and PostgreSQL."""
    if not username:
        return False
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    named = Q(**{field: username}) | Q(**{field: username.casefold()})
    return user_model._default_manager.filter(named).exists()
