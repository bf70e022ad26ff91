"""Enterprise-managed authorization (MCP extension ``io.modelcontextprotocol/enterprise-managed-authorization``,
SEP-990, "Cross App Access"): a company's identity provider decides who may use this server.

Both roles, so one site can serve either:

- **Resource authorization server** (:func:`identity_assertion_accept`): a client presents an Identity
  Assertion JWT Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant) from a
  :class:`~authserver.models.TrustedIdentityProvider` with the RFC 7523 jwt-bearer grant and gets an
  access token for the person it names (whom that is: ``authserver.identity_links``): no consent
  page, no refresh token (the IdP decides again on every new grant).
- **Identity provider** (:func:`id_jag_issue`): a client of this server exchanges an ID token this
  server issued to it (RFC 8693 token exchange) for an ID-JAG for another authorization server an
  operator listed (:class:`~authserver.models.AssertionAudience`).
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from authserver.claims import released_claims, user_claims
from authserver.client_keys import (
    LEEWAY_SECONDS,
    AssertionInvalid,
    KeySource,
    jti_use_once,
    jwt_claim_types_check,
    jwt_header,
    jwt_unverified_claims,
    jwt_verify,
    numeric_date,
)
from authserver.identity_links import identity_user
from authserver.models import AssertionAudience, TrustedIdentityProvider
from authserver.resources import resources_named

# draft-ietf-oauth-identity-assertion-authz-grant §3 / §4: the JWT type, token type and grant profile.
ID_JAG_TYP = "oauth-id-jag+jwt"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_JAG_GRANT_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
# How long an ID-JAG this server issues lives (the draft: short-lived, minutes).
ID_JAG_LIFETIME_SECONDS = 300


class ScopeRefused(AssertionInvalid):
    """Nothing is left of the scopes once the request, the grant and the client's limit are intersected."""


class TargetRefused(AssertionInvalid):
    """RFC 8693 §2.2.2 ``invalid_target``: the audience or resource asked for is not one this client may
    get an ID-JAG for."""


ISSUER_REFUSED = "This client may not present assertions of that issuer"


@dataclass(frozen=True)
class AssertedGrant:
    user: object
    scopes: list[str]
    resources: list[str]
    provider: TrustedIdentityProvider


def _typ_is_id_jag(header: dict) -> bool:
    # RFC 8725 §3.11 explicit typing; RFC 7515 §4.1.9 lets "application/" be left out.
    typ = header.get("typ")
    return isinstance(typ, str) and typ.lower().removeprefix("application/") == ID_JAG_TYP


def identity_assertion_accept(
    *,
    assertion: str,
    client,
    issuer: str,
    known_resources: list[str],
    requested_resources: list[str],
    requested_scopes: list[str],
    available_scopes: list[str],
    clock: Callable[[], float] = time.time,
) -> AssertedGrant:
    """What an ID-JAG presented by the authenticated ``client`` grants, or AssertionInvalid saying why.

    The ext-auth processing rules and RFC 7523 §3: ``typ`` is ``oauth-id-jag+jwt``; ``iss`` is a
    trusted, enabled IdP that lets ``client`` present its grants; the IdP's key signed it; ``aud`` is
    this server's issuer; ``client_id`` is the authenticated client; ``resource`` is one of this
    server's protected resources (and covers any ``resource`` parameter sent); ``exp`` / ``iat`` /
    ``nbf`` hold with small skew; ``jti`` is used once. The scopes are those requested (all the
    grant carries when none are) that the grant carries and the client may have.
    """
    header = jwt_header(assertion)
    if not _typ_is_id_jag(header):
        raise AssertionInvalid(f"The assertion's typ must be {ID_JAG_TYP}")
    unverified = jwt_unverified_claims(assertion)
    # RFC 7519 §4.1: the claims' types before any is looked up (an iss with a NUL is a 500 on PostgreSQL).
    jwt_claim_types_check(unverified)
    unverified_issuer = unverified.get("iss")
    provider = (
        TrustedIdentityProvider.objects.filter(issuer=unverified_issuer, is_active=True).first()
        if isinstance(unverified_issuer, str)
        else None
    )
    # CWE-204: an issuer nobody trusts and one this client may not present are one answer, so a client
    # (anyone may register one) cannot list which IdPs this server trusts; the audit trail says which.
    if provider is None:
        raise AssertionInvalid(ISSUER_REFUSED, detail="the issuer is not a trusted identity provider")
    if not provider.clients.filter(pk=client.pk).exists():
        raise AssertionInvalid(ISSUER_REFUSED, detail=f"the client is not listed on {provider.name}")
    keys = KeySource(jwks=provider.jwks or {}, jwks_uri=provider.jwks_uri, version=provider.updated.isoformat())
    claims = jwt_verify(assertion, keys=keys, issuer=provider.issuer, audiences=[issuer], clock=clock)
    # RFC 8693 §4.3 client_id: a string, this one (any other JSON value is not equal to it).
    if claims.get("client_id") != client.client_id:
        raise AssertionInvalid("The assertion's client_id is not the authenticated client")
    iat = claims.get("iat")
    # RFC 7519 §4.1.6: a NumericDate (never `true`, which Python takes for 1; never NaN).
    if not numeric_date(iat) or iat > clock() + LEEWAY_SECONDS:
        raise AssertionInvalid("The assertion needs an iat that is not in the future")
    resources = _resources_bound(claims.get("resource"), known=known_resources, requested=requested_resources)
    scopes = _scopes_granted(claims.get("scope"), requested=requested_scopes, available=available_scopes)
    jti_use_once(issuer=provider.issuer, claims=claims, clock=clock)
    user = identity_user(provider=provider, claims=claims)
    return AssertedGrant(user=user, scopes=scopes, resources=resources, provider=provider)


def _resources_bound(claimed, *, known: list[str], requested: list[str]) -> list[str]:
    # RFC 8707 §2 and ext-auth: the token is for the resource the IdP named, not the one the client asks for.
    if not isinstance(claimed, str) or not claimed:
        raise AssertionInvalid("The assertion names no resource")
    try:
        bound = resources_named(claimed, known=known)
        for asked in requested:
            bound = resources_named(asked, known=bound)
    except ValueError:
        # RFC 8707 §2: an absolute URI. One Python cannot split (`https://[x`) names none of ours.
        bound = []
    if not bound:
        raise AssertionInvalid("The assertion's resource is not this server's (or not the one requested)")
    return bound


def _scopes_granted(claimed, *, requested: list[str], available: list[str]) -> list[str]:
    if claimed is not None and not isinstance(claimed, str):
        # RFC 8693 §4.2 / RFC 6749 §3.3: scope is one space-delimited string; anything else is a malformed grant.
        raise AssertionInvalid("The assertion's scope must be a string of space-separated scopes")
    carried = claimed.split() if claimed else []
    wanted = requested or carried
    granted = [scope for scope in dict.fromkeys(wanted) if scope in carried and scope in available]
    if not granted:
        raise ScopeRefused("None of the scopes asked for is both in the assertion and allowed to this client")
    return granted


# --- The identity provider side -----------------------------------------------------------------


@dataclass(frozen=True)
class IdTokenSubject:
    """Whom a live ID token names, and the scopes of the grant it came with."""

    user: object
    scopes: list[str]


def id_token_subject(
    *, id_token: str, client, issuer: str, public_key, clock: Callable[[], float] = time.time
) -> IdTokenSubject:
    """The person an ID token names, if this server issued it to ``client`` and it is still live
    (signature, ``iss``, ``aud``, ``exp``, DOT still holding it, and the access token it was issued
    with still live: a refresh issues the app a new pair), with the scopes that access token has:
    what the person granted the client."""
    try:
        claims = jwt.decode(
            id_token,
            key=public_key,
            algorithms=["RS256"],
            audience=client.client_id,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp", "jti"]},
        )
    except jwt.PyJWTError as error:
        raise AssertionInvalid(
            f"The subject token is not a live ID token this server issued to you ({error})"
        ) from None
    access_token = _id_token_access_token(jti=claims["jti"], client=client)
    # RFC 6749 §4.1.2, RFC 9700 §4.14.2, RFC 7009 §2.1: an ID token lives only as long as the access
    # token it was issued with (DOT's AccessToken.id_token). Whatever ends that token (a replayed
    # code, a reused refresh token, a revocation, a rotation) ends the ID token's use here too.
    if access_token is None or access_token.is_expired() or access_token.id_token.is_expired():
        raise AssertionInvalid("The subject token has expired or was revoked")
    user = access_token.id_token.user
    if user is None or not user.is_active:
        raise AssertionInvalid("The subject token has expired or was revoked")
    return IdTokenSubject(user=user, scopes=access_token.scope.split())


def _id_token_access_token(*, jti, client):
    """The access token DOT issued with the ID token ``jti`` to ``client``, or None. The access token's
    scopes are what the person granted: DOT stores the ID token's own ``scope`` from the token
    request's ``scope`` parameter, which the client chooses."""
    from oauth2_provider.models import get_access_token_model

    try:
        jti = uuid.UUID(jti)  # DOT's jti is a UUID; any other value names no ID token (not a 500)
    except (TypeError, ValueError, AttributeError):
        return None
    return (
        get_access_token_model()
        .objects.select_related("id_token__user")
        .filter(id_token__jti=jti, id_token__application=client, application=client)
        .first()
    )


def assertion_audience(*, client, audience: str, resource: str | None) -> AssertionAudience:
    """The listed audience ``client`` asks an ID-JAG for (by the other server's issuer, and its resource
    when more than one is listed), or TargetRefused."""
    if "\x00" in audience or "\x00" in (resource or ""):
        # RFC 8693 §2.1: none listed holds a NUL (Django's forms refuse one); PostgreSQL refuses it in a query.
        raise TargetRefused("This client may not get assertions for that audience and resource")
    listed = AssertionAudience.objects.filter(client=client, audience=audience, is_active=True)
    if resource:
        listed = listed.filter(resource=resource)
    found = list(listed[:2])
    if len(found) != 1:
        raise TargetRefused("This client may not get assertions for that audience and resource")
    return found[0]


def id_jag_issue(
    *,
    user,
    granted_scopes: list[str],
    target: AssertionAudience,
    issuer: str,
    requested_scopes: list[str],
    signing_key,
    key_id: str,
    clock: Callable[[], float] = time.time,
) -> tuple[str, list[str]]:
    """An ID-JAG for ``user`` at ``target`` (draft-ietf-oauth-identity-assertion-authz-grant §3), signed
    with this server's OpenID Connect key, and the scopes it carries (ScopeRefused when none would be).
    ``granted_scopes``: what the person granted the client in the grant of the ID token exchanged
    (:class:`IdTokenSubject`), which decides what it says about them."""
    scopes = _id_jag_scopes(requested=requested_scopes, allowed=target.allowed_scope.split())
    # OpenID Connect Core §5.4 (scope → claims), as in the ID token and at userinfo: an ID-JAG the
    # client reads says no more about the person than they let this client know.
    claims = released_claims(user_claims(user), granted_scopes)
    if "email_verified" in claims:
        # OpenID Connect Core §5.1 / §5.7: this site does not verify addresses, so it never asserts one.
        claims["email_verified"] = False
    now = int(clock())
    claims.update(
        {
            "iss": issuer,
            "sub": str(user.pk),
            "aud": target.audience,
            "client_id": target.remote_client_id,
            "resource": target.resource,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + ID_JAG_LIFETIME_SECONDS,
            "scope": " ".join(scopes),
        }
    )
    headers = {"typ": ID_JAG_TYP, "kid": key_id}
    return jwt.encode(claims, signing_key, algorithm="RS256", headers=headers), scopes


def _id_jag_scopes(*, requested: list[str], allowed: list[str]) -> list[str]:
    # RFC 8693 §2.1 / RFC 6749 §3.3: the scopes asked for that the operator allowed for this audience
    # (all of those when none are asked for). An empty list allows none: an ID-JAG never carries a
    # scope nobody approved, nor goes without one (leaving it to the other server's default).
    requested = [scope for scope in requested if scope]  # `scope=` (empty) asks for none
    carried = [scope for scope in dict.fromkeys(requested) if scope in allowed] if requested else allowed
    if not carried:
        raise ScopeRefused("None of the scopes asked for is allowed in assertions for this audience")
    return list(dict.fromkeys(carried))
