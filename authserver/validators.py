"""django-oauth-toolkit's request validator, with this site's policy on claims and resources, and
on a code or a refresh token presented several times at once (to several worker processes)."""

from contextlib import contextmanager

from django.db import router, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from authserver.audit import audit_record
from authserver.claims import CLAIM_SCOPES, user_claims
from authserver.clients import client_touch
from authserver.consent import client_bind_owner, consent_record
from authserver.hashers import client_secret_check
from authserver.models import AuditEvent, token_checksum
from authserver.signals import access_tokens_revoked
from mcpapp.resource import known_resources


class RefreshTokenReplayed(Exception):
    """Raised inside DOT's token transaction, so that it stores nothing, when the refresh token
    being rotated turns out to be revoked: a concurrent request rotated it first."""

    def __init__(self, refresh_token):
        super().__init__("refresh token already rotated")
        self.refresh_token = refresh_token


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


class MCPOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = CLAIM_SCOPES

    def _check_secret(self, provided_secret, stored_secret):
        # DOT's check, plus: a secret still stored with PBKDF2 is stored with CLIENT_SECRET_HASHER once it matched.
        return client_secret_check(provided=provided_secret, stored=stored_secret)

    def get_additional_claims(self, request):
        claims = user_claims(request.user)
        claims.pop("sub")  # DOT adds `sub` itself
        return claims

    def _create_authorization_code(self, request, code, expires=None):
        # RFC 8707 §2: every grant (and so every token) is bound to a resource. A client that named
        # none gets the MCP endpoints this server protects, so no token is ever valid "anywhere".
        if not getattr(request, "resource", None):
            issuer = oauth2_settings.oidc_issuer(request)
            request.resource = known_resources(issuer)
            if "openid" in request.scopes:
                # OpenID Connect Core §5.3: the userinfo endpoint is a resource of this server too.
                request.resource.append(issuer + reverse("oauth2_provider:user-info"))
        grant = super()._create_authorization_code(request, code, expires=expires)
        # The person approved these scopes (on the consent page, earlier, or as a first-party user).
        consent_record(user=request.user, client=request.client, scopes=request.scopes)
        client_bind_owner(client=request.client, user=request.user)
        client_touch(client_pk=request.client.pk, when=grant.created)
        return grant

    # --- One code, one token set, however many workers it reaches at once --------------------
    # oauthlib stores the tokens (save_bearer_token) before it invalidates the code, and DOT deletes
    # the grant outside the token transaction: two concurrent redemptions could both store tokens.

    def get_code_challenge(self, code, request):
        with code_redeemed_meanwhile_refused(request):
            return super().get_code_challenge(code, request)

    def get_code_challenge_method(self, code, request):
        with code_redeemed_meanwhile_refused(request):
            return super().get_code_challenge_method(code, request)

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        with code_redeemed_meanwhile_refused(request):
            return super().confirm_redirect_uri(client_id, code, redirect_uri, client, request, *args, **kwargs)

    def save_bearer_token(self, token, request, *args, **kwargs):
        try:
            return super().save_bearer_token(token, request, *args, **kwargs)
        except RefreshTokenReplayed as replay:
            # After DOT's transaction rolled back, so the revocation stays.
            refresh_token_reuse_respond(replay.refresh_token)
            raise GrantAlreadyUsed(request=request) from None

    def _save_bearer_token(self, token, request, *args, **kwargs):
        # Inside DOT's transaction: an error raised here rolls the new tokens back.
        if request.grant_type == "authorization_code":
            grant = code_grant_lock(request)
            saved = super()._save_bearer_token(token, request, *args, **kwargs)
            # RFC 6749 §4.1.2 / §10.5: the code is used up in the transaction that stores its tokens.
            grant.delete()
            request.code_redeemed = request.code
            return saved
        if request.grant_type == "refresh_token":
            refresh_token_lock_unrotated(request)
        return super()._save_bearer_token(token, request, *args, **kwargs)

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        # oauthlib calls this after save_bearer_token, which already deleted the grant.
        if getattr(request, "code_redeemed", None) == code:
            return
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)

    # --- Refresh token reuse ------------------------------------------------------------------

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        # A revoked token presented is reuse, answered here rather than by DOT's reuse protection,
        # which deletes the access token a concurrent rotation may still be answering with (see
        # refresh_token_family_revoke) and would honour REFRESH_TOKEN_GRACE_PERIOD_SECONDS (0 here).
        # The row stays locked while DOT validates a live one, so it cannot be rotated in between.
        with transaction.atomic(using=router.db_for_write(get_refresh_token_model())):
            presented = refresh_token_presented(refresh_token)
            if presented is None or presented.revoked is None:
                return super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        refresh_token_reuse_respond(presented)
        return False

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        # RFC 7009 §2.1: only the client's own tokens; DOT answers 200 either way (§2.2).
        client_pk = getattr(request.client, "pk", None)
        checksum = token_checksum(token)
        # Still live: DOT deletes a revoked access token, and marks a refresh token revoked.
        live = (
            get_access_token_model().objects.filter(token_checksum=checksum, application_id=client_pk),
            get_refresh_token_model().objects.filter(token_checksum=checksum, application_id=client_pk, revoked=None),
        )
        owned = [tokens.select_related("user").first() for tokens in live]
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        revoked = next((row for row in owned if row is not None), None)
        if client_pk is not None and revoked is not None:
            audit_record(
                kind=AuditEvent.Kind.TOKEN_REVOKED,
                user=revoked.user,
                client=request.client,
                revoked="one token",
            )


@contextmanager
def code_redeemed_meanwhile_refused(request):
    """DOT reads a code's grant again for each check (PKCE challenge, redirect URI), and a concurrent
    redemption may delete it in between. RFC 6749 §4.1.2: that code is used: invalid_grant, not a 500."""
    try:
        yield
    except get_grant_model().DoesNotExist:
        raise errors.InvalidGrantError(request=request) from None


def code_grant_lock(request):
    """The grant of the code being redeemed, locked until its tokens are stored.

    RFC 6749 §4.1.2: a code is used once. Of two concurrent redemptions the second finds the grant
    gone and is refused before storing anything: on PostgreSQL it waits on the row lock, on SQLite
    the IMMEDIATE transaction already made it wait for the first to commit.
    """
    grant = get_grant_model().objects.select_for_update().filter(code=request.code, application=request.client).first()
    if grant is None:
        raise GrantAlreadyUsed(request=request)
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
        raise RefreshTokenReplayed(current or presented)


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
    audit_record(
        kind=AuditEvent.Kind.REFRESH_REUSE_DETECTED,
        user=refresh_token.user,
        client=refresh_token.application,
        family=str(refresh_token.token_family),
    )


def refresh_token_family_revoke(family) -> None:
    """DOT's ``revoke_family``, with the family's access tokens expired now instead of deleted.

    When several requests present one refresh token at once, the others revoke the family while
    the winner's response is still being written, and DOT's token view reads the access token it
    just issued back from the database (for ``app_authorized``): deleted, that read is a 500.
    Expired, the token is refused everywhere (RFC 6750 §3.1) and ``cleartokens`` removes it later.
    """
    RefreshToken, AccessToken = get_refresh_token_model(), get_access_token_model()
    members = RefreshToken.objects.filter(token_family=family)
    with transaction.atomic(using=router.db_for_write(AccessToken)):
        access_token_ids = list(members.exclude(access_token=None).values_list("access_token_id", flat=True))
        # Detached first, so DOT deletes none of them, and a live member is an orphan DOT refuses.
        members.filter(access_token_id__in=access_token_ids).update(access_token=None)
        expired = AccessToken.objects.filter(pk__in=access_token_ids)
        checksums = list(expired.values_list("token_checksum", flat=True))
        expired.update(expires=timezone.now())
        RefreshToken.revoke_family(family)
    access_tokens_revoked.send(sender=AccessToken, checksums=checksums)
