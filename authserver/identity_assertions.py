"""Enterprise-managed authorization (MCP extension ``io.modelcontextprotocol/enterprise-managed-authorization``,
SEP-990, "Cross App Access"): a company's identity provider decides who may use this server.

Both roles, so one site can serve either:

- **Resource authorization server** (:func:`identity_assertion_accept`): a client presents an Identity
  Assertion JWT Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant) from a
  :class:`~authserver.models.TrustedIdentityProvider` with the RFC 7523 jwt-bearer grant and gets an
  access token for the person it names: no consent page, no refresh token (the IdP decides again
  on every new grant).
- **Identity provider** (:func:`id_jag_issue`): a client of this server exchanges an ID token this
  server issued to it (RFC 8693 token exchange) for an ID-JAG for another authorization server an
  operator listed (:class:`~authserver.models.AssertionAudience`).
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from authserver.accounts import account_create
from authserver.client_keys import (
    LEEWAY_SECONDS,
    AssertionInvalid,
    KeySource,
    jti_use_once,
    jwt_header,
    jwt_unverified_claims,
    jwt_verify,
)
from authserver.models import AssertionAudience, IdentityLink, TrustedIdentityProvider
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
    unverified_issuer = jwt_unverified_claims(assertion).get("iss")
    provider = (
        TrustedIdentityProvider.objects.filter(issuer=unverified_issuer, is_active=True).first()
        if isinstance(unverified_issuer, str)
        else None
    )
    if provider is None:
        raise AssertionInvalid("The assertion's issuer is not a trusted identity provider")
    if not provider.clients.filter(pk=client.pk).exists():
        raise AssertionInvalid(f"This client may not present assertions of {provider.name}")
    keys = KeySource(jwks=provider.jwks or {}, jwks_uri=provider.jwks_uri, version=provider.updated.isoformat())
    claims = jwt_verify(assertion, keys=keys, issuer=provider.issuer, audiences=[issuer], clock=clock)
    if claims.get("client_id") != client.client_id:
        raise AssertionInvalid("The assertion's client_id is not the authenticated client")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > clock() + LEEWAY_SECONDS:
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
    bound = resources_named(claimed, known=known)
    for asked in requested:
        bound = resources_named(asked, known=bound)
    if not bound:
        raise AssertionInvalid("The assertion's resource is not this server's (or not the one requested)")
    return bound


def _scopes_granted(claimed, *, requested: list[str], available: list[str]) -> list[str]:
    carried = claimed.split() if isinstance(claimed, str) else []
    wanted = requested or carried
    granted = [scope for scope in dict.fromkeys(wanted) if scope in carried and scope in available]
    if not granted:
        raise ScopeRefused("None of the scopes asked for is both in the assertion and allowed to this client")
    return granted


def identity_user(*, provider: TrustedIdentityProvider, claims: dict):
    """The account the IdP's subject is here: linked before; else matched by email when the IdP is
    trusted for it; else created when the IdP may create accounts; else AssertionInvalid."""
    subject = claims["sub"][:255]
    link = IdentityLink.objects.filter(provider=provider, subject=subject).select_related("user").first()
    user = link.user if link else None
    if user is None:
        user_model = get_user_model()
        email = claims.get("email") if isinstance(claims.get("email"), str) else ""
        if provider.match_by == TrustedIdentityProvider.MatchBy.EMAIL:
            if not email:
                raise AssertionInvalid(f"{provider.name} matches people by email, and the assertion has none")
            email_field = user_model.get_email_field_name()
            user = user_model._default_manager.filter(**{f"{email_field}__iexact": email}).first()
        if user is None and not provider.create_users:
            raise AssertionInvalid(f"No account here for this person of {provider.name}")
        with transaction.atomic():
            if user is None:
                username = email or f"{slugify(provider.name) or 'idp'}-{slugify(subject) or 'person'}"
                user = account_create(username=username, email=email, name=str(claims.get("name") or "")[:150])
            try:
                with transaction.atomic():
                    IdentityLink.objects.create(provider=provider, subject=subject, user=user)
            except IntegrityError:  # linked meanwhile by another worker: that link wins
                user = IdentityLink.objects.select_related("user").get(provider=provider, subject=subject).user
    if not user.is_active:
        raise AssertionInvalid("The person's account here is deactivated")
    return user


# --- The identity provider side -----------------------------------------------------------------


def id_token_subject(*, id_token: str, client, issuer: str, public_key, clock: Callable[[], float] = time.time):
    """The person an ID token names, if this server issued it to ``client`` and it is still live
    (signature, ``iss``, ``aud``, ``exp``, and DOT still holding it: one revoked or expired is gone)."""
    from oauth2_provider.models import get_id_token_model

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
    row = get_id_token_model().objects.select_related("user").filter(jti=claims["jti"], application=client).first()
    if row is None or row.user is None or not row.user.is_active or row.is_expired():
        raise AssertionInvalid("The subject token has expired or was revoked")
    return row.user


def assertion_audience(*, client, audience: str, resource: str | None) -> AssertionAudience:
    """The listed audience ``client`` asks an ID-JAG for (by the other server's issuer, and its resource
    when more than one is listed), or AssertionInvalid."""
    listed = AssertionAudience.objects.filter(client=client, audience=audience, is_active=True)
    if resource:
        listed = listed.filter(resource=resource)
    found = list(listed[:2])
    if len(found) != 1:
        raise AssertionInvalid("This client may not get assertions for that audience and resource")
    return found[0]


def id_jag_issue(
    *,
    user,
    target: AssertionAudience,
    issuer: str,
    requested_scopes: list[str],
    signing_key,
    key_id: str,
    clock: Callable[[], float] = time.time,
) -> tuple[str, list[str]]:
    """An ID-JAG for ``user`` at ``target`` (draft-ietf-oauth-identity-assertion-authz-grant §3), signed
    with this server's OpenID Connect key, and the scopes it carries."""
    allowed = target.allowed_scope.split()
    scopes = [scope for scope in dict.fromkeys(requested_scopes) if not allowed or scope in allowed]
    if not requested_scopes:
        scopes = allowed
    now = int(clock())
    claims = {
        "iss": issuer,
        "sub": str(user.pk),
        "aud": target.audience,
        "client_id": target.remote_client_id,
        "resource": target.resource,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + ID_JAG_LIFETIME_SECONDS,
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    email = getattr(user, user.get_email_field_name(), "")
    if email:
        claims["email"] = email
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    if name:
        claims["name"] = name
    headers = {"typ": ID_JAG_TYP, "kid": key_id}
    return jwt.encode(claims, signing_key, algorithm="RS256", headers=headers), scopes
