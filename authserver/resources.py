"""The protected resources this authorization server issues tokens for (RFC 8707), and the public
origin every URL it publishes starts with.

A resource-server app registers the paths of its endpoints (``mcpapp`` registers ``/star/mcp`` and
``/star/sse`` from its ``ready()``); each is its own resource identifier, because clients check
that RFC 9728 metadata's ``resource`` is their endpoint URL (RFC 9728 §3.3). The authorization
server binds every grant to them (``authserver.dot.validator``) and refuses a ``resource``
parameter naming anything else (``authserver.dot.views.authorize``).
"""

import functools
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from oauth2_provider.oauth2_validators import validate_resource_as_url_prefix
from oauth2_provider.settings import oauth2_settings

_path_providers: list[Callable[[], Iterable[str]]] = []


def protected_resource_paths_register(provider: Callable[[], Iterable[str]]) -> None:
    """Add a callable that returns resource paths (read on each use, so settings changes reach it)."""
    if provider not in _path_providers:
        _path_providers.append(provider)


def resource_paths() -> tuple[str, ...]:
    return tuple(path for provider in _path_providers for path in provider())


def is_origin(url: str) -> bool:
    """Whether ``url`` is an origin (RFC 6454 §6.2: ``scheme://host[:port]``, http or https), nothing more."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not (parts.path or parts.query)


def public_origin(request_origin: str) -> str:
    """The issuer (DOT's ``OIDC_ISS_ENDPOINT``, the site's public origin) when set, else the origin
    the request came to."""
    return (oauth2_settings.OIDC_ISS_ENDPOINT or request_origin).rstrip("/")


def resource_url(request_origin: str, path: str) -> str:
    return public_origin(request_origin) + path


def resource_metadata_url(request_origin: str, path: str) -> str:
    """RFC 9728 §3.1: the metadata lives at the origin root, with the resource path appended."""
    return public_origin(request_origin) + "/.well-known/oauth-protected-resource" + path


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
    try:
        return bool(audiences) and validate_resource_as_url_prefix(resource, list(audiences))
    except ValueError:
        # RFC 8707 §2: an indicator must be an absolute URI; one Python cannot parse ("https://[x", an
        # unclosed IPv6 literal) names nothing here (DOT's urlparse raised it: a 500 at /o/token/ and /o/authorize/).
        return False


def resources_named(requested: str, *, known: list[str]) -> list[str]:
    """The resources of ``known`` that a ``resource`` indicator names (or covers, as an origin does)."""
    return [resource for resource in known if audience_covers([requested], resource)]


def names_known_resource(requested: str, request_origin: str) -> bool:
    """Whether a client's ``resource`` parameter names (or covers) one of the protected resources."""
    return bool(resources_named(requested, known=known_resources(request_origin)))
