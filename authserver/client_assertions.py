"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the
client signs a short-lived JWT with its private key; this server checks it with the public keys the
client registered (inline JWKS or ``jwks_uri``). No shared secret exists at all.

Used at every endpoint where a client authenticates (token, revocation, introspection) through
``MCPOAuth2Validator.authenticate_client``.

What a client assertion may say, beyond the rules every signed assertion follows
(``authserver.client_keys``: claim types, signature, ``exp``, ``jti`` once):

- ``typ`` (RFC 8725 §3.11, explicit typing): absent, ``JWT`` (RFC 7519 §5.1), or
  ``client-authentication+jwt`` (draft-ietf-oauth-rfc7523bis), in any case, with or without
  ``application/``. Any other type is another kind of JWT (an ID-JAG ``oauth-id-jag+jwt``, an access
  token ``at+jwt``, a DPoP proof ``dpop+jwt``, a logout token ``logout+jwt``) and never authenticates
  a client, even signed with the client's own key.
- ``aud``: this server's issuer (draft-ietf-oauth-rfc7523bis), its token endpoint (RFC 7523 §3
  item 3, OpenID Connect Core §9), or the endpoint the assertion is sent to (revocation,
  introspection). The MCP SDKs send the issuer: the Python SDK's ``SignedJWTParameters`` the
  authorization server metadata's ``issuer``, the TypeScript SDK's ``PrivateKeyJwtProvider`` the
  same (else the authorization server's URL), both as a string. A string, or an array whose every
  value is one of ours: an array naming another server too could have been replayed from there.
"""

import time
from collections.abc import Callable

from django.urls import reverse

from authserver.client_keys import (
    AssertionInvalid,
    KeySource,
    jti_use_once,
    jwt_header,
    jwt_unverified_claims,
    jwt_verify,
)

# RFC 7523 §2.2: the one client_assertion_type this server knows.
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PRIVATE_KEY_JWT = "private_key_jwt"
# draft-ietf-oauth-rfc7523bis: the explicit type (RFC 8725 §3.11) a client assertion SHOULD carry.
CLIENT_ASSERTION_TYP = "client-authentication+jwt"


def client_assertion_presented(request) -> bool:
    """Whether the request tries to authenticate with a client assertion (either parameter present)."""
    return getattr(request, "client_assertion", None) is not None or (
        getattr(request, "client_assertion_type", None) is not None
    )


def client_assertion_subject(request) -> str:
    """The client ID a client assertion claims to come from (its ``sub``, which must equal its
    ``iss``; a ``client_id`` sent beside it must match too: RFC 7523 §3 items 1-2). Unverified:
    only to find the client whose keys verify it. Raises AssertionInvalid."""
    if getattr(request, "client_assertion_type", None) != CLIENT_ASSERTION_TYPE:
        raise AssertionInvalid(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
    assertion = getattr(request, "client_assertion", None)
    if not isinstance(assertion, str) or not assertion:
        raise AssertionInvalid("client_assertion is missing")
    claims = jwt_unverified_claims(assertion)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or claims.get("iss") != subject:
        raise AssertionInvalid("The client assertion's iss and sub must both be the client ID")
    sent_client_id = getattr(request, "client_id", None)
    if sent_client_id is not None and sent_client_id != subject:
        raise AssertionInvalid("client_id does not match the client assertion's sub")
    return subject


def client_assertion_typed(header: dict) -> bool:
    """Whether a JWT's header lets it be a client assertion: no ``typ``, ``JWT`` or
    ``client-authentication+jwt`` (RFC 7515 §4.1.9: case-insensitive, ``application/`` optional)."""
    if "typ" not in header:
        return True
    typ = header["typ"]
    return isinstance(typ, str) and typ.lower().removeprefix("application/") in ("jwt", CLIENT_ASSERTION_TYP)


def client_assertion_audiences(*, issuer: str, endpoint_uri: str) -> list[str]:
    """What a client assertion's ``aud`` may be: this server's issuer (draft-ietf-oauth-rfc7523bis),
    its token endpoint (OpenID Connect Core §9), or the endpoint the assertion is sent to; an array of
    them, nothing else (``jwt_verify``)."""
    token_endpoint = issuer + reverse("oauth2_provider:token")
    endpoint = endpoint_uri.split("?", 1)[0]
    return list(dict.fromkeys([issuer, token_endpoint, endpoint]))


def client_assertion_verify(
    *, client, assertion: str, audiences: list[str], clock: Callable[[], float] = time.time
) -> None:
    """Raise AssertionInvalid unless ``assertion`` authenticates ``client``: the client registered
    ``private_key_jwt``, one of its keys signed it, ``iss`` = ``sub`` = its client ID, ``aud`` one of
    ``audiences``, ``exp`` close, and its ``jti`` never seen before (RFC 7523 §3)."""
    if client.token_endpoint_auth_method != PRIVATE_KEY_JWT:
        # RFC 7591 §2: a client authenticates only with the method it registered.
        raise AssertionInvalid("This client did not register private_key_jwt")
    if not client_assertion_typed(jwt_header(assertion)):
        # RFC 8725 §3.11: a JWT of another type (an ID-JAG, an access token) is not a client's
        # authentication, whoever signed it.
        raise AssertionInvalid(f"The client assertion's typ must be absent, JWT or {CLIENT_ASSERTION_TYP}")
    version = client.updated.isoformat() if getattr(client, "updated", None) else ""
    keys = KeySource(jwks=client.jwks or {}, jwks_uri=client.jwks_uri, version=version)
    claims = jwt_verify(assertion, keys=keys, issuer=client.client_id, audiences=audiences, clock=clock)
    if claims["sub"] != client.client_id:
        raise AssertionInvalid("The client assertion's sub must be the client ID")
    jti_use_once(issuer=f"client:{client.client_id}", claims=claims, clock=clock)
