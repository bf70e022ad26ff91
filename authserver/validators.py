"""django-oauth-toolkit's request validator, with this site's policy on claims and resources."""

from django.urls import reverse
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings

from authserver.claims import CLAIM_SCOPES, user_claims
from authserver.consent import client_bind_owner, consent_record
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
        return grant
