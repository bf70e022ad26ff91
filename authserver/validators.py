"""django-oauth-toolkit's request validator, with this site's policy on client authentication,
claims, resources and deactivated people, and on a code or a refresh token presented more than
once (again later, or several times at once to several worker processes)."""

from contextlib import contextmanager

from django.db import router, transaction
from django.db.models import F
from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from authserver.audit import audit_record
from authserver.claims import CLAIM_SCOPES, user_claims
from authserver.clients import client_touch
from authserver.codes import code_checksum, code_redeemed_record, code_replay_respond
from authserver.consent import client_bind_owner, consent_record
from authserver.hashers import client_secret_check
from authserver.models import AuditEvent, token_checksum
from authserver.revocation import refresh_token_family_revoke
from mcpapp.resource import known_resources


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


def client_auth_method_presented(request) -> str | None:
    """How the request authenticates its client: ``client_secret_basic`` (an HTTP Basic
    ``Authorization`` header), ``client_secret_post`` (``client_secret`` in the body), or None:
    neither, or both (RFC 6749 §2.3: one method per request)."""
    authorization = request.headers.get("HTTP_AUTHORIZATION") or ""
    basic = authorization.split(" ", 1)[0].lower() == "basic"
    in_body = getattr(request, "client_secret", None) is not None
    if basic == in_body:
        return None
    if basic and not authorization.isascii():
        # RFC 7617 §2: base64 is ASCII. DOT 3.4.1 would pass this to b64decode, whose ValueError is a 500.
        return None
    return "client_secret_basic" if basic else "client_secret_post"


def person_active(user) -> bool:
    """Whether a token or code acting for ``user`` may still be used: only while they can sign in."""
    return user is not None and user.is_active


class MCPOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = CLAIM_SCOPES

    def _check_secret(self, provided_secret, stored_secret):
        # DOT's check, plus: a secret still stored with PBKDF2 is stored with CLIENT_SECRET_HASHER once
        # it matched, and an empty secret (a public client's) never matches.
        return client_secret_check(provided=provided_secret, stored=stored_secret)

    def _load_application(self, client_id, request):
        # DOT 3.4.1 takes a NUL in a client_id for "no such client" only when the database driver
        # raises ValueError (psycopg2, DOT #1006); psycopg 3 raises DataError, a 500 on PostgreSQL
        # for "Basic AA==" or client_id=%00. No client_id holds one (RFC 6749 Appendix A.1: VSCHAR).
        if client_id and "\x00" in client_id:
            return None
        return super()._load_application(client_id, request)

    def authenticate_client(self, request, *args, **kwargs):
        # RFC 6749 §2.3 / RFC 7591 §2: a client authenticates only with the method it registered (DOT
        # takes either); a public client (`none`) has no credentials, so it never authenticates
        # (RFC 6749 §2.1): it identifies itself with its client_id where that is enough.
        presented = client_auth_method_presented(request)
        if presented is None or not super().authenticate_client(request, *args, **kwargs):
            return False
        return request.client.token_endpoint_auth_method == presented

    def validate_bearer_token(self, token, scopes, request):
        valid = super().validate_bearer_token(token, scopes, request)
        # RFC 6750 §3.1: a token of a deactivated person, or of nobody, reads no userinfo.
        if valid and not person_active(request.user):
            request.oauth2_error = {"error": "invalid_token", "error_description": "The access token is invalid."}
            return False
        return valid

    def get_additional_claims(self, request):
        claims = user_claims(request.user)
        claims.pop("sub")  # DOT adds `sub` itself
        return claims

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        # Codes are stored as their SHA-256, like tokens (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE); the
        # client is sent the code itself (oauthlib keeps its own copy of `code`).
        stored = {**code, "code": code_checksum(code["code"])}
        return super().save_authorization_code(client_id, stored, request, *args, **kwargs)

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        # Asked with the code as the client sent it (which grant answers: OpenID Connect or OAuth).
        return super().get_authorization_code_scopes(client_id, code_checksum(code), redirect_uri, request)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        # The first look at the code at the token endpoint: from here on the request carries the
        # code's checksum, which every later lookup (DOT's and oauthlib's) finds the grant by.
        request.code = code_checksum(code)
        if not super().validate_code(client_id, request.code, client, request, *args, **kwargs):
            # RFC 6749 §4.1.2: a code used before: refused, and what it got revoked.
            code_replay_respond(checksum=request.code, client=client)
            return False
        # A deactivated person's codes get nothing.
        return person_active(request.user)

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
        except GrantReplayed as replay:
            # After DOT's transaction rolled back, so the revocation stays.
            replay.respond()
            raise GrantAlreadyUsed(request=request) from None

    def _save_bearer_token(self, token, request, *args, **kwargs):
        # Inside DOT's transaction: an error raised here rolls the new tokens back.
        if request.grant_type == "authorization_code":
            grant = code_grant_lock(request)
            saved = super()._save_bearer_token(token, request, *args, **kwargs)
            # RFC 6749 §4.1.2 / §10.5: the code is used up in the transaction that stores its tokens,
            # and remembered, so that a second use revokes them.
            grant.delete()
            code_redeemed_record(checksum=request.code, client=request.client, refresh_token=token.get("refresh_token"))
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
                valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
                # A deactivated person's refresh tokens get nothing.
                return valid and person_active(request.user)
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
    audit_record(
        kind=AuditEvent.Kind.REFRESH_REUSE_DETECTED,
        user=refresh_token.user,
        client=refresh_token.application,
        family=str(refresh_token.token_family),
    )
