"""The MCP SDK's ``TokenVerifier`` over django-oauth-toolkit's access-token table."""

import time
from collections.abc import Callable
from typing import Any

from mcp.server.auth.provider import AccessToken
from oauth2_provider.models import get_access_token_model
from pydantic import ConfigDict, Field

from authserver.models import token_checksum


class DjangoAccessToken(AccessToken):
    """What a verified token tells the MCP layer: the SDK's fields plus the Django user."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    user: Any = Field(exclude=True, repr=False)
    audiences: list[str] = Field(default_factory=list)


class DotTokenVerifier:
    """Looks bearer tokens up in DOT's table, asynchronously, by checksum.

    With ``COMPLIANT_BCP_RFC9700_TOKEN_STORAGE`` DOT keeps only the SHA-256 of each token, so the
    lookup is by ``token_checksum``. A revoked access token is deleted by DOT, so "not found"
    covers unknown and revoked alike. Expiry is checked against ``clock`` (injectable for tests).
    The audience (RFC 8707) is checked by the caller, which knows the request's origin.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time):
        self.clock = clock

    async def verify_token(self, token: str) -> DjangoAccessToken | None:
        checksum = token_checksum(token)
        row = await (
            get_access_token_model()
            .objects.select_related("user", "application")
            .filter(token_checksum=checksum)
            .afirst()
        )
        if row is None:
            return None
        expires_at = row.expires.timestamp()
        # RFC 6750 §3.1: an expired token is an invalid token.
        if expires_at <= self.clock():
            return None
        # A token that acts for nobody (client credentials) or for a deactivated account is refused.
        if row.user is None or not row.user.is_active:
            return None
        # A token of a client an operator disabled is refused, whatever is left of it.
        if row.application is None or not row.application.is_usable(None):
            return None
        audiences = list(row.resource or [])
        return DjangoAccessToken(
            token=token,
            client_id=row.application.client_id if row.application else "",
            scopes=row.scope.split(),
            expires_at=int(expires_at),
            resource=audiences[0] if audiences else None,
            subject=str(row.user.pk),
            user=row.user,
            audiences=audiences,
        )
