"""CORS for the OAuth endpoints, through django-cors-headers' own hook (``check_request_enabled``),
so a site needs no CORS settings of its own for them: browser-based MCP clients (MCP Inspector) call
the discovery documents, token, revocation, introspection, userinfo and registration endpoints
cross-origin with PKCE or bearer tokens, never cookies. The authorization page and every other page
of the site stay closed to other origins.
"""

from authserver.errors import is_json_endpoint


def oauth_endpoint_cors_allowed(sender, request, **kwargs) -> bool:
    return is_json_endpoint(request)
