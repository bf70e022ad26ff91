"""The oauthlib server django-oauth-toolkit drives (its ``OAUTH2_SERVER_CLASS``), with this site's
request checks added through oauthlib's custom validators, its documented extension point, and the
grant types DOT lacks (``authserver.dot.grants``) added to its token endpoint."""

from oauthlib.openid import Server

from authserver.conf import JWT_BEARER_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE
from authserver.dot.grants import IdentityAssertionExchangeGrant, IdentityAssertionGrant
from authserver.request_checks import authorization_request_check, resource_bind, token_request_check


class OAuthServer(Server):
    """oauthlib's OpenID Connect server (DOT's default with ``OIDC_ENABLED``), plus the request checks
    of ``authserver.request_checks`` (PKCE syntax, printable ``state`` and ``nonce``, RFC 8707
    resources of client-credentials tokens) and the identity assertion grants.

    The authorization code grant exists twice in it, for plain OAuth and for OpenID Connect
    requests; the latter's custom validators are those of the OAuth grant it wraps.
    """

    def __init__(self, request_validator, *args, **kwargs):
        super().__init__(request_validator, *args, **kwargs)
        for grant in (self.auth_grant, self.openid_connect_auth):
            grant.custom_validators.pre_auth.append(authorization_request_check)
            grant.custom_validators.pre_token.append(token_request_check)
        # RFC 8707 §2: a service client's token is for this server's resources, never "anywhere".
        self.credentials_grant.custom_validators.post_token.append(resource_bind)
        # The token endpoint's grant types are oauthlib's public `grant_types` mapping.
        self.grant_types[JWT_BEARER_GRANT_TYPE] = IdentityAssertionGrant(request_validator)
        self.grant_types[TOKEN_EXCHANGE_GRANT_TYPE] = IdentityAssertionExchangeGrant(request_validator)
