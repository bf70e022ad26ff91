"""Receivers for django-oauth-toolkit's signals."""

from authserver.consent import consent_touch


def note_client_used(sender, request, token, **kwargs):
    """DOT sends ``app_authorized`` for every token it issues (code exchange and refresh)."""
    if token.user_id and token.application_id:
        consent_touch(user_id=token.user_id, client_id=token.application_id, when=token.created)
