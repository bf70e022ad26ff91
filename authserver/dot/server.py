"""The oauthlib server django-oauth-toolkit drives (its ``OAUTH2_SERVER_CLASS``), with this site's
request checks added through oauthlib's custom validators, its documented extension point."""

from oauthlib.openid import Server

from authserver.request_checks import authorization_request_check, token_request_check


class OAuthServer(Server):
    """oauthlib's OpenID Connect server (DOT's default with ``OIDC_ENABLED``), plus the request checks
    of ``authserver.request_checks`` (PKCE syntax, printable ``state`` and ``nonce``).

    The authorization code grant exists twice in it, for plain OAuth and for OpenID Connect
    requests; the latter's custom validators are those of the OAuth grant it wraps.
    """

    def __init__(self, request_validator, *args, **kwargs):
        super().__init__(request_validator, *args, **kwargs)
        for grant in (self.auth_grant, self.openid_connect_auth):
            grant.custom_validators.pre_auth.append(authorization_request_check)
            grant.custom_validators.pre_token.append(token_request_check)
