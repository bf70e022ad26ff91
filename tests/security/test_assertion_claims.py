"""Signed assertions read as their signers' data, not as trusted input (issue 30 items 9, 10, 12, 13):
the JSON type of every claim in a correctly signed ``private_key_jwt`` client assertion and ID-JAG,
explicit typing and audiences, how long a used ``jti`` is remembered (in its table, whatever the
cache backend), and what a failed key fetch tells the caller."""

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass

import jwt
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp.client.auth.extensions.client_credentials import SignedJWTParameters

from authserver.client_keys import LEEWAY_SECONDS, AssertionInvalid, jti_use_once
from authserver.identity_assertions import ID_JAG_TYP
from authserver.models import AuditEvent, IdentityLink, TrustedIdentityProvider, UsedAssertion
from authserver.service_clients import service_client_create
from live.keys import KeyPair, assertion_claims
from live.redis_server import RedisServer
from tests.authserver.helpers import ISSUER, KeysAt
from tests.authserver.test_identity_assertions import IDP, RESOURCE, SECRET, present
from tests.authserver.test_service_clients import ASSERTION_TYPE, TOKEN_ENDPOINT, client_credentials, settings_dot
from tests.factories import make_company_agent, make_user
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

MISSING = object()  # a claim left out


@dataclass(frozen=True)
class SecondsFromNow:
    """A date near the moment the test signs (so it passes every check but its type), as a number or
    as the numeric string PyJWT also takes for a date."""

    offset: int
    as_text: bool

    def value(self):
        date = int(time.time()) + self.offset
        return str(date) if self.as_text else date


def materialized(value):
    if isinstance(value, SecondsFromNow):
        return value.value()
    if isinstance(value, list):
        return [materialized(item) for item in value]
    if isinstance(value, dict):
        return {name: materialized(item) for name, item in value.items()}
    return value


def with_changes(claims: dict, changes: dict) -> dict:
    claims = dict(claims)
    for name, value in changes.items():
        if value is MISSING:
            claims.pop(name, None)
        else:
            claims[name] = materialized(value)
    return claims


# --- Fixtures: a service client that signs, and a trusted IdP that issues ID-JAGs ---------------


@pytest.fixture
def key():
    return KeyPair.make("EdDSA")


@pytest.fixture
def service(key):
    made, _ = service_client_create(name="Signing service", scopes=["mcp", "profile"], jwks=key.jwks)
    return made


@pytest.fixture
def agent():
    return make_company_agent(secret=SECRET)


@pytest.fixture
def idp_key():
    return KeyPair.make("ES256")


@pytest.fixture
def idp(idp_key, agent):
    provider = TrustedIdentityProvider.objects.create(name="Acme Okta", issuer=IDP, jwks=idp_key.jwks)
    provider.clients.add(agent)
    IdentityLink.objects.create(provider=provider, subject="00u-alice", user=make_user("alice"))
    return provider


def signed(key: KeyPair, claims: dict, *, typ) -> str:
    """``claims`` as JSON, whatever their types (PyJWT's encoder refuses a non-string iss), signed by
    ``key``; ``typ`` None leaves the header's typ out."""
    payload = json.dumps(claims).encode()
    return jwt.PyJWS().encode(payload, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": typ})


def client_assertion(key: KeyPair, service, *, typ="JWT", **changes) -> dict:
    claims = with_changes(assertion_claims(iss=service.client_id, sub=service.client_id, aud=ISSUER), changes)
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed(key, claims, typ=typ)}


def id_jag(key: KeyPair, agent, **changes) -> str:
    claims = assertion_claims(
        iss=IDP, sub="00u-alice", aud=ISSUER, client_id=agent.client_id, resource=RESOURCE, scope="mcp profile"
    )
    return signed(key, with_changes(claims, changes), typ=ID_JAG_TYP)


def refused_client(answer) -> str:
    return assert_json_error(answer, 401, "invalid_client").get("error_description", "")


def refused_grant(answer) -> str:
    return assert_json_error(answer, 400, "invalid_grant").get("error_description", "")


# --- Item 9: NumericDate and the other registered claims, of their JSON type ---------------------

# What JSON can say where a date belongs, other than a number of seconds (RFC 7519 §2 NumericDate).
NOT_NUMERIC_DATES = [
    SecondsFromNow(60, as_text=True),  # "1767225660": PyJWT takes it, Python's + did not (a 500)
    True,  # Python's int 1
    False,
    float("nan"),
    float("inf"),
    10**400,
    None,
    [SecondsFromNow(60, as_text=False)],
    {"seconds": SecondsFromNow(60, as_text=False)},
    -5,
]


def test_rfc7519_s4_1_4_exp_as_a_numeric_string_is_invalid_client(client, key, service):
    answer = client_credentials(client, **client_assertion(key, service, exp=SecondsFromNow(60, as_text=True)))
    assert "exp" in refused_client(answer)


def test_rfc7519_s4_1_4_exp_as_a_numeric_string_is_invalid_grant(client, idp, idp_key, agent):
    answer = present(client, agent, id_jag(idp_key, agent, exp=SecondsFromNow(60, as_text=True)))
    assert "exp" in refused_grant(answer)


def test_rfc7519_s2_exp_nbf_iat_of_any_other_json_type_are_invalid_client_and_invalid_grant(
    client, key, service, idp, idp_key, agent
):
    for name in ("exp", "nbf", "iat"):  # RFC 7519 §4.1.4, §4.1.5, §4.1.6
        for value in NOT_NUMERIC_DATES:
            why = refused_client(client_credentials(client, **client_assertion(key, service, **{name: value})))
            assert name in why, (name, value, why)
            why = refused_grant(present(client, agent, id_jag(idp_key, agent, **{name: value})))
            assert name in why, (name, value, why)
    # The same claims as numbers are still fine.
    earlier = SecondsFromNow(-5, as_text=False)
    assert client_credentials(client, **client_assertion(key, service, nbf=earlier)).status_code == 200
    assert present(client, agent, id_jag(idp_key, agent, exp=time.time() + 60.5)).status_code == 200


def test_rfc7519_s4_1_names_of_another_json_type_are_invalid_client_and_invalid_grant(
    client, key, service, idp, idp_key, agent
):
    # RFC 7519 §4.1.1-4.1.3, §4.1.7: iss, sub, jti are strings, aud a string or an array of strings.
    wrong = {
        "iss": [123, True, None, [IDP], ""],
        "sub": [7, False, {"id": "00u-alice"}, "", "00u-alice\x00"],
        "jti": [5, True, None, ["a"], {"j": 1}],
        "aud": [1, True, None, [], [ISSUER, 1], {"aud": ISSUER}],
    }
    for name, values in wrong.items():
        for value in values:
            refused_client(client_credentials(client, **client_assertion(key, service, **{name: value})))
            refused_grant(present(client, agent, id_jag(idp_key, agent, **{name: value})))
    # An ID-JAG's own claims (draft-ietf-oauth-identity-assertion-authz-grant §3): iat is a date, not
    # `true`; scope a space-separated string (RFC 8693 §4.2), resource a URI (RFC 8707 §2), client_id
    # a string (RFC 8693 §4.3): anything else is a malformed grant, never a 500 nor a token.
    for changes in (
        {"iat": True},
        {"iat": MISSING},
        {"scope": ["mcp", "profile"]},
        {"scope": {"mcp": True}},
        {"resource": "http://["},
        {"resource": "https://u@[x]/star/mcp"},
        {"resource": [RESOURCE]},
        {"client_id": [agent.client_id]},
    ):
        refused_grant(present(client, agent, id_jag(idp_key, agent, **changes)))


def test_rfc7519_s4_1_an_id_jag_issuer_or_subject_with_a_nul_is_invalid_grant_on_every_database(
    client, idp, idp_key, agent
):
    # PostgreSQL cannot look up a string holding NUL (psycopg raises): it was a 500 there.
    assert "iss" in refused_grant(present(client, agent, id_jag(idp_key, agent, iss=IDP + "\x00")))
    assert "sub" in refused_grant(present(client, agent, id_jag(idp_key, agent, sub="00u-alice\x00")))


# Every JSON value, and dates near now as numbers or numeric strings, or the claim left out.
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**400),
    st.floats(),
    st.text(max_size=20),
    st.builds(SecondsFromNow, st.integers(min_value=-60, max_value=700), st.booleans()),
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
claim_values = st.one_of(json_values, st.just(MISSING))
REGISTERED = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]
ID_JAG_CLAIMS = [*REGISTERED, "client_id", "resource", "scope", "email", "name"]


def _not_a_date(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    return isinstance(value, float) and not math.isfinite(value)


def assert_claim_types_held(answer, changes: dict, *, refusal_status: int) -> None:
    """Never a 500, always JSON; a token only when every changed claim had its type."""
    assert answer.status_code in (200, refusal_status), (answer.status_code, answer.content[:300], changes)
    assert answer["Content-Type"].startswith("application/json")
    if answer.status_code != 200:
        assert "error" in answer.json()
        return
    for name, value in changes.items():
        value = materialized(value)
        if name in ("exp", "nbf", "iat") and value is not MISSING:
            assert not _not_a_date(value), (name, value)
        if name in ("iss", "sub", "jti"):
            assert isinstance(value, str), (name, value)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from([*REGISTERED, "other"]), claim_values, min_size=1, max_size=3))
@example(changes={"exp": SecondsFromNow(60, as_text=True)})
@example(changes={"iat": True})
def test_rfc7519_s4_1_a_signed_client_assertion_with_claims_of_any_json_type_is_a_json_401_never_a_500(
    client, key, service, changes
):
    answer = client_credentials(client, **client_assertion(key, service, **changes))
    assert_claim_types_held(answer, changes, refusal_status=401)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(ID_JAG_CLAIMS), claim_values, min_size=1, max_size=3))
@example(changes={"exp": SecondsFromNow(60, as_text=True)})
@example(changes={"iat": True})
@example(changes={"resource": "https://[::1"})
@example(changes={"iss": IDP + "\x00"})
def test_rfc7519_s4_1_a_signed_id_jag_with_claims_of_any_json_type_is_a_json_400_never_a_500(
    client, idp, idp_key, agent, changes
):
    answer = present(client, agent, id_jag(idp_key, agent, **changes))
    assert_claim_types_held(answer, changes, refusal_status=400)


# --- Item 12: explicit typing, and the audiences a client assertion may name -------------------


def test_rfc8725_s3_11_a_jwt_typed_as_another_kind_is_not_a_client_assertion(client, key, service):
    for typ in (ID_JAG_TYP, "application/oauth-id-jag+jwt", "at+jwt", "dpop+jwt", "logout+jwt", "secevent+jwt", 7):
        why = refused_client(client_credentials(client, **client_assertion(key, service, typ=typ)))
        assert "typ" in why, (typ, why)
    # What clients send stays fine: no typ, JWT (RFC 7519 §5.1), client-authentication+jwt
    # (draft-ietf-oauth-rfc7523bis), in any case, with or without "application/".
    accepted = ("JWT", "jwt", "application/jwt", "client-authentication+jwt", "Application/Client-Authentication+JWT")
    for typ in (None, *accepted):
        answer = client_credentials(client, **client_assertion(key, service, typ=typ))
        assert answer.status_code == 200, (typ, answer.content)
    # The MCP Python SDK's SignedJWTParameters, as PrivateKeyJWTOAuthProvider uses it (aud: the issuer).
    sign = SignedJWTParameters(
        issuer=service.client_id, subject=service.client_id, signing_key=key.private_pem, signing_algorithm="EdDSA"
    ).create_assertion_provider()
    sdk_assertion = asyncio.run(sign(ISSUER))
    answer = client_credentials(client, client_assertion_type=ASSERTION_TYPE, client_assertion=sdk_assertion)
    assert answer.status_code == 200, answer.content


def test_rfc7523bis_a_client_assertion_aud_array_naming_another_server_is_invalid_client(client, key, service):
    for aud in ([ISSUER, "https://other-as.example"], ["https://other-as.example", TOKEN_ENDPOINT]):
        assert "aud" in refused_client(client_credentials(client, **client_assertion(key, service, aud=aud)))
    # This server's names only: the issuer, the token endpoint, the endpoint it is sent to; one or more.
    for aud in ([ISSUER], [ISSUER, TOKEN_ENDPOINT], TOKEN_ENDPOINT):
        answer = client_credentials(client, **client_assertion(key, service, aud=aud))
        assert answer.status_code == 200, (aud, answer.content)


def test_rfc7523bis_an_id_jag_aud_array_naming_another_server_is_invalid_grant(client, idp, idp_key, agent):
    answer = present(client, agent, id_jag(idp_key, agent, aud=[ISSUER, "https://other-as.example"]))
    assert "aud" in refused_grant(answer)
    assert present(client, agent, id_jag(idp_key, agent, aud=[ISSUER])).status_code == 200


# --- Item 10: a used jti outlives its assertion, whatever the cache backend --------------------


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


def redis_cache(settings, redis_server) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server.url}
    }
    redis_server.client().flushdb()


def jti_expiry() -> float:
    """When the one remembered jti is forgotten (seconds since 1970), as its row holds it."""
    (row,) = UsedAssertion.objects.all()
    return row.expires.timestamp()


def jti_keys_cached(backend: str, redis_server=None) -> int:
    """How many used jti values the cache holds (none: a cache may forget them)."""
    if backend == "redis":
        return len(redis_server.client().keys("*authserver:jti:*"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_cache WHERE cache_key LIKE %s", ["%authserver:jti:%"])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_rfc7523_s3_item7_a_used_jti_is_remembered_until_its_assertion_can_no_longer_be_accepted(
    request, settings, backend
):
    redis_server = None
    if backend == "redis":
        redis_server = request.getfixturevalue("redis_server")
        redis_cache(settings, redis_server)
    now = time.time()
    # The last moment the assertion is accepted is exp + LEEWAY_SECONDS: 90.9 s from `now`.
    claims = {"jti": "j-1", "exp": now + 60.9}
    jti_use_once(issuer="client:c", claims=claims, clock=lambda: now)
    assert jti_expiry() >= claims["exp"] + LEEWAY_SECONDS
    assert jti_keys_cached(backend, redis_server) == 0  # in its table, not in the cache
    with pytest.raises(AssertionInvalid, match="replayed"):
        jti_use_once(issuer="client:c", claims=claims, clock=lambda: now + 90.5)  # its last half second


def test_rfc7523_s3_item7_a_client_assertion_replayed_in_its_last_second_is_refused_after_redis_is_flushed(
    client, settings, redis_server, key, service
):
    redis_cache(settings, redis_server)
    exp = time.time() + 60.9  # a date with a fraction: the window ends 90.9 s from now, not 90
    once = client_assertion(key, service, exp=exp)
    assert client_credentials(client, **once).status_code == 200
    assert jti_expiry() >= exp + LEEWAY_SECONDS
    # Redis restarted, evicted or flushed: the jti was never there to lose.
    redis_server.client().flushdb()
    assert "replayed" in refused_client(client_credentials(client, **once))


# --- Item 13: a failed key fetch tells the caller nothing about this server's network ----------


def test_rfc6749_s5_2_a_failed_key_fetch_is_invalid_client_without_what_the_server_resolved(client, key, caplog):
    # The real fetcher (https only, public addresses only): `localhost` resolves to loopback and is never fetched.
    uri = "https://localhost/keys.json"
    service, _ = service_client_create(name="Keys inside", scopes=["mcp"], jwks_uri=uri)
    with caplog.at_level(logging.WARNING, logger="authserver.client_keys"):
        for _ in range(2):  # the first fetch, then the remembered failure
            answer = client_credentials(client, **client_assertion(key, service))
            assert refused_client(answer) == "The signer's keys could not be fetched"
            assert "127.0.0.1" not in answer.content.decode() and "non-public" not in answer.content.decode()
    # For the operator, the log and the audit trail say why.
    assert any(uri in line and "non-public" in line for line in caplog.messages), caplog.messages
    refused = AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_REFUSED, client_id=service.client_id)
    assert any("non-public" in event.detail["reason"] and uri in event.detail["reason"] for event in refused)


# A JWK Set whose one key PyJWT cannot use (an unknown curve): PyJWKSetError, which is no PyJWKError.
NO_USABLE_KEY = {"keys": [{"kty": "EC", "crv": "internal-curve-0x5ec2e7", "x": "AA", "y": "AA"}]}


def test_rfc6749_s5_2_a_fetched_key_set_with_no_usable_key_is_a_generic_invalid_grant_not_a_500(
    client, idp, idp_key, agent, caplog, settings
):
    uri = "https://idp.acme.example/keys"
    KeysAt.documents, KeysAt.fetched = {uri: NO_USABLE_KEY}, []
    settings.OAUTH2_PROVIDER = {**settings_dot(), "CIMD_METADATA_FETCHER": "tests.authserver.helpers.KeysAt"}
    idp.jwks, idp.jwks_uri = {}, uri
    idp.save()
    with caplog.at_level(logging.WARNING, logger="authserver.client_keys"):
        answer = present(client, agent, id_jag(idp_key, agent))
    # What the fetched document held is the operator's to read (the log), not the caller's.
    assert refused_grant(answer) == "The signer's keys could not be fetched"
    assert "internal-curve" not in answer.content.decode()
    assert any(uri in line and "unusable" in line for line in caplog.messages), caplog.messages


def test_rfc7517_s5_a_pasted_key_set_with_no_usable_key_is_a_validation_error_not_a_500():
    with pytest.raises(ValidationError, match="cannot be read"):
        service_client_create(name="Odd curve", scopes=["mcp"], jwks=NO_USABLE_KEY)
