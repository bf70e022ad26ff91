"""Identity claims about a user, and which scope releases each one.

One mapping serves OpenID Connect (ID token, userinfo), the MCP ``whoami`` tool and ID-JAGs, so a
person sees the same rule everywhere: ``profile`` claims only with ``profile``, ``email`` only with
``email``, and a claim that carries the email address (the username of a site whose login is the
email, a name that falls back to it) only with ``email`` too.
"""

import re
from collections.abc import Iterable

from oauth2_provider.oauth2_validators import OAuth2Validator

# OpenID Connect Core §5.4 (scope → claims), plus the Django username under `profile`.
CLAIM_SCOPES: dict[str, str] = {**OAuth2Validator.oidc_claim_scope, "username": "profile"}
EMAIL_SCOPE = "email"
# Something that reads as an email address (RFC 5322 §3.4.1 addr-spec, loosely: local@domain.tld).
EMAIL_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


def user_claims(user) -> dict:
    """Every claim this site can make about ``user`` (OpenID Connect Core §5.1 names)."""
    # Any user model: the names and the address are read where the model has them (an email login
    # model may have no first_name; its email field is EMAIL_FIELD).
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    claims = {
        "sub": str(user.pk),
        "username": user.get_username(),
        "preferred_username": user.get_username(),
        "name": full_name or user.get_username(),
        "given_name": getattr(user, "first_name", ""),
        "family_name": getattr(user, "last_name", ""),
        "email": getattr(user, user.get_email_field_name(), ""),
        # Django does not verify addresses; say so rather than imply it.
        "email_verified": False,
    }
    return {key: value for key, value in claims.items() if value not in ("", None)}


def claim_scope(claims: dict, key: str) -> str | None:
    """The scope that releases ``claims[key]`` (None: no scope does)."""
    value = claims[key]
    if key != "sub" and isinstance(value, str) and email_carried(value, email=claims.get("email", "")):
        # OpenID Connect Core §5.4: the `email` scope releases the email address, whatever the claim
        # that carries it: where people sign in with their address, `username`, `preferred_username`
        # and `name` are that address, and `profile` alone must not give it away.
        return EMAIL_SCOPE
    return CLAIM_SCOPES.get(key)


def email_carried(value: str, *, email: str) -> bool:
    """Whether ``value`` contains the address ``email`` (in any case), or anything that reads as an
    email address (a username that is someone's address, whatever the model calls its email field)."""
    return bool((email and email.casefold() in value.casefold()) or EMAIL_ADDRESS.search(value))


def released_claims(claims: dict, scopes: Iterable[str]) -> dict:
    """Of ``claims`` (:func:`user_claims`), those ``scopes`` release (:func:`claim_scope`). ``sub`` is
    always released: it names whom the token is for."""
    granted = set(scopes)
    return {key: value for key, value in claims.items() if key == "sub" or claim_scope(claims, key) in granted}
