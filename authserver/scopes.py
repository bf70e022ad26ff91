"""The one registry of OAuth scopes: name, what the consent page tells the person, and role.

Plain data with no Django imports, so settings can build django-oauth-toolkit's ``SCOPES`` from it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    # The base scope is needed to use the MCP endpoint at all.
    base: bool = False
    # Advertised in the MCP endpoint's RFC 9728 metadata (what an MCP client should ask for).
    for_mcp: bool = True


SCOPE_REGISTRY: tuple[Scope, ...] = (
    Scope("mcp", "Use the tools of this site's MCP server on your behalf", base=True),
    Scope("profile", "See your username and name"),
    Scope("email", "See your email address"),
    Scope("openid", "Sign you in with OpenID Connect", for_mcp=False),
)

BASE_SCOPE = next(scope.name for scope in SCOPE_REGISTRY if scope.base)
MCP_SCOPES = [scope.name for scope in SCOPE_REGISTRY if scope.for_mcp]
SCOPES_BY_NAME = {scope.name: scope for scope in SCOPE_REGISTRY}
