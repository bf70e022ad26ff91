"""The MCP endpoints' identities as OAuth protected resources (RFC 9728, RFC 8707).

The server is reachable by two transports, each its own resource identifier because clients
check that the metadata's ``resource`` is their endpoint URL (RFC 9728 §3.3):
``<origin>/star/mcp`` (Streamable HTTP) and ``<origin>/star/sse`` (legacy SSE, whose POSTs go to
``/star/messages/``).
"""

import functools

from django.conf import settings
from oauth2_provider.oauth2_validators import validate_resource_as_url_prefix


def resource_paths() -> tuple[str, ...]:
    return (settings.MCP_RESOURCE_PATH, settings.MCP_SSE_RESOURCE_PATH)


def public_origin(request_origin: str) -> str:
    """``SITE_URL`` when set, else the origin the request came to."""
    return settings.SITE_URL or request_origin.rstrip("/")


def resource_url(request_origin: str, path: str | None = None) -> str:
    return public_origin(request_origin) + (path or settings.MCP_RESOURCE_PATH)


def resource_metadata_url(request_origin: str, path: str | None = None) -> str:
    """RFC 9728 §3.1: the metadata lives at the origin root, with the resource path appended."""
    return (
        public_origin(request_origin) + "/.well-known/oauth-protected-resource" + (path or settings.MCP_RESOURCE_PATH)
    )


def known_resources(request_origin: str) -> list[str]:
    return [resource_url(request_origin, path) for path in resource_paths()]


def audience_covers(audiences: list[str], resource: str) -> bool:
    """RFC 8707 §2: does a token issued for ``audiences`` cover ``resource``?

    An empty list is *not* a wildcard here: every token for these endpoints names one.
    Matching is django-oauth-toolkit's component-wise prefix match (``https://host`` covers
    ``https://host/star/mcp``; ``https://host/star/mcpx`` and other hosts do not).
    """
    return _covers(tuple(audiences), resource)


# Every MCP request asks this for its token's audiences and the endpoint's URL, the same few pairs
# again and again; DOT's answer is a pure function of the strings (it parses both URLs each time).
@functools.lru_cache(maxsize=1024)
def _covers(audiences: tuple[str, ...], resource: str) -> bool:
    return bool(audiences) and validate_resource_as_url_prefix(resource, list(audiences))


def names_known_resource(requested: str, request_origin: str) -> bool:
    """Whether a client's ``resource`` parameter names (or covers) one of these endpoints."""
    return any(audience_covers([requested], known) for known in known_resources(request_origin))
