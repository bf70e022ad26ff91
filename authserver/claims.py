"""Identity claims about a user, and which scope releases each one.

One mapping serves OpenID Connect (ID token, userinfo) and the MCP ``whoami`` tool, so a person
sees the same rule everywhere: ``profile`` claims only with ``profile``, ``email`` only with ``email``.
"""

from collections.abc import Iterable

from oauth2_provider.oauth2_validators import OAuth2Validator

# OpenID Connect Core §5.4 (scope → claims), plus the Django username under `profile`.
CLAIM_SCOPES: dict[str, str] = {**OAuth2Validator.oidc_claim_scope, "username": "profile"}


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


def released_claims(claims: dict, scopes: Iterable[str]) -> dict:
    """Of ``claims`` (:func:`user_claims`), those ``scopes`` release. ``sub`` is always released: it
    names whom the token is for."""
    granted = set(scopes)
    return {key: value for key, value in claims.items() if key == "sub" or CLAIM_SCOPES.get(key) in granted}
