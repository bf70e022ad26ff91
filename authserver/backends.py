"""django-oauth-toolkit's oauthlib glue, with one correction."""

from oauth2_provider.oauth2_backends import OAuthLibCore


class AbsoluteURIOAuthLibCore(OAuthLibCore):
    """RFC 8707 audience checks compare the token's resources with the request URI, which must be
    absolute. DOT absolutizes it for protected resources (``verify_request``) but hands the userinfo
    endpoint a bare path, so a resource-bound token could never read userinfo."""

    def _extract_params(self, request):
        uri, http_method, body, headers = super()._extract_params(request)
        return request.build_absolute_uri(uri), http_method, body, headers
