"""Authorization codes: stored as their SHA-256 like tokens, used once, and a second use revokes what
the first one got (RFC 6749 §4.1.2: "If an authorization code is used more than once, the
authorization server MUST deny the request and SHOULD revoke (when possible) all tokens
previously issued based on that authorization code").

A code may leak on its way to the client (a log, a referrer, a malicious app on the device). When
the client and a thief both redeem it, one of them is refused; the server cannot tell which of
them was the thief, so the tokens the other one got are revoked either way, as for a replayed
refresh token (RFC 9700 §4.14.2). Concurrent redemptions by one client count the same.

The first replay of a code is recorded at once; its repeats, which whoever holds the code can send
as often as they like, in a bounded number of rows (``authserver.audit.audit_record_alarm``, CWE-770).
"""

from datetime import datetime, timedelta

from django.utils import timezone
from oauth2_provider.models import get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from authserver.audit import audit_record_alarm
from authserver.conf import refresh_token_lifetime
from authserver.models import AuditEvent, RedeemedCode, token_checksum
from authserver.revocation import refresh_token_family_revoke


def code_checksum(code: str) -> str:
    """What a code is stored and looked up as (the authorization code row holds no code)."""
    return token_checksum(code)


def code_redeemed_record(*, checksum: str, client, refresh_token: str | None) -> RedeemedCode:
    """Remember that the code with ``checksum`` was exchanged, and for which refresh token family
    (in the transaction that stores the tokens, so both are kept or neither)."""
    family = None
    if refresh_token:
        family = (
            get_refresh_token_model()
            .objects.filter(token_checksum=token_checksum(refresh_token))
            .values_list("token_family", flat=True)
            .first()
        )
    return RedeemedCode.objects.create(code_checksum=checksum, application=client, token_family=family)


def code_replay_respond(*, checksum: str, client) -> bool:
    """If the code with ``checksum`` was redeemed before, revoke every token issued from it and
    record it; returns whether it was such a replay (False: a code this server never issued, or
    one that expired unused)."""
    redeemed = RedeemedCode.objects.filter(code_checksum=checksum, application=client).first()
    if redeemed is None:
        return False
    user = None
    if redeemed.token_family:
        holder = get_refresh_token_model().objects.filter(token_family=redeemed.token_family).select_related("user")
        user = getattr(holder.first(), "user", None)
        refresh_token_family_revoke(redeemed.token_family)
    # RFC 6749 §4.1.2 / CWE-770: the first replay of this code at once, its repeats bounded.
    audit_record_alarm(
        kind=AuditEvent.Kind.CODE_REPLAY_DETECTED,
        user=user,
        client=client,
        family=str(redeemed.token_family) if redeemed.token_family else "",
        redeemed=redeemed.redeemed.isoformat(),
    )
    return True


def redeemed_codes_prune(*, now: datetime | None = None) -> int:
    """Forget codes redeemed so long ago that every token they led to has expired; returns how many."""
    refresh_lifetime = refresh_token_lifetime() or timedelta(days=365)  # None: never expire
    lifetime = timedelta(seconds=oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS) + refresh_lifetime
    cutoff = (now or timezone.now()) - lifetime
    deleted, _by_model = RedeemedCode.objects.filter(redeemed__lt=cutoff).delete()
    return deleted
