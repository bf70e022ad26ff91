"""Every change that can make a verified access token invalid, sent to ``mcpapp.token_cache``.

The token row itself (DOT deletes a revoked access token: the revocation endpoint, refresh
rotation, a revoked family, connected apps, the admin, ``cleartokens``; an edit in the admin), its
user (deactivated, edited) and its client (disabled, edited, deleted: its tokens are deleted with
it) each announce it; a bulk ``update`` sends ``authserver.revocation.access_tokens_revoked``.
"""

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from mcpapp.token_cache import token_cache_revoke


def access_token_saved(sender, instance, created, raw=False, **kwargs):
    if not created and not raw:
        token_cache_revoke([instance.token_checksum])


def access_token_deleted(sender, instance, **kwargs):
    # An expired token is refused on its expiry alone; `cleartokens` deletes thousands of them.
    if instance.expires is None or instance.expires > timezone.now():
        token_cache_revoke([instance.token_checksum])


def access_tokens_revoked(sender, checksums, **kwargs):
    token_cache_revoke(checksums)


def user_saved(sender, instance, created, raw=False, update_fields=None, **kwargs):
    # Signing in only records last_login; anything else (deactivated, renamed) may change a tool's answer.
    if created or raw or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    token_cache_revoke(_live_checksums(user=instance))


def client_saved(sender, instance, created, raw=False, **kwargs):
    if not created and not raw:
        token_cache_revoke(_live_checksums(application=instance))


def _live_checksums(**owner) -> list[str]:
    return list(
        get_access_token_model()
        .objects.filter(expires__gt=timezone.now(), **owner)
        .values_list("token_checksum", flat=True)
    )
