"""The MCP tools this project ships."""

from typing import TypedDict

from mcp.server.auth.middleware.auth_context import get_access_token

from authserver.claims import claims_for_scopes


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


def current_token():
    """The verified token of the request being served (set by the SDK's AuthContextMiddleware)."""
    token = get_access_token()
    if token is None:  # Unreachable behind RequireBearerToken; refuse rather than guess.
        raise PermissionError("No authenticated user")
    return token


async def whoami() -> Identity:
    """Who you are on this site: your user id, plus your name with `profile` and email with `email`."""
    token = current_token()
    return Identity(
        **claims_for_scopes(token.user, token.scopes),
        client_id=token.client_id,
        scope=" ".join(token.scopes),
    )
