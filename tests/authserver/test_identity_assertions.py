"""Enterprise-managed authorization (SEP-990): ID-JAGs presented with the RFC 7523 jwt-bearer grant,
and this server issuing them by RFC 8693 token exchange."""

import jwt
import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authserver.models import Application, AssertionAudience, AuditEvent, IdentityLink, TrustedIdentityProvider
from live.keys import KeyPair, assertion_claims, hmac_signed_with, unsigned
from live.paths import MCP_PATH
from tests.authserver.helpers import ISSUER, KeysAt, basic_auth, connect, stored_access_token
from tests.factories import make_client, make_company_agent, make_user

pytestmark = pytest.mark.django_db

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDP = "https://idp.acme.example"
SECRET = "enterprise-client-secret-" + "x" * 30
RESOURCE = ISSUER + MCP_PATH


@pytest.fixture
def idp_key():
    return KeyPair.make("RS256")


@pytest.fixture
def agent():
    return make_company_agent(secret=SECRET)


@pytest.fixture
def idp(idp_key, agent):
    provider = TrustedIdentityProvider.objects.create(name="Acme Okta", issuer=IDP, jwks=idp_key.jwks)
    provider.clients.add(agent)
    return provider


def id_jag(key, client, *, typ="oauth-id-jag+jwt", **overrides):
    claims = assertion_claims(
        iss=IDP, sub="00u-alice", aud=ISSUER, client_id=client.client_id, resource=RESOURCE, scope="mcp profile"
    )
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    return key.sign(claims, headers={"typ": typ})


def present(client, agent, assertion, **data):
    return client.post(
        "/o/token/",
        {"grant_type": JWT_BEARER, "assertion": assertion, **data},
        **basic_auth(agent.client_id, SECRET),
    )


def refused(answer, error="invalid_grant") -> str:
    assert answer.status_code in (400, 401), answer.content
    assert answer["Content-Type"].startswith("application/json")
    assert answer.json()["error"] == error
    return answer.json().get("error_description", "")


def test_id_jag_gets_a_token_for_the_linked_person_without_consent_or_refresh(client, idp, idp_key, agent):
    alice = make_user("alice")
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=alice)
    answer = present(client, agent, id_jag(idp_key, agent), scope="mcp profile email")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert "refresh_token" not in body
    assert body["scope"] == "mcp profile"  # requested ∩ what the grant carries
    row = stored_access_token(body["access_token"])
    assert row.user == alice and row.resource == [RESOURCE]


def test_id_jag_scope_is_limited_to_what_the_client_may_have(client, idp, idp_key, agent):
    agent.allowed_scope = "mcp"
    agent.save()
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    assert present(client, agent, id_jag(idp_key, agent)).json()["scope"] == "mcp"
    assert "None of the scopes" in refused(
        present(client, agent, id_jag(idp_key, agent), scope="profile"), "invalid_scope"
    )


def test_unknown_person_is_refused_unless_the_idp_may_create_accounts(client, idp, idp_key, agent):
    assert "No usable account" in refused(present(client, agent, id_jag(idp_key, agent)))
    idp.create_users = idp.trust_verified_email = True
    idp.save()
    answer = present(client, agent, id_jag(idp_key, agent, email="bob@acme.example", email_verified=True, name="Bob"))
    assert answer.status_code == 200
    bob = stored_access_token(answer.json()["access_token"]).user
    assert bob.email == "bob@acme.example" and not bob.has_usable_password()
    # The next grant for the same subject is the same account, whatever email it carries.
    again = present(client, agent, id_jag(idp_key, agent, email="robert@acme.example"))
    assert stored_access_token(again.json()["access_token"]).user == bob


def test_email_match_only_when_the_idp_is_trusted_for_it(client, idp, idp_key, agent):
    carol = make_user("carol", email="Carol@Acme.example")
    verified = {"email": "carol@acme.example", "email_verified": True}
    assert "No usable account" in refused(present(client, agent, id_jag(idp_key, agent, **verified)))
    idp.match_by = TrustedIdentityProvider.MatchBy.EMAIL
    idp.trust_verified_email = True
    idp.save()
    answer = present(client, agent, id_jag(idp_key, agent, **verified))
    assert stored_access_token(answer.json()["access_token"]).user == carol
    assert IdentityLink.objects.get(provider=idp).user == carol


@pytest.mark.parametrize(
    "overrides, why",
    [
        ({"lifetime": -120}, "expired"),
        ({"aud": "https://other-as.example"}, "aud"),
        ({"resource": "https://elsewhere.example/mcp"}, "resource"),
        ({"resource": None}, "resource"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"typ": "JWT"}, "typ"),
        ({"lifetime": 7200}, "too long"),
    ],
)
def test_id_jag_refusals_sep990_rfc7523_sec3(client, idp, idp_key, agent, overrides, why):
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    lifetime = overrides.pop("lifetime", None)
    if lifetime is not None:
        overrides.update(exp=assertion_claims(iss="", sub="", aud="", lifetime=lifetime)["exp"])
    assert why in refused(present(client, agent, id_jag(idp_key, agent, **overrides)))
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_REFUSED, client_id=agent.client_id).exists()


def test_replayed_id_jag_jti_is_refused_rfc7523_sec3_item7(client, idp, idp_key, agent):
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    once = id_jag(idp_key, agent)
    assert present(client, agent, once).status_code == 200
    assert "replayed" in refused(present(client, agent, once))


def test_id_jag_of_an_unknown_or_disabled_idp_is_refused(client, idp, idp_key, agent):
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    assert "that issuer" in refused(present(client, agent, id_jag(idp_key, agent, iss="https://evil.example")))
    idp.is_active = False
    idp.save()
    assert "that issuer" in refused(present(client, agent, id_jag(idp_key, agent)))


def test_rotating_the_idp_key_in_the_admin_stops_the_old_key_at_once(client, idp, idp_key, agent):
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    assert present(client, agent, id_jag(idp_key, agent)).status_code == 200
    idp.jwks = KeyPair.make("ES256").jwks
    idp.save()
    assert "kid" in refused(present(client, agent, id_jag(idp_key, agent)))


def test_id_jag_with_alg_none_or_hmac_with_the_public_key_is_refused_rfc8725_sec2_1(client, idp, idp_key, agent):
    claims = assertion_claims(iss=IDP, sub="00u-alice", aud=ISSUER, client_id=agent.client_id, resource=RESOURCE)
    assert "alg" in refused(present(client, agent, unsigned(claims)))
    assert "alg" in refused(present(client, agent, hmac_signed_with(idp_key.public_pem, claims, kid=idp_key.kid)))


def test_client_not_allowed_by_the_idp_or_not_authenticated_is_refused(client, idp, idp_key, agent):
    other = make_client(
        name="Other agent",
        redirect_uris="",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=SECRET,
    )
    answer = present(client, other, id_jag(idp_key, other))
    assert "may not present" in refused(answer)
    unauthenticated = client.post(
        "/o/token/", {"grant_type": JWT_BEARER, "assertion": id_jag(idp_key, agent), "client_id": agent.client_id}
    )
    refused(unauthenticated, "invalid_client")


# --- This server as the IdP: RFC 8693 token exchange ----------------------------------------------

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@pytest.fixture
def employee_app():
    return make_client(
        name="Acme chat",
        client_type=Application.CLIENT_CONFIDENTIAL,
        client_secret=SECRET,
        token_endpoint_auth_method=Application.AuthMethod.CLIENT_SECRET_POST,
    )


def wiki_listed(app, *, allowed_scope: str = "") -> AssertionAudience:
    """An operator lists the company wiki's MCP server as an audience ``app`` may get ID-JAGs for."""
    return AssertionAudience.objects.create(
        name="Acme wiki",
        client=app,
        audience="https://wiki.acme.example",
        resource="https://wiki.acme.example/star/mcp",
        remote_client_id="wiki-client-7",
        allowed_scope=allowed_scope,
    )


def exchange(client, app, id_token, **data):
    return client.post(
        "/o/token/",
        {
            "grant_type": TOKEN_EXCHANGE,
            "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "subject_token": id_token,
            "audience": "https://wiki.acme.example",
            "client_id": app.client_id,
            "client_secret": SECRET,
            **data,
        },
    )


def test_token_exchange_issues_an_id_jag_for_a_listed_audience_rfc8693_sec2_2(client, signed_in, employee_app):
    wiki_listed(employee_app, allowed_scope="mcp profile")
    id_token = connect(client, employee_app, scope="openid mcp profile", client_secret=SECRET)["id_token"]
    answer = exchange(client, employee_app, id_token, scope="mcp profile email")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:id-jag" and body["token_type"] == "N_A"
    jwks = client.get("/.well-known/jwks.json").json()
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "oauth-id-jag+jwt" and header["kid"] == jwks["keys"][0]["kid"]
    claims = jwt.decode(
        body["access_token"],
        jwt.PyJWK(jwks["keys"][0]).key,
        algorithms=["RS256"],
        audience="https://wiki.acme.example",
    )
    alice = get_user_model().objects.get(username="alice")
    assert claims["iss"] == ISSUER and claims["sub"] == str(alice.pk)
    assert claims["client_id"] == "wiki-client-7" and claims["resource"] == "https://wiki.acme.example/star/mcp"
    assert claims["scope"] == "mcp profile"  # what was asked, within what the operator allowed
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.ASSERTION_ISSUED, user=alice).exists()


def test_token_exchange_refuses_unlisted_audiences_and_foreign_id_tokens(client, signed_in, employee_app):
    id_token = connect(client, employee_app, scope="openid mcp", client_secret=SECRET)["id_token"]
    # RFC 8693 §2.2.2: an audience not listed for this client is invalid_target.
    assert "may not get assertions" in refused(exchange(client, employee_app, id_token), "invalid_target")
    wiki_listed(employee_app)
    other_app = make_client(
        name="Other app",
        client_type=Application.CLIENT_CONFIDENTIAL,
        client_secret=SECRET,
        token_endpoint_auth_method=Application.AuthMethod.CLIENT_SECRET_POST,
    )
    # An ID token issued to another client is not this client's to exchange.
    assert "subject token" in refused(exchange(client, other_app, id_token))
    assert "subject token" in refused(exchange(client, employee_app, id_token[:-4] + "AAAA"))
    wrong_type = exchange(client, employee_app, id_token, requested_token_type="urn:x")
    assert "requested_token_type" in refused(wrong_type, "invalid_request")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    assertion=st.one_of(
        st.text(max_size=300),
        st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.text(max_size=40), st.text(max_size=80), st.text(max_size=40)),
    ),
    subject_token_type=st.sampled_from(["urn:ietf:params:oauth:token-type:id_token", "", "\x00"]),
)
def test_any_assertion_or_subject_token_gets_a_json_answer_never_a_500(
    client, idp, agent, employee_app, assertion, subject_token_type
):
    for answer in (
        present(client, agent, assertion),
        exchange(client, employee_app, assertion, subject_token_type=subject_token_type),
    ):
        assert answer.status_code in (400, 401), answer.content
        assert answer["Content-Type"].startswith("application/json") and "error" in answer.json()


def test_idp_keys_at_a_jwks_uri_are_fetched_and_a_rotation_is_followed(client, idp, idp_key, agent, settings):
    uri = "https://idp.acme.example/keys"
    KeysAt.documents, KeysAt.fetched = {uri: idp_key.jwks}, []
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_METADATA_FETCHER": "tests.authserver.helpers.KeysAt",
    }
    idp.jwks, idp.jwks_uri = {}, uri
    idp.save()
    IdentityLink.objects.create(provider=idp, subject="00u-alice", user=make_user("alice"))
    assert present(client, agent, id_jag(idp_key, agent)).status_code == 200
    assert present(client, agent, id_jag(idp_key, agent)).status_code == 200
    assert KeysAt.fetched == [uri]  # cached
    rotated = KeyPair.make("RS256")
    KeysAt.documents[uri] = rotated.jwks  # the IdP rotated its signing key
    assert present(client, agent, id_jag(rotated, agent)).status_code == 200
    assert KeysAt.fetched == [uri, uri]
    assert "kid" in refused(present(client, agent, id_jag(idp_key, agent)))  # the retired key: refused
