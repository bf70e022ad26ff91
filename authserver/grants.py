"""A code or a refresh token presented more than once: again later, or several times at once to
several worker processes. The policy the token endpoint's validator (``authserver.dot.validator``)
applies, kept apart from it so that the validator stays a validator.

RFC 6749 §4.1.2 / §10.5: a code is used once; RFC 9700 §4.14.2: a refresh token presented after it
was rotated may have leaked, and its family is revoked. The first such presentation is recorded at
once, its repeats in a bounded number of rows (``authserver.audit.audit_record_alarm``, CWE-770).
"""

from contextlib import contextmanager

from django.db.models import F
from oauth2_provider.models import get_grant_model, get_refresh_token_model
from oauthlib.oauth2.rfc6749 import errors

from authserver.audit import audit_record_alarm
from authserver.codes import code_replay_respond
from authserver.models import AuditEvent, token_checksum
from authserver.revocation import refresh_token_family_revoke


def person_active(user) -> bool:
    """Whether a token or code acting for ``user`` may still be used: only while they can sign in."""
    return user is not None and user.is_active


class GrantReplayed(Exception):
    """Raised inside DOT's token transaction, so that it stores nothing, when the code or refresh
    token being used turns out to be used already (by a concurrent request). ``respond`` runs once
    that transaction has rolled back, so that what it revokes stays revoked."""

    def __init__(self, respond):
        super().__init__("grant already used")
        self.respond = respond


class GrantAlreadyUsed(errors.InvalidGrantError):
    """``invalid_grant`` (RFC 6749 §5.2) raised from ``save_bearer_token``, past oauthlib's handler:
    DOT answers it with the error's own headers only, so they carry oauthlib's JSON ones."""

    @property
    def headers(self):
        return {
            **super().headers,
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
        }


@contextmanager
def code_redeemed_meanwhile_refused(request):
    """DOT reads a code's grant again for each check (PKCE challenge, redirect URI), and a concurrent
    redemption may delete it in between. RFC 6749 §4.1.2: that code is used: invalid_grant (not a
    500), and the tokens the other redemption got are revoked."""
    try:
        yield
    except get_grant_model().DoesNotExist:
        code_replay_respond(checksum=request.code, client=request.client)
        raise errors.InvalidGrantError(request=request) from None


def code_grant_lock(request):
    """The grant of the code being redeemed, locked until its tokens are stored.

    RFC 6749 §4.1.2: a code is used once. Of two concurrent redemptions the second finds the grant
    gone and is refused before storing anything: on PostgreSQL it waits on the row lock, on SQLite
    the IMMEDIATE transaction already made it wait for the first to commit. Then the first one's
    tokens are revoked.
    """
    grant = get_grant_model().objects.select_for_update().filter(code=request.code, application=request.client).first()
    if grant is None:
        checksum, client = request.code, request.client
        raise GrantReplayed(lambda: code_replay_respond(checksum=checksum, client=client))
    return grant


def refresh_token_lock_unrotated(request) -> None:
    """Lock the refresh token being rotated. If it was rotated since it was validated (a request
    presenting the same token committed first), this request is its second presentation.

    DOT would instead hand back the pair the other request minted ("grace period"), which under
    hashed token storage it cannot even read back.
    """
    presented = request.refresh_token_instance
    current = get_refresh_token_model().objects.select_for_update().filter(pk=presented.pk).first()
    if current is None or current.revoked is not None:
        raise GrantReplayed(lambda: refresh_token_reuse_respond(current or presented))


def refresh_token_presented(raw_token: str):
    """The row of a presented refresh token as DOT picks it (the live one, else the latest revoked),
    locked until the end of the transaction (not the user's and client's rows)."""
    return (
        get_refresh_token_model()
        .objects.select_for_update(of=("self",))
        .filter(token_checksum=token_checksum(raw_token))
        .order_by(F("revoked").desc(nulls_first=True))
        .first()
    )


def refresh_token_reuse_respond(refresh_token) -> None:
    """RFC 9700 §4.14.2: a refresh token presented after it was rotated or revoked may have leaked,
    and the server cannot tell the thief from the client: a request racing the rotation is reuse
    too. The whole family is revoked, the newest pair included, and the audit trail says so."""
    if not refresh_token.token_family:
        return
    refresh_token_family_revoke(refresh_token.token_family)
    # RFC 9700 §4.14.2 / CWE-770: the family's first reuse at once, its repeats bounded.
    audit_record_alarm(
        kind=AuditEvent.Kind.REFRESH_REUSE_DETECTED,
        user=refresh_token.user,
        client=refresh_token.application,
        family=str(refresh_token.token_family),
    )
