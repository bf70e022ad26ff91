"""Whom a trusted IdP's identity assertion acts as here (:func:`identity_user`): the account its
subject was linked to, else one its verified address names, else a new one, or no usable account.

OpenID Connect Core §5.7: ``iss`` + ``sub`` is the only stable identifier. An address identifies
someone only when the IdP says it verified it (``email_verified: true``, §5.1) and an operator trusts it
to (``TrustedIdentityProvider.trust_verified_email``); it is compared one way on every database
(CWE-178) and never moves an account another subject is linked to. Text from claims is held to the
display-text rule; a subject is never cut (§2); every "no usable account" case is one answer (CWE-204).
"""

import logging
import string

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from authserver.accounts import account_create
from authserver.client_keys import AssertionInvalid
from authserver.display_text import display_text_problem
from authserver.models import IdentityLink, TrustedIdentityProvider

logger = logging.getLogger(__name__)

# OpenID Connect Core §2: ``sub`` is at most 255 ASCII characters and case-sensitive (compared exactly).
SUBJECT_MAX_LENGTH = 255
# RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle brackets, so an address at most 254.
EMAIL_MAX_LENGTH = 254
# A username account_create keeps whole (it cuts longer ones): a longer address is not made a username.
USERNAME_FROM_EMAIL_MAX_LENGTH = 140
# CWE-178: addresses are compared with ASCII letters lowered and every other character as it is.
# str.lower() would make "K" (U+212A KELVIN SIGN) a "k", PostgreSQL's UPPER() makes "ı" an "I" and "ſ" an "S".
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
NO_USABLE_ACCOUNT = "No usable account here for this person of {provider}"


def identity_user(*, provider: TrustedIdentityProvider, claims: dict):
    """The account the IdP's subject is here: linked before; else matched by an address the IdP verified,
    when an operator trusts it to; else created when the IdP may create accounts; else AssertionInvalid.
    Every case of "no account to act as" gets one answer; the log says which it was."""
    subject = _asserted_subject(claims)
    link = IdentityLink.objects.filter(provider=provider, subject=subject).select_related("user").first()
    user = link.user if link else _identity_link_new(provider=provider, subject=subject, claims=claims)
    if not user.is_active:
        raise _no_usable_account(provider=provider, subject=subject, reason=f"{user.get_username()!r} is deactivated")
    return user


def _no_usable_account(*, provider: TrustedIdentityProvider, subject: str, reason: str) -> AssertionInvalid:
    # CWE-204 (observable response discrepancy): the client learns that there is no account to act as,
    # never whether the person has one here that is deactivated, shared or someone else's; the log says.
    logger.warning("ID-JAG of %s for subject %r refused, no usable account: %s", provider.name, subject, reason)
    return AssertionInvalid(NO_USABLE_ACCOUNT.format(provider=provider.name), detail=reason)


def _asserted_subject(claims: dict) -> str:
    subject = claims.get("sub")
    # OpenID Connect Core §2: at most 255 ASCII characters. A longer one is refused, never cut: two
    # people whose subjects share the first 255 characters would be one account here.
    if (
        not isinstance(subject, str)
        or not 0 < len(subject) <= SUBJECT_MAX_LENGTH
        or not (subject.isascii() and subject.isprintable())
    ):
        raise AssertionInvalid("The assertion's sub must be 1 to 255 printable ASCII characters")
    return subject


def _asserted_email(*, provider: TrustedIdentityProvider, claims: dict) -> str:
    """The address the IdP says it verified, when an operator trusts it to ("" otherwise: the email
    claim is then not used at all); AssertionInvalid when that is not an address to keep."""
    # OpenID Connect Core §5.1: email_verified is a JSON boolean; only true says the address was
    # verified ("true", 1 or an object do not).
    if not provider.trust_verified_email or claims.get("email_verified") is not True:
        return ""
    email = claims.get("email")
    if email is None or email == "":
        return ""
    # RFC 5321 §4.5.3.1.3 (length), the display-text rule (no controls, bidi overrides or invisible
    # characters: one address must not pass for another) and Django's address syntax.
    if not isinstance(email, str) or len(email) > EMAIL_MAX_LENGTH or display_text_problem(email):
        raise AssertionInvalid("The assertion's verified email is not an address this server keeps")
    try:
        validate_email(email)
    except ValidationError:
        raise AssertionInvalid("The assertion's verified email is not an address this server keeps") from None
    return email


def _asserted_name(claims: dict) -> str:
    # The display-text rule (authserver.display_text): a name holding controls, bidi overrides or
    # invisible characters does not become someone's name here, nor is it cleaned into one the IdP did not send.
    name = claims.get("name")
    return name.strip() if isinstance(name, str) and not display_text_problem(name) else ""


def _identity_link_new(*, provider: TrustedIdentityProvider, subject: str, claims: dict):
    """Link ``subject`` to the account its verified address names, or to a new account."""
    email = _asserted_email(provider=provider, claims=claims)
    user = None
    if provider.match_by == TrustedIdentityProvider.MatchBy.EMAIL:
        # OpenID Connect Core §5.7: an address identifies no one unless the IdP verified it and is trusted to.
        if not provider.trust_verified_email:
            raise AssertionInvalid(f"{provider.name} matches people by email, yet its verified addresses are untrusted")
        if not email:
            raise AssertionInvalid(f"{provider.name} matches people by email, and the assertion has no verified one")
        user = _account_with_email(provider=provider, subject=subject, email=email)
    if user is None and not provider.create_users:
        raise _no_usable_account(provider=provider, subject=subject, reason="no account, and it may not create any")
    created = user is None
    try:
        with transaction.atomic():
            if created:
                username = email if email and len(email) <= USERNAME_FROM_EMAIL_MAX_LENGTH else ""
                username = username or f"{slugify(provider.name) or 'idp'}-{slugify(subject) or 'person'}"
                user = account_create(username=username, email=email, name=_asserted_name(claims))
            else:
                _account_unlinked_lock(provider=provider, subject=subject, user=user)
            IdentityLink.objects.create(provider=provider, subject=subject, user=user, created_account=created)
    except ValueError as problem:  # account_create: the address cannot be this account's
        raise _no_usable_account(provider=provider, subject=subject, reason=str(problem)) from None
    except IntegrityError:  # linked meanwhile by another worker: that link wins
        link = IdentityLink.objects.select_related("user").filter(provider=provider, subject=subject).first()
        if link is None:
            raced = "another worker took the username meanwhile"
            raise _no_usable_account(provider=provider, subject=subject, reason=raced) from None
        return link.user
    return user


def _account_with_email(*, provider: TrustedIdentityProvider, subject: str, email: str):
    """The one active account with ``email``, or None when no account has it."""
    user_model = get_user_model()
    email_field = user_model.get_email_field_name()
    # CWE-178: the database only narrows (UPPER() on PostgreSQL, ASCII-only LIKE on SQLite); the
    # comparison is the one rule above, so both give one answer and "alıce" is not alice.
    wanted = email.translate(_ASCII_LOWER)
    candidates = user_model._default_manager.filter(**{f"{email_field}__iexact": email})
    found = [user for user in candidates if (getattr(user, email_field) or "").translate(_ASCII_LOWER) == wanted]
    if len(found) > 1:  # never the first of several: whose it is, no one can say
        raise _no_usable_account(provider=provider, subject=subject, reason=f"{len(found)} accounts have the address")
    if found and not found[0].is_active:
        deactivated = f"{found[0].get_username()!r} is deactivated"
        raise _no_usable_account(provider=provider, subject=subject, reason=deactivated)
    return found[0] if found else None


def _account_unlinked_lock(*, provider: TrustedIdentityProvider, subject: str, user) -> None:
    """Lock ``user``'s row until the link is made, and refuse it if any IdP's subject speaks for it."""
    list(get_user_model()._default_manager.select_for_update().filter(pk=user.pk).values_list("pk"))
    linked = IdentityLink.objects.filter(user=user).select_related("provider").first()
    # OpenID Connect Core §5.7: iss and sub together are the only stable identifier. An address never
    # moves an account from the subject it is linked to (of this IdP or any other, created by it or
    # matched) to another: another IdP's people are not this one's, and an address this IdP gives
    # someone new is not their predecessor's account. An operator unlinks first if it is the same person.
    if linked is not None:
        made = " (which created it)" if linked.created_account else ""
        reason = f"{user.get_username()!r} is linked to {linked.provider.name}'s subject {linked.subject!r}{made}"
        raise _no_usable_account(provider=provider, subject=subject, reason=reason)
