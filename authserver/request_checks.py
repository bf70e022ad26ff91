"""Authorization and token requests held to the syntax oauthlib leaves unchecked, before the person
is asked anything and at the token endpoint.

- PKCE (RFC 7636): oauthlib checks that a challenge was sent and that the verifier matches it, but
  takes any string for either, and defaults a missing ``code_challenge_method`` to ``plain``, which
  django-oauth-toolkit refuses only when it stores the code: after the person clicked Allow.
- ``state`` and ``nonce``, which are echoed or stored as sent: no control characters (RFC 6749
  Appendix A.5: ``state`` is printable; a NUL in ``nonce`` could not even be stored in PostgreSQL).

These checks run as oauthlib custom validators (``authserver.dot.server.OAuthServer``), so a bad
request is answered before the consent page (RFC 6749 §4.1.2.1) with the client's ``state``.
"""

import re

from oauthlib.oauth2.rfc6749 import errors

# RFC 7636 §4.1: code-verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 §4.2: an S256 challenge is BASE64URL(SHA256(verifier)) without padding: 43 characters.
S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
# Parameters that must not repeat (RFC 6749 §3.1 / §3.2); oauthlib checks only its own list.
SINGLE_AUTHORIZATION_PARAMETERS = ("code_challenge", "code_challenge_method")
SINGLE_TOKEN_PARAMETERS = ("code", "code_verifier")


def _refuse_duplicates(request, names) -> None:
    repeated = [name for name in names if name in request.duplicate_params]
    if repeated:
        raise errors.InvalidRequestError(description=f"Duplicate {repeated[0]} parameter.", request=request)


def authorization_request_check(request) -> dict:
    """oauthlib ``pre_auth`` validator: the authorization request's PKCE parameters (RFC 7636 §4.3),
    ``state`` and ``nonce``."""
    _refuse_duplicates(request, SINGLE_AUTHORIZATION_PARAMETERS)
    for name in ("state", "nonce"):
        value = getattr(request, name, None) or ""
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            if name == "state":
                request.state = None  # not echoed back either
            raise errors.InvalidRequestError(
                description=f"{name} must not contain control characters.", request=request
            )
    if request.code_challenge is None:
        # RFC 7636 §4.4.1 / OAuth 2.1 §4.1.1: every client sends a challenge.
        raise errors.MissingCodeChallengeError(request=request)
    if request.code_challenge_method != "S256":
        # RFC 9700 §2.1.1: S256, never plain (which is also what a missing method means, RFC 7636 §4.3).
        raise errors.InvalidRequestError(description='code_challenge_method must be "S256".', request=request)
    if not S256_CHALLENGE.fullmatch(request.code_challenge):
        raise errors.InvalidRequestError(
            description="code_challenge must be the 43-character base64url SHA-256 of the code verifier.",
            request=request,
        )
    return {}


def token_request_check(request) -> None:
    """oauthlib ``pre_token`` validator: the code verifier's syntax (RFC 7636 §4.1), checked before
    the code is looked up; whether it matches the challenge is oauthlib's check (RFC 7636 §4.6)."""
    _refuse_duplicates(request, SINGLE_TOKEN_PARAMETERS)
    verifier = request.code_verifier
    if verifier is not None and not CODE_VERIFIER.fullmatch(verifier):
        raise errors.InvalidRequestError(
            description="code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'.",
            request=request,
        )


def resources_requested(request) -> list[str]:
    """Every ``resource`` parameter of a token request (RFC 8707 §2 allows several; oauthlib keeps the last)."""
    return [value for key, value in (getattr(request, "decoded_body", None) or []) if key == "resource"]


def resource_bind(request) -> None:
    """oauthlib ``post_token`` validator of the client-credentials grant (no person, no authorization
    request): RFC 8707 §2, the token is bound to this server's
    protected resources that the ``resource`` parameters name (all of them when none is sent, so
    no token is ever valid "anywhere"); naming anything else is ``invalid_target``."""
    from oauth2_provider.settings import oauth2_settings

    from authserver.resources import known_resources, resources_named

    known = known_resources(oauth2_settings.oidc_issuer(request))
    requested = resources_requested(request)
    bound: list[str] = []
    for resource in requested:
        covered = resources_named(resource, known=known)
        if not covered:
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description=f"The resource {resource!r} is not one this server issues tokens for.",
                status_code=400,
                request=request,
            )
        bound.extend(candidate for candidate in covered if candidate not in bound)
    request.resource = bound or known
