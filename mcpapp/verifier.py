"""The MCP SDK's ``TokenVerifier`` over django-oauth-toolkit's access-token table."""

import copy
import functools
import time
from collections.abc import Callable
from typing import Any

from mcp.server.auth.provider import AccessToken
from oauth2_provider.models import get_access_token_model
from pydantic import ConfigDict, Field

from authserver.claims import user_claims
from authserver.models import token_checksum
from mcpapp.token_cache import VerifiedToken, VerifiedTokenCache, verified_tokens


class DjangoAccessToken(AccessToken):
    """What a verified token tells the MCP layer: the SDK's fields plus the Django user.

    ``user`` is a copy of the user the verifier looked up, made when a tool first asks for it: the
    looked-up one may be remembered for later requests (``mcpapp.token_cache``), which a tool that
    changes its user must not reach, and most requests never ask.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    verified_user: Any = Field(exclude=True, repr=False)
    audiences: list[str] = Field(default_factory=list)
    # What the site can say of the user (authserver.claims.user_claims), taken at lookup: reading
    # who the user is needs no copy of the user (whoami). Shared by every request: read only.
    user_claims: dict = Field(default_factory=dict, exclude=True, repr=False)
    # The service client's name when the token acts for no person but a service (client credentials).
    service: str | None = Field(default=None, exclude=True)

    @functools.cached_property
    def user(self):
        return copy.copy(self.verified_user)


def _acts_as_service(row) -> bool:
    """A service client's token (client credentials), stored as its service user's."""
    return row.application.is_service and row.application.user_id == row.user_id


class DotTokenVerifier:
    """Looks bearer tokens up in DOT's table, asynchronously, by checksum, remembering the valid
    ones for a while (``mcpapp.token_cache``: forgotten in every worker when revoked).

    With ``COMPLIANT_BCP_RFC9700_TOKEN_STORAGE`` DOT keeps only the SHA-256 of each token, so the
    lookup is by ``token_checksum``. A revoked access token is deleted by DOT (or, revoked with its
    refresh token's family, expired), so "not found" covers unknown and revoked alike. Expiry is
    checked against ``clock`` (injectable for tests) on every use, remembered or not.
    The audience (RFC 8707) is checked by the caller, which knows the request's origin.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, cache: VerifiedTokenCache = verified_tokens):
        self.clock = clock
        self.cache = cache

    async def verify_token(self, token: str) -> DjangoAccessToken | None:
        checksum = token_checksum(token)
        self.cache.sync()
        verified = self.cache.get(checksum)
        if verified is None:
            generation = self.cache.generation
            verified = await self._look_up(checksum)
            if verified is None:
                return None
            self.cache.put(checksum, verified, generation=generation)
        # RFC 6750 §3.1: an expired token is an invalid token.
        if verified.expires_at <= self.clock():
            return None
        # Each request its own copy, with its own token (memory never holds one) and its own lists:
        # pydantic's copy of a model costs half of building one, even without validation.
        return verified.access_token.model_copy(
            update={"token": token, "scopes": list(verified.scopes), "audiences": list(verified.audiences)}
        )

    async def _look_up(self, checksum: str) -> VerifiedToken | None:
        row = await (
            get_access_token_model()
            .objects.select_related("user", "application")
            .filter(token_checksum=checksum)
            .afirst()
        )
        if row is None:
            return None
        # A token that acts for nobody (a client-credentials token of a client with no service user) or
        # for a deactivated account is refused.
        if row.user is None or not row.user.is_active:
            return None
        # A token of a client an operator disabled is refused, whatever is left of it.
        if row.application is None or not row.application.is_usable(None):
            return None
        scopes, expires_at, audiences = tuple(row.scope.split()), row.expires.timestamp(), tuple(row.resource or [])
        # Built from values this module checked, so without pydantic's validation.
        access_token = DjangoAccessToken.model_construct(
            token="",
            client_id=row.application.client_id,
            scopes=[],
            expires_at=int(expires_at),
            resource=audiences[0] if audiences else None,
            subject=str(row.user.pk),
            verified_user=row.user,
            audiences=[],
            user_claims=user_claims(row.user),
            service=row.application.name if _acts_as_service(row) else None,
        )
        return VerifiedToken(scopes, expires_at, audiences, access_token)
