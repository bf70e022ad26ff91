"""django-oauth-toolkit's request validator (``OAUTH2_VALIDATOR_CLASS``), with this site's policy on
client authentication, claims, resources, deactivated people and grants presented twice.

Checked against DOT 3.4.1. Each override says what it adds and why; the policies themselves live
in plain functions elsewhere (``authserver.grants``, ``authserver.codes``, ``authserver.consent``),
so this stays a validator. Private DOT methods overridden here (``_check_secret``,
``_load_application``, ``_save_bearer_token``) are pinned by ``tests/authserver/test_dot_boundary.py``.
"""

from django.db import router, transaction
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors, utils

from authserver.audit import audit_record, audit_record_bounded
from authserver.claims import CLAIM_SCOPES, released_claims, user_claims
from authserver.client_assertions import (
    PRIVATE_KEY_JWT,
    client_assertion_audiences,
    client_assertion_presented,
    client_assertion_subject,
    client_assertion_verify,
)
from authserver.client_keys import AssertionInvalid
from authserver.clients import client_touch
from authserver.codes import code_checksum, code_redeemed_record, code_replay_respond
from authserver.consent import client_bind_owner, consent_record
from authserver.grants import (
    GrantAlreadyUsed,
    GrantReplayed,
    code_grant_lock,
    code_redeemed_meanwhile_refused,
    person_active,
    refresh_token_lock_unrotated,
    refresh_token_presented,
    refresh_token_reuse_respond,
)
from authserver.hashers import client_secret_check
from authserver.models import AuditEvent, token_checksum
from authserver.ratelimit import basic_credentials_decoded
from authserver.resources import known_resources
from authserver.service_clients import service_token_bind_user


def client_auth_method_presented(request) -> str | None:
    """How the request authenticates its client: ``client_secret_basic`` (an HTTP Basic
    ``Authorization`` header), ``client_secret_post`` (``client_secret`` in the body),
    ``private_key_jwt`` (``client_assertion``, RFC 7523 §2.2), or None: none of them, or more than
    one (RFC 6749 §2.3: one method per request)."""
    authorization = request.headers.get("HTTP_AUTHORIZATION") or ""
    basic = authorization.split(" ", 1)[0].lower() == "basic"
    in_body = getattr(request, "client_secret", None) is not None
    assertion = client_assertion_presented(request)
    if basic + in_body + assertion != 1:
        return None
    if basic and not authorization.isascii():
        # RFC 7617 §2: base64 is ASCII. DOT 3.4.1 would pass this to b64decode, whose ValueError is a 500.
        return None
    if basic and basic_credentials_decoded(authorization) is None:
        # RFC 7617 §2 (token68, RFC 4648 base64): DOT's lenient b64decode drops characters outside the
        # alphabet, so "Basic QWxh!Y2U6..." authenticated a client that the per-client allowance, which
        # reads the header strictly, could not name (CWE-436: one header, two readings).
        return None
    if assertion:
        return PRIVATE_KEY_JWT
    return "client_secret_basic" if basic else "client_secret_post"


def client_assertion_authenticate(request, *, load_client) -> bool:
    """RFC 7523 §2.2 / §3 (``authserver.client_assertions``): DOT 3.4.1 has no ``private_key_jwt``.
    A refused assertion is ``invalid_client`` saying why (RFC 6749 §5.2), but never what fetching the
    client's keys met (an address its ``jwks_uri`` resolved to): that is for the audit trail."""
    try:
        client_id = client_assertion_subject(request)
        client = load_client(client_id, request)
        if client is None:
            raise AssertionInvalid("No such client")
        audiences = client_assertion_audiences(issuer=oauth2_settings.oidc_issuer(request), endpoint_uri=request.uri)
        client_assertion_verify(client=client, assertion=request.client_assertion, audiences=audiences)
    except AssertionInvalid as refusal:
        # In the audit trail, for operators: a key not rotated in, a clock off, a replay. Anyone can send
        # these, for any client or none, as often as they like: bounded writes.
        audit_record_bounded(
            kind=AuditEvent.Kind.ASSERTION_REFUSED,
            client=getattr(request, "client", None),
            reason=refusal.reason,  # what the caller is told, and why a key fetch failed (operators only)
            assertion="client authentication (private_key_jwt)",
        )
        raise errors.InvalidClientError(description=str(refusal), request=request) from None
    request.client_id = client.client_id
    return True


class MCPOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = CLAIM_SCOPES

    # --- Clients ------------------------------------------------------------------------------

    def _check_secret(self, provided_secret, stored_secret):
        # Private (DOT 3.4.1). DOT's check, plus: a secret still stored with PBKDF2 is stored with
        # CLIENT_SECRET_HASHER once it matched, and an empty secret (a public client's) never matches.
        return client_secret_check(provided=provided_secret, stored=stored_secret)

    def _load_application(self, client_id, request):
        # Private (DOT 3.4.1), the one place every client lookup goes through. DOT takes a NUL in a
        # client_id for "no such client" only when the driver raises ValueError (psycopg2, DOT #1006);
        # psycopg 3 raises DataError, a 500 on PostgreSQL for "Basic AA==" or client_id=%00. No
        # client_id holds one (RFC 6749 Appendix A.1: VSCHAR).
        if client_id and "\x00" in client_id:
            return None
        return super()._load_application(client_id, request)

    def authenticate_client(self, request, *args, **kwargs):
        # RFC 6749 §2.3 / RFC 7591 §2: a client authenticates only with the method it registered (DOT
        # takes either); a public client (`none`) has no credentials, so it never authenticates
        # (RFC 6749 §2.1): it identifies itself with its client_id where that is enough.
        presented = client_auth_method_presented(request)
        if presented == PRIVATE_KEY_JWT:
            return client_assertion_authenticate(request, load_client=self._load_application)
        if presented is None or not super().authenticate_client(request, *args, **kwargs):
            return False
        return request.client.token_endpoint_auth_method == presented

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        # MCP client-credentials extension: only service clients an operator made get tokens with no
        # person (oauthlib answers `unauthorized_client`, RFC 6749 §5.2); never a client that
        # registered itself or published a metadata document, whatever grant type it declared.
        if grant_type == "client_credentials":
            service = request.client
            # RFC 6749 §4.4 / §3.3: one an operator listed scopes for (a client made only to introspect
            # lists none: no tokens for itself), acting as its service user, who is active (deactivated:
            # the service is off): a token always names who acted, never nobody.
            listed = service.is_service and service.allowed_scopes and service.user is not None
            if not (listed and person_active(service.user)):
                return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    # --- Scopes (the scopes backend, authserver.scopes.RegistryScopes, says which a client may get) ---

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        # RFC 6749 §3.3: no scope asked and no default this client may have is invalid_scope, never a
        # token for no scope at all.
        return bool(scopes) and super().validate_scopes(client_id, scopes, client, request, *args, **kwargs)

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        # RFC 6749 §6 / §3.3: a refresh gets at most what was granted, and only what the client may
        # still get: an operator's narrower allowed_scope (or a scope no longer offered) holds on the
        # next refresh, not when the grant ends. Nothing left is invalid_scope, not an empty token.
        original = utils.scope_to_list(super().get_original_scopes(refresh_token, request, *args, **kwargs)) or []
        available = get_scopes_backend().get_available_scopes(application=request.client, request=request)
        kept = [name for name in original if name in available]
        if not kept:
            raise errors.InvalidScopeError(description="This client may no longer get these scopes.", request=request)
        return kept

    # --- prompt=none (OpenID Connect Core §3.1.2.1) ----------------------------------------------

    def validate_silent_login(self, request):
        # oauthlib asks for OpenID requests with prompt=none; DOT 3.4.1 leaves it unimplemented (a 500).
        # The authorization endpoint decides prompt for every request: a signed-out person's is
        # answered login_required before this is reached (AuthorizationView.handle_no_permission).
        return True

    def validate_silent_authorization(self, request):
        # Likewise: consent_required is the authorization view's answer (AuthorizationView.render_to_response).
        return True

    # --- People and claims ----------------------------------------------------------------------

    def validate_bearer_token(self, token, scopes, request):
        valid = super().validate_bearer_token(token, scopes, request)
        # RFC 6750 §3.1: a token of a deactivated person, or of nobody, reads no userinfo.
        if valid and not person_active(request.user):
            request.oauth2_error = {"error": "invalid_token", "error_description": "The access token is invalid."}
            return False
        return valid

    def get_additional_claims(self, request):
        # The claims the grant's scopes release (authserver.claims: OpenID Connect Core §5.4, the email
        # address only with `email`, whichever claim carries it); DOT filters them by name again.
        claims = released_claims(user_claims(request.user), request.scopes)
        claims.pop("sub")  # DOT adds `sub` itself
        return claims

    # --- Codes ----------------------------------------------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        if not getattr(request, "resource", None):
            # RFC 8707 §2: every grant (and so every token) is bound to a resource. A client that named
            # none gets the resources this server protects, so no token is ever valid "anywhere".
            issuer = oauth2_settings.oidc_issuer(request)
            request.resource = known_resources(issuer)
            if "openid" in request.scopes:
                # OpenID Connect Core §5.3: the userinfo endpoint is a resource of this server too.
                request.resource.append(issuer + reverse("oauth2_provider:user-info"))
        # Codes are stored as their SHA-256, like tokens (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE); the
        # client is sent the code itself (oauthlib keeps its own copy of `code`).
        stored = {**code, "code": code_checksum(code["code"])}
        saved = super().save_authorization_code(client_id, stored, request, *args, **kwargs)
        # The person approved these scopes (on the consent page, earlier, or as a first-party user).
        consent_record(user=request.user, client=request.client, scopes=request.scopes)
        client_bind_owner(client=request.client, user=request.user)
        client_touch(client_pk=request.client.pk, when=timezone.now())
        return saved

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

    # One code, one token set, however many workers it reaches at once: oauthlib stores the tokens
    # (save_bearer_token) before it invalidates the code, and DOT deletes the grant outside the token
    # transaction, so two concurrent redemptions could both store tokens (authserver.grants).

    def get_code_challenge(self, code, request):
        with code_redeemed_meanwhile_refused(request):
            return super().get_code_challenge(code, request)

    def get_code_challenge_method(self, code, request):
        with code_redeemed_meanwhile_refused(request):
            return super().get_code_challenge_method(code, request)

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        with code_redeemed_meanwhile_refused(request):
            return super().confirm_redirect_uri(client_id, code, redirect_uri, client, request, *args, **kwargs)

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        # oauthlib calls this after save_bearer_token, which already deleted the grant.
        if getattr(request, "code_redeemed", None) == code:
            return
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)

    # --- Tokens ---------------------------------------------------------------------------------

    def save_bearer_token(self, token, request, *args, **kwargs):
        try:
            return super().save_bearer_token(token, request, *args, **kwargs)
        except GrantReplayed as replay:
            # After DOT's transaction rolled back, so the revocation stays.
            replay.respond()
            raise GrantAlreadyUsed(request=request) from None

    def _save_bearer_token(self, token, request, *args, **kwargs):
        # Private, and DOT's documented place for custom logic (its save_bearer_token docstring): it
        # runs inside DOT's transaction, so an error raised here rolls the new tokens back.
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
        saved = super()._save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "client_credentials":
            # DOT stores client-credentials tokens for no user; a service client's act as its service
            # user, so tools, the audit trail and revocation see who acted.
            service_token_bind_user(access_token=token["access_token"], client=request.client)
        return saved

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        # RFC 9700 §4.14.2. A live token is DOT's to validate. A revoked one presented is reuse, which
        # DOT 3.4.1's REFRESH_TOKEN_REUSE_PROTECTION also detects; it is answered here because DOT's
        # answer lacks three things: (1) its revoke_family *deletes* the family's access tokens, and a
        # concurrent rotation that won the race reads its new one back to answer (500); (2) nothing is
        # recorded or announced (the audit trail, and mcpapp's token cache for bulk changes);
        # (3) nothing stops the token being rotated between this check and the rotation: the row stays
        # locked here while DOT validates it (authserver.grants.refresh_token_lock_unrotated).
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
                kind=AuditEvent.Kind.TOKEN_REVOKED, user=revoked.user, client=request.client, revoked="one token"
            )
