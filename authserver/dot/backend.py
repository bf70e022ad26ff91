"""django-oauth-toolkit's oauthlib glue, with one correction and one addition."""

from oauth2_provider.oauth2_backends import OAuthLibCore
from oauthlib.common import Request as OauthlibRequest
from oauthlib.oauth2.rfc6749.errors import OAuth2Error


class AbsoluteURIOAuthLibCore(OAuthLibCore):
    """RFC 8707 audience checks compare the token's resources with the request URI, which must be
    absolute. DOT absolutizes it for protected resources (``verify_request``) but hands the userinfo
    endpoint a bare path, so a resource-bound token could never read userinfo."""

    def _extract_params(self, request):
        uri, http_method, body, headers = super()._extract_params(request)
        return request.build_absolute_uri(uri), http_method, body, headers

    def authenticated_client(self, request):
        """The client that authenticated itself on ``request`` (RFC 6749 §2.3, with the method it
        registered: ``MCPOAuth2Validator.authenticate_client``), or None. DOT's
        ``authenticate_client`` says only whether some client did."""
        oauthlib_request = OauthlibRequest(*self._extract_params(request))
        try:
            authenticated = self.server.request_validator.authenticate_client(oauthlib_request)
        except OAuth2Error:  # a client assertion refused (authserver.client_assertions)
            return None
        return oauthlib_request.client if authenticated else None
