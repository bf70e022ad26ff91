"""django-oauth-toolkit's request validator, with this site's policy on claims and resources."""

from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings

from authserver.audit import audit_record
from authserver.claims import CLAIM_SCOPES, user_claims
from authserver.clients import client_touch
from authserver.consent import client_bind_owner, consent_record
from authserver.models import AuditEvent, token_checksum
from mcpapp.resource import known_resources


class MCPOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = CLAIM_SCOPES

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

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if not valid:
            # RFC 9700 §4.14.2: a revoked refresh token presented again means it leaked; DOT has
            # just revoked its whole family (REFRESH_TOKEN_REUSE_PROTECTION). Say so in the audit trail.
            replayed = (
                get_refresh_token_model()
                .objects.filter(token_checksum=token_checksum(refresh_token), revoked__isnull=False)
                .exclude(token_family=None)
                .select_related("user", "application")
                .first()
            )
            if replayed is not None:
                audit_record(
                    kind=AuditEvent.Kind.REFRESH_REUSE_DETECTED,
                    user=replayed.user,
                    client=replayed.application,
                    family=str(replayed.token_family),
                )
        return valid

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
