"""Token introspection (RFC 7662): what an operator-trusted resource server may learn about a token.

Who may ask is decided by the endpoint (``authserver.dot.views.endpoints.IntrospectTokenView``): a
confidential client an operator marked ``may_introspect``. Such a client sees every access token
this server issued, whatever its audience: this server issues tokens only for its own resources
(RFC 8707, ``invalid_target`` for any other), so a resource server allowed to introspect is one
that serves them, e.g. a gateway in front of the MCP endpoint (RFC 7662 §4 leaves the choice to
the server; the README says so).

RFC 7662 §2.2 lists ``username`` as OPTIONAL: it is released as everywhere else that says who the
person is (``authserver.claims``): with ``profile``, and with ``email`` when it is an email address
(OpenID Connect Core §5.4), so the person's address reaches a resource server only through a token
they granted ``email``.
"""

from oauth2_provider.models import get_access_token_model
from oauth2_provider.settings import oauth2_settings

from authserver.claims import released_claims, user_claims
from authserver.models import token_checksum
from authserver.scopes import scope_registry

INACTIVE = {"active": False}


def token_introspect(*, token: str, issuer: str) -> dict:
    """RFC 7662 §2.2: the token's claims, or only ``{"active": false}``: for a token this server
    does not know, expired, revoked, of a deactivated person or of a disabled client, and for an
    RFC 7592 registration access token (a credential for the registration endpoint, not for any
    resource). Refresh tokens are not introspected: resource servers never see them."""
    row = (
        get_access_token_model()
        .objects.select_related("user", "application")
        .filter(token_checksum=token_checksum(token))
        .first()
    )
    if row is None or row.is_expired() or row.scope == oauth2_settings.DCR_REGISTRATION_SCOPE:
        return INACTIVE
    if row.application is None or not row.application.is_usable(None):
        return INACTIVE
    if row.user is not None and not row.user.is_active:
        return INACTIVE
    answer = {
        "active": True,
        "scope": row.scope,
        "client_id": row.application.client_id,
        "token_type": "Bearer",
        "exp": int(row.expires.timestamp()),
        "iat": int(row.created.timestamp()),
        "iss": issuer,
    }
    if row.user is not None:
        answer["sub"] = str(row.user.pk)
        # RFC 7662 §2.2 / OpenID Connect Core §5.4: the username only where the token's scopes release it.
        released = released_claims(user_claims(row.user), scope_registry.expand(row.scope.split()))
        if "username" in released:
            answer["username"] = released["username"]
    if row.resource:
        answer["aud"] = list(row.resource)
    return answer
