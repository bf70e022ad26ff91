"""A person's access when their account changes: deactivated, password changed, signed out everywhere.

Django ends a person's other sessions when their password changes; the tokens their agents hold
are sessions too, so they end the same way:

- **deactivated** (``is_active`` off, in the admin or in code): every token and pending code is
  revoked. Besides, a deactivated person's tokens are refused wherever they are presented (MCP,
  userinfo, introspection, refresh, code redemption), also after a bulk ``update`` that saves no
  model and so revokes nothing;
- **password changed** (by the person, a reset, an operator, ``manage.py changepassword``): every
  token and pending code is revoked. Django announces a changed password to the password
  validators (``password_changed``), not when a stored hash is merely upgraded on sign-in, so
  :class:`PasswordChangeSignsOut` is listed in ``AUTH_PASSWORD_VALIDATORS``;
- **signed out everywhere** (Admin → Users, an action): their sessions end and every token is revoked.

Consent is kept: an agent that connects again asks the person only for what is new.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone

from authserver.audit import audit_record
from authserver.models import AuditEvent
from authserver.revocation import credentials_revoke


def user_credentials_revoke(*, user, reason: str) -> int:
    """Revoke every token and pending code of ``user``, for every client; returns how many were live."""
    live = credentials_revoke(user=user)
    if live:
        audit_record(
            kind=AuditEvent.Kind.TOKEN_REVOKED, user=user, revoked="all tokens", reason=reason, live_tokens=live
        )
    return live


def user_sessions_end(*, user) -> int:
    """End ``user``'s sessions; returns how many. Sessions are found in the database, so this
    needs a database-backed ``SESSION_ENGINE`` (Django's default ``db``, or ``cached_db``); with
    another engine none are ended (a password change still ends them, through Django)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store, DatabaseSessionStore):
        return 0
    owner = user._meta.pk.value_to_string(user)
    ended = 0
    live = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    for session in live.only("session_key", "session_data").iterator():
        if store().decode(session.session_data).get(SESSION_KEY) == owner:
            store(session.session_key).delete()  # cached_db forgets its cached copy too
            ended += 1
    return ended


def user_sign_out_everywhere(*, user, by=None) -> tuple[int, int]:
    """End every session of ``user`` and revoke every token their apps hold; returns (sessions, tokens)."""
    sessions = user_sessions_end(user=user)
    tokens = credentials_revoke(user=user)
    audit_record(
        kind=AuditEvent.Kind.SIGNED_OUT_EVERYWHERE,
        user=user,
        by=by.get_username() if by is not None else "",
        sessions=sessions,
        live_tokens=tokens,
    )
    return sessions, tokens


class PasswordChangeSignsOut:
    """A password "validator" that validates nothing: Django calls ``password_changed`` on every
    validator once a new password is saved, which is the hook this needs (README: Security)."""

    def validate(self, password, user=None):
        return None

    def password_changed(self, password, user=None):
        if user is not None and user.pk is not None:
            user_credentials_revoke(user=user, reason="password changed")

    def get_help_text(self):
        return "Changing your password also signs out every app you connected to your account."


def account_deactivation_noted(sender, instance, raw=False, update_fields=None, **kwargs):
    """``pre_save`` of the user model: note whether this save deactivates the account."""
    if raw or instance.pk is None or instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    was_active = sender._default_manager.filter(pk=instance.pk, is_active=True).exists()
    instance.__dict__["_authserver_deactivated"] = was_active


def account_deactivated(sender, instance, raw=False, **kwargs):
    """``post_save`` of the user model: a deactivated account's tokens are revoked with the save."""
    if instance.__dict__.pop("_authserver_deactivated", False):
        user_credentials_revoke(user=instance, reason="account deactivated")


def account_create(*, username: str, email: str = "", name: str = ""):
    """A new account with no password (it can never sign in with one): a service client's identity, or a
    person a trusted IdP vouches for. ``username`` is taken as is when free, else numbered (and cut to
    fit: it is a wish, not an identifier anyone presents). Where the site signs in by email address, a
    given ``email`` is the username exactly. An address is never cut or numbered (that names another
    address) nor stored with characters that do not show: ValueError. The name, shown only, is cut to fit.
    """
    from django.contrib.auth import get_user_model

    from authserver.display_text import display_text_clean, display_text_problem

    user_model = get_user_model()
    email_field = user_model.get_email_field_name()
    if not hasattr(user_model, email_field):
        email = ""  # a user model without an address keeps none
    if email and display_text_problem(email):
        raise ValueError("The address holds characters that do not show: it is not stored")
    if email and len(email) > user_model._meta.get_field(email_field).max_length:
        raise ValueError("The address is longer than the email field: it is not cut into another address")
    if email and email_field == user_model.USERNAME_FIELD:
        if user_model._default_manager.filter(**{email_field: email}).exists():
            raise ValueError("The address already signs in to another account here")
        fields = {email_field: email}
    else:
        base = username[:140] or "user"
        candidate, number = base, 1
        while user_model._default_manager.filter(**{user_model.USERNAME_FIELD: candidate}).exists():
            number += 1
            candidate = f"{base}-{number}"
        fields = {user_model.USERNAME_FIELD: candidate}
        if email:
            fields[email_field] = email
    if name and hasattr(user_model, "first_name"):
        fields["first_name"] = display_text_clean(name)[: user_model._meta.get_field("first_name").max_length]
    user = user_model(**fields)
    user.set_unusable_password()
    user.save()
    return user
