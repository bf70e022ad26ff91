"""Revoking what a person, a client, or a person's use of a client holds: one path for all of them.

Refresh tokens are marked revoked, not deleted: django-oauth-toolkit keeps them to recognise a
replay (RFC 9700 §4.14.2). Access tokens, ID tokens and pending codes are deleted; each deleted
access token is announced (``post_delete``) to whoever remembers verified tokens (``mcpapp``).
"""

from datetime import datetime

from django.db import router, transaction
from django.dispatch import Signal
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)
from oauth2_provider.settings import oauth2_settings

# Sent with ``checksums`` (the tokens' SHA-256) when access tokens are revoked by a bulk update,
# which sends no model signal: whoever remembers verified tokens (mcpapp) must forget them.
access_tokens_revoked = Signal()


def live_access_tokens(*, now: datetime):
    """Unexpired access tokens issued by a grant; RFC 7592 registration access tokens (DOT keeps
    them in the same table, valid for years) are not a use of the client and do not count."""
    return (
        get_access_token_model().objects.filter(expires__gt=now).exclude(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
    )


@transaction.atomic
def credentials_revoke(*, now: datetime | None = None, **holder) -> int:
    """Revoke every token and pending code matching ``holder`` (``user=``, ``application=``, or
    both); returns how many were live (refresh tokens, and access tokens without one)."""
    now = now or timezone.now()
    refresh_tokens = get_refresh_token_model().objects.filter(revoked__isnull=True, **holder)
    live = refresh_tokens.count() + live_access_tokens(now=now).filter(refresh_token__isnull=True, **holder).count()
    refresh_tokens.update(revoked=now)
    get_access_token_model().objects.filter(**holder).delete()
    get_id_token_model().objects.filter(**holder).delete()
    get_grant_model().objects.filter(**holder).delete()
    return live


def refresh_token_family_revoke(family) -> None:
    """DOT's ``revoke_family``, with the family's access tokens expired now instead of deleted.

    When several requests present one refresh token at once, the others revoke the family while
    the winner's response is still being written, and DOT's token view reads the access token it
    just issued back from the database (for ``app_authorized``): deleted, that read is a 500.
    Expired, the token is refused everywhere (RFC 6750 §3.1) and ``cleartokens`` removes it later.
    The ID tokens issued with them are deleted: what a replay revokes includes them (RFC 6749 §4.1.2),
    as DOT's own RP-initiated logout deletes an access token's ID token with it.
    """
    RefreshToken, AccessToken = get_refresh_token_model(), get_access_token_model()
    members = RefreshToken.objects.filter(token_family=family)
    with transaction.atomic(using=router.db_for_write(AccessToken)):
        access_token_ids = list(members.exclude(access_token=None).values_list("access_token_id", flat=True))
        # Detached first, so DOT deletes none of them, and a live member is an orphan DOT refuses.
        members.filter(access_token_id__in=access_token_ids).update(access_token=None)
        expired = AccessToken.objects.filter(pk__in=access_token_ids)
        checksums = list(expired.values_list("token_checksum", flat=True))
        id_token_ids = list(expired.exclude(id_token=None).values_list("id_token_id", flat=True))
        # Detached from their ID tokens too: AccessToken.id_token cascades, and these rows must stay.
        expired.update(expires=timezone.now(), id_token=None)
        get_id_token_model().objects.filter(pk__in=id_token_ids).delete()
        RefreshToken.revoke_family(family)
    access_tokens_revoked.send(sender=AccessToken, checksums=checksums)
