"""Signed JWTs from others: a client's ``private_key_jwt`` assertion (RFC 7523 §2.2) and a company
IdP's identity assertion grant (RFC 7523 §2.1), checked against the signer's published keys.

One set of rules for both (RFC 8725, JWT Best Current Practices): asymmetric signatures only
(``ALGORITHMS``; ``none`` and HMAC are refused, so a public key can never be used as an HMAC secret,
§2.1 / §3.1), the key chosen by ``kid`` from the signer's own JWK Set, the key's type and ``alg``
matching the header's, ``exp`` required and close, ``jti`` used once across every worker (a row of
:class:`~authserver.models.UsedAssertion`, :func:`jti_use_once`, kept until the assertion can no
longer be accepted: never in the cache, which may forget it).

Every registered claim is of the JSON type RFC 7519 §4.1 gives it, checked before PyJWT reads it
(:func:`jwt_claim_types_check`): PyJWT takes ``"exp": "1999999999"`` for a date, and Python takes
``true`` for the number 1. ``aud`` names this server only: a string, or an array each of whose
values is one of the audiences the caller accepts (an array naming another server too is an
assertion that could be replayed there, draft-ietf-oauth-rfc7523bis).

A refusal says why in ``str(error)``, which the caller is told; what an operator needs besides
(why a key fetch failed, what a fetched key set held) is in ``error.reason`` and the log, never in
the answer: it may name an internal address the signer's URI resolved to.

Keys come inline (a JWK Set an operator pasted) or from a ``jwks_uri``, fetched with the same
SSRF protections as Client ID Metadata Documents (django-oauth-toolkit's ``CIMD_METADATA_FETCHER``:
https only, public addresses only, no redirects, bounded time and size), cached, and fetched again
once for a ``kid`` the cache does not know (the signer rotated its keys).
"""

import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, router, transaction
from django.utils import timezone
from oauth2_provider.cimd import CIMDError
from oauth2_provider.settings import oauth2_settings

from authserver.models import UsedAssertion

# RFC 8725 §3.1 / RFC 7518: the algorithms accepted for assertions; never `none`, never HMAC.
ALGORITHMS = ("RS256", "ES256", "EdDSA")
# Clock skew tolerated on exp / iat / nbf between this server and the signer.
LEEWAY_SECONDS = 30
# RFC 7523 §3 item 7: a jti is remembered this much longer than its assertion can be accepted, for
# workers whose clocks run a little behind the one that remembered it.
JTI_MARGIN_SECONDS = 2
# RFC 7519 §2 NumericDate: the dates this server reads (1970 to the end of year 9999, which datetime can hold).
NUMERIC_DATE_MAX = 253402300799
# RFC 7523 §3 item 4: "limit the amount of time" an assertion is valid: one that lives longer is refused.
MAX_LIFETIME_SECONDS = 600
JWKS_CACHE_SECONDS = 300
# A kid unknown even after a fresh fetch is not fetched again for this long (no fetch per request).
JWKS_REFETCH_SECONDS = 30
# All a caller is told when the signer's keys cannot be had: why is for operators (``reason``, the log).
KEYS_UNFETCHED = "The signer's keys could not be fetched"


logger = logging.getLogger(__name__)


class AssertionInvalid(Exception):
    """A JWT this server will not accept. ``str(error)`` says why, for the token endpoint's answer;
    ``reason`` is that and what only an operator may read (the audit trail, the log)."""

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.reason = f"{message}: {detail}" if detail else message


def jwks_problem(jwks) -> str | None:
    """What is wrong with a JWK Set an operator pasted, or None: it must be ``{"keys": [...]}`` of
    public asymmetric keys (a private or symmetric key pasted here would be a secret in the database)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        return 'A JWK Set is {"keys": [...]} with at least one key.'
    for key in jwks["keys"]:
        if not isinstance(key, dict):
            return "Each key is a JSON object."
        if key.get("kty") not in ("RSA", "EC", "OKP"):
            return "Keys must be RSA, EC or OKP public keys (no symmetric 'oct' keys)."
        if "d" in key:
            return "That is a private key: paste the public key only."
    try:
        jwt.PyJWKSet.from_dict(jwks)
    # PyJWKSetError ("no usable keys": an unknown curve, say) is no PyJWKError: every PyJWT error.
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        return f"The JWK Set cannot be read: {error}"
    return None


def key_source_problem(*, jwks, jwks_uri: str) -> str | None:
    """What is wrong with a signer's keys as an operator gave them: exactly one of a pasted JWK Set
    (:func:`jwks_problem`) or a JWKS URI."""
    if bool(jwks) == bool(jwks_uri):
        return "Give the public keys one way: a JWKS URI or a pasted JWK Set."
    return jwks_problem(jwks) if jwks else None


@dataclass(frozen=True)
class KeySource:
    """Where a signer's public keys are: an inline JWK Set, or a URI (cached under ``version``,
    which changes whenever an operator changes the signer, so a change takes effect at once)."""

    jwks: dict
    jwks_uri: str
    version: str = ""

    def key_set(self, *, fresh: bool = False) -> dict:
        if self.jwks:
            return self.jwks
        if not self.jwks_uri:
            raise AssertionInvalid("No keys are registered for the signer")
        digest = hashlib.sha256(f"{self.jwks_uri}\n{self.version}".encode()).hexdigest()[:32]
        cache_key = f"authserver:jwks:{digest}"
        if not fresh:
            cached = cache.get(cache_key)
            if cached is not None:
                return cached
        failed_key = f"authserver:jwks-failed:{digest}"
        if cache.get(failed_key):
            # A key server that failed is not asked again on every request (each fetch may take seconds).
            raise AssertionInvalid(KEYS_UNFETCHED, detail=f"{self.jwks_uri} failed under {JWKS_REFETCH_SECONDS} s ago")
        try:
            fetcher = oauth2_settings.CIMD_METADATA_FETCHER()
            document, _max_age = fetcher.fetch(self.jwks_uri)
        except CIMDError as error:
            cache.set(failed_key, 1, timeout=JWKS_REFETCH_SECONDS)
            raise self._unfetched(str(error)) from None
        problem = jwks_problem(document)
        if problem:
            raise self._unfetched(f"the key set there is unusable: {problem}")
        cache.set(cache_key, document, timeout=JWKS_CACHE_SECONDS)
        return document

    def _unfetched(self, why: str) -> AssertionInvalid:
        # Why a fetch failed (an address the URI resolved to, what the document held) is an operator's
        # to read, never an anonymous caller's: it would make this server an internal-DNS probe.
        logger.warning("The keys at %s could not be used: %s", self.jwks_uri, why)
        return AssertionInvalid(KEYS_UNFETCHED, detail=f"{self.jwks_uri}: {why}")

    def key_for(self, *, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key to check a signature by ``kid`` and ``alg`` with; a kid not found is looked for once
        more in a fresh copy of a fetched set (the signer rotated), at most every ``JWKS_REFETCH_SECONDS``."""
        key = _key_pick(self.key_set(), kid=kid, alg=alg)
        if key is None and self.jwks_uri and not self.jwks:
            refetch_key = "authserver:jwks-refetch:" + hashlib.sha256(self.jwks_uri.encode()).hexdigest()[:32]
            if cache.add(refetch_key, 1, timeout=JWKS_REFETCH_SECONDS):
                key = _key_pick(self.key_set(fresh=True), kid=kid, alg=alg)
        if key is None:
            raise AssertionInvalid("No key of the signer matches the assertion's kid and alg")
        return key


@functools.lru_cache(maxsize=256)
def _key_set_parsed(jwks_json: str) -> tuple[jwt.PyJWK, ...]:
    # Parsing a JWK into a key object costs more than checking a signature with it: once per key set.
    try:
        return tuple(jwt.PyJWKSet.from_dict(json.loads(jwks_json)).keys)
    except (jwt.PyJWTError, ValueError, TypeError):
        return ()


def _key_pick(jwks: dict, *, kid: str | None, alg: str) -> jwt.PyJWK | None:
    keys = _key_set_parsed(json.dumps(jwks, sort_keys=True))
    candidates = [key for key in keys if kid is None or key.key_id == kid]
    if kid is None and len(candidates) != 1:
        return None  # without a kid, only a set of exactly one key is unambiguous
    for key in candidates:
        # RFC 8725 §3.1: the key must be of the algorithm's type, and a key that names its alg, that
        # alg. PyJWT derives `algorithm_name` from `alg`, else from the key type and curve.
        if key.algorithm_name == alg:
            return key
    return None


def jwt_header(token: str) -> dict:
    """The unverified header of ``token``, for choosing the key; AssertionInvalid when unreadable or
    when its ``alg`` is not one of ``ALGORITHMS`` (``none``, HMAC: RFC 8725 §2.1)."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 16 * 1024:
        raise AssertionInvalid("The assertion is not a signed JWT")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AssertionInvalid("The assertion is not a signed JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise AssertionInvalid(f"The assertion's alg must be one of {', '.join(ALGORITHMS)}")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise AssertionInvalid("The assertion's kid must be a string")
    return header


def jwt_unverified_claims(token: str) -> dict:
    """The claims of ``token`` before its signature is checked: only to find who claims to sign it."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AssertionInvalid("The assertion's claims cannot be read") from None
    if not isinstance(claims, dict):
        raise AssertionInvalid("The assertion's claims cannot be read")
    return claims


def numeric_date(value) -> bool:
    """RFC 7519 §2: whether ``value`` is a NumericDate: a JSON number (not ``true``, which Python
    reads as 1; not NaN or Infinity, which Python's JSON reader accepts), from 1970 to year 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return (isinstance(value, int) or math.isfinite(value)) and 0 <= value <= NUMERIC_DATE_MAX


def jwt_claim_types_check(claims: dict) -> None:
    """AssertionInvalid unless every registered claim present is of its RFC 7519 §4.1 type, so no
    later comparison or arithmetic meets a string, a bool, NaN or a list where a date or a name is."""
    for name in ("iss", "sub", "jti"):
        # RFC 7519 §4.1.1 iss, §4.1.2 sub: a StringOrURI; §4.1.7 jti: a case-sensitive string.
        if name in claims and (not isinstance(claims[name], str) or not claims[name]):
            raise AssertionInvalid(f"The assertion's {name} must be a non-empty string")
        if name in claims and "\x00" in claims[name]:
            # No identifier here holds a NUL: PostgreSQL cannot even look one up (a 500, not a refusal).
            raise AssertionInvalid(f"The assertion's {name} holds a NUL character")
    if "aud" in claims:
        # RFC 7519 §4.1.3: one StringOrURI, or an array of them.
        aud = claims["aud"]
        values = aud if isinstance(aud, list) else [aud]
        if not values or not all(isinstance(value, str) and value for value in values):
            raise AssertionInvalid("The assertion's aud must be a string or an array of strings")
    for name in ("exp", "nbf", "iat"):
        # RFC 7519 §4.1.4 exp, §4.1.5 nbf, §4.1.6 iat: NumericDate values.
        if name in claims and not numeric_date(claims[name]):
            raise AssertionInvalid(f"The assertion's {name} must be a NumericDate (seconds since 1970, a number)")


def jwt_verify(
    token: str,
    *,
    keys: KeySource,
    issuer: str,
    audiences: list[str],
    clock: Callable[[], float] = time.time,
) -> dict:
    """The claims of ``token``, once their types (RFC 7519 §4.1), its signature (by ``keys``), ``iss``,
    ``aud`` (one of ``audiences``, or an array of nothing else), ``exp`` (required, within
    ``MAX_LIFETIME_SECONDS`` of now), ``iat`` and ``nbf`` hold, with ``LEEWAY_SECONDS`` of skew
    (RFC 7523 §3 items 1-5, 7)."""
    header = jwt_header(token)
    # Before PyJWT reads them (it takes a numeric string for a date): the types, then the signature.
    jwt_claim_types_check(jwt_unverified_claims(token))
    key = keys.key_for(kid=header.get("kid"), alg=header["alg"])
    now = clock()
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[header["alg"]],
            audience=audiences,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp"], "verify_iat": True},
            # PyJWT reads the clock itself; the injectable clock is checked below as well.
        )
    except jwt.ExpiredSignatureError:
        raise AssertionInvalid("The assertion has expired") from None
    except jwt.InvalidAudienceError:
        raise AssertionInvalid("The assertion's aud is not this authorization server") from None
    except jwt.InvalidIssuerError:
        raise AssertionInvalid("The assertion's iss is not its signer") from None
    except jwt.ImmatureSignatureError:
        raise AssertionInvalid("The assertion is not valid yet (nbf / iat in the future)") from None
    except jwt.MissingRequiredClaimError as error:
        raise AssertionInvalid(f"The assertion has no {error.claim} claim") from None
    except jwt.PyJWTError:
        raise AssertionInvalid("The assertion's signature does not verify") from None
    if isinstance(claims["aud"], list) and not set(claims["aud"]) <= set(audiences):
        # RFC 7523 §3 item 3 asks for our identity among the audiences; an array that names another
        # server as well is an assertion that server could replay here (draft-ietf-oauth-rfc7523bis).
        raise AssertionInvalid("The assertion's aud names an audience besides this authorization server")
    exp = claims["exp"]
    if exp + LEEWAY_SECONDS <= now:
        raise AssertionInvalid("The assertion has expired")
    if exp > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise AssertionInvalid(f"The assertion lives too long: exp may be at most {MAX_LIFETIME_SECONDS} s ahead")
    return claims


def jti_remembered_until(*, exp: float) -> datetime:
    """Until when a used ``jti`` is kept: a whole second, rounded up, past the last moment
    :func:`jwt_verify` accepts its assertion (``exp`` + ``LEEWAY_SECONDS``), plus ``JTI_MARGIN_SECONDS``."""
    return _moment(math.ceil(exp + LEEWAY_SECONDS) + JTI_MARGIN_SECONDS)


def _moment(seconds: float) -> datetime:
    # What a DateTimeField takes: aware with USE_TZ, else naive in the site's time zone (as Django does).
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def jti_use_once(*, issuer: str, claims: dict, clock: Callable[[], float] = time.time) -> None:
    """RFC 7523 §3 item 7, RFC 7519 §4.1.7: an assertion's ``jti`` is accepted once, by whichever
    worker inserts its row first (CWE-294). The row's unique digest decides: a second insert, here or
    in any worker, is an IntegrityError, whatever the cache holds or forgot.

    Called outside a transaction (as the token, revocation and introspection endpoints call it), the
    row is committed at once, so a request refused after this point (an ID-JAG for no usable account,
    say) has still used its jti up. Within a caller's transaction it is kept or rolled back with it."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise AssertionInvalid("The assertion has no jti")
    digest = hashlib.sha256(json.dumps([issuer, jti]).encode()).hexdigest()
    expires = jti_remembered_until(exp=claims["exp"])
    database = router.db_for_write(UsedAssertion)
    try:
        with transaction.atomic(using=database):  # a savepoint inside a caller's transaction
            UsedAssertion.objects.using(database).create(digest=digest, expires=expires)
        return
    except IntegrityError:
        pass
    # A row past its expiry (not pruned yet) was for an assertion that can no longer be accepted: a
    # later assertion with the same jti takes it over, once (the conditional UPDATE is atomic; a second
    # taker finds the new expiry). So acceptance never depends on when `manage.py prune` last ran.
    used_before = UsedAssertion.objects.using(database).filter(digest=digest, expires__lt=_moment(clock()))
    if not used_before.update(expires=expires):
        raise AssertionInvalid("The assertion was used before (jti replayed)")


def used_assertions_prune(*, now: datetime | None = None) -> int:
    """Forget the used ``jti`` values whose assertions can no longer be accepted; returns how many
    (``manage.py prune``)."""
    deleted, _by_model = UsedAssertion.objects.filter(expires__lt=now or timezone.now()).delete()
    return deleted
