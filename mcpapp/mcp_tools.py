"""The tools this project itself contributes to its MCP server (discovered like any app's ``mcp_tools.py``)."""

from mcp.types import ToolAnnotations
from typing_extensions import TypedDict  # what pydantic needs before Python 3.12

from authserver.claims import released_claims
from authserver.scopes import scope_registry
from mcpapp.registry import current_token, mcp_registry


class Identity(TypedDict, total=False):
    """OpenID Connect Core §5.1 claims; each present only when the grant's scopes release it."""

    sub: str
    username: str
    preferred_username: str
    name: str
    given_name: str
    family_name: str
    email: str
    email_verified: bool
    client_id: str
    scope: str
    # "service" when the token acts for an automation (a service client), not a person; "person" otherwise.
    acting_as: str
    service: str


@mcp_registry.tool(
    scopes=["profile"],
    optional_scopes={"email": "can also show your email"},
    title="Who am I",
    annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False),
)
async def whoami() -> Identity:
    """Who you are on this site: your user id, username and name, and your email if you allowed it.

    A username or name that is your email address is shown only if you allowed your email."""
    token = current_token()
    identity = Identity(
        **released_claims(token.user_claims, scope_registry.expand(token.scopes)),
        client_id=token.client_id,
        scope=" ".join(token.scopes),
        acting_as="service" if token.service else "person",
    )
    if token.service:
        identity["service"] = token.service
    return identity
