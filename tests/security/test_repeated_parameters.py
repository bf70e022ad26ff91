"""OAuth parameters are sent once (RFC 6749 §3.1 / §3.2, RFC 7009 §2.1, RFC 7662 §2.1): a request
naming two codes, two secrets or two tokens is refused naming the parameter, never answered for the
last one (which is what django-oauth-toolkit hands oauthlib), and nothing is spent or issued. Only
``resource`` (RFC 8707 §2) and, in a token exchange, ``audience`` (RFC 8693 §2.1) may repeat."""

import re
from urllib.parse import urlencode

import pytest
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from authserver.models import Application
from authserver.service_clients import service_client_create
from live.keys import KeyPair, assertion_claims
from live.paths import MCP_PATH, REDIRECT_URI
from tests.authserver.helpers import (
    ISSUER,
    approved_code,
    authorize_url,
    basic_auth,
    connect,
    exchange_code,
    pkce_pair,
    redirect_params,
    refresh,
)
from tests.factories import RESOURCE_SERVER_SECRET, make_access_token, make_client, make_resource_server
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
SECRET = "confidential-client-secret-" + "x" * 30
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E only.
DESCRIPTION_CHARACTERS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def form_post(client, path: str, pairs: list[tuple[str, str]], *, query: str = "", **headers):
    """A form POST with ``pairs`` in this order, repeats included (the test client's dict would not say)."""
    url = f"{path}?{query}" if query else path
    return client.post(url, urlencode(pairs), content_type="application/x-www-form-urlencoded", **headers)


def refused_naming(answer, name: str, error: str = "invalid_request") -> str:
    description = assert_json_error(answer, 400, error)["error_description"]
    assert f"The {name} parameter" in description, description
    assert DESCRIPTION_CHARACTERS.fullmatch(description), description
    return description


def repeated(pairs: list[tuple[str, str]], name: str, decoy: str) -> list[tuple[str, str]]:
    """``pairs`` with ``decoy`` sent as ``name`` just before the real one: DOT would keep the real one."""
    position = next(index for index, (key, _) in enumerate(pairs) if key == name)
    return [*pairs[:position], (name, decoy), *pairs[position:]]


def test_rfc6749_s3_2_a_code_exchange_repeating_any_parameter_is_invalid_request_and_spends_nothing(signed_in, app):
    code, verifier = approved_code(signed_in, app)
    exchange = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", app.client_id),
        ("code_verifier", verifier),
    ]
    decoys = {
        "code": "a-code-from-somewhere-else",
        "code_verifier": "v" * 43,
        "redirect_uri": "https://attacker.example/callback",
        "client_id": "another-client",
        "grant_type": "client_credentials",
    }
    for name, decoy in decoys.items():
        refused_naming(form_post(signed_in, "/o/token/", repeated(exchange, name, decoy)), name)
    assert not get_access_token_model().objects.exists()

    # The code was not spent: the request sent once gets its tokens.
    assert form_post(signed_in, "/o/token/", exchange).status_code == 200


def test_rfc6749_s6_a_refresh_repeating_the_refresh_token_is_refused_and_rotates_nothing(signed_in, app):
    tokens = connect(signed_in, app)
    rotation = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"]),
        ("client_id", app.client_id),
    ]
    answer = form_post(signed_in, "/o/token/", repeated(rotation, "refresh_token", "an-older-one"))
    refused_naming(answer, "refresh_token")
    assert get_refresh_token_model().objects.get().revoked is None
    assert refresh(signed_in, app, tokens["refresh_token"]).status_code == 200


def test_rfc6749_s2_3_repeated_client_credentials_are_invalid_request_never_one_of_them(client):
    with_secret, secret = service_client_create(name="Nightly report", scopes=["mcp"])
    Application.objects.filter(pk=with_secret.pk).update(token_endpoint_auth_method="client_secret_post")
    key = KeyPair.make("ES256")
    with_key, _ = service_client_create(name="Signed report", scopes=["mcp"], jwks=key.jwks)

    def signed() -> str:
        return key.sign(assertion_claims(iss=with_key.client_id, sub=with_key.client_id, aud=ISSUER))

    cases = [
        ("client_secret", [("client_id", with_secret.client_id), ("client_secret", secret)], "guess-1"),
        ("client_assertion", [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", signed())], "x.y.z"),
        ("client_assertion_type", [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", signed())], ""),
        ("scope", [("client_id", with_secret.client_id), ("client_secret", secret), ("scope", "mcp")], "profile"),
    ]
    for name, credentials, decoy in cases:
        pairs = [("grant_type", "client_credentials"), *credentials]
        refused_naming(form_post(client, "/o/token/", repeated(pairs, name, decoy)), name)
    assert not get_access_token_model().objects.exists()


def test_rfc7523_s2_1_a_repeated_assertion_or_subject_token_is_invalid_request(client):
    agent = make_client(
        redirect_uris="",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=SECRET,
    )
    auth = basic_auth(agent.client_id, SECRET)
    bearer = [("grant_type", JWT_BEARER), ("assertion", "a.b.c"), ("assertion", "d.e.f")]
    refused_naming(form_post(client, "/o/token/", bearer, **auth), "assertion")
    exchange = [
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", "urn:ietf:params:oauth:token-type:id-jag"),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        ("subject_token", "a.b.c"),
        ("subject_token", "d.e.f"),
        ("audience", "https://wiki.acme.example"),
    ]
    refused_naming(form_post(client, "/o/token/", exchange, **auth), "subject_token")


def test_rfc8693_s2_2_2_an_exchange_naming_several_audiences_or_resources_is_invalid_target(signed_in):
    from authserver.models import AssertionAudience

    app = make_client(
        client_type=Application.CLIENT_CONFIDENTIAL,
        client_secret=SECRET,
        token_endpoint_auth_method=Application.AuthMethod.CLIENT_SECRET_POST,
    )
    AssertionAudience.objects.create(
        name="Acme wiki",
        client=app,
        audience="https://wiki.acme.example",
        resource="https://wiki.acme.example/star/mcp",
        remote_client_id="wiki-client-7",
        allowed_scope="mcp",
    )
    id_token = connect(signed_in, app, scope="openid mcp", client_secret=SECRET)["id_token"]
    exchange = [
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", "urn:ietf:params:oauth:token-type:id-jag"),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        ("subject_token", id_token),
        ("audience", "https://wiki.acme.example"),
        ("resource", "https://wiki.acme.example/star/mcp"),
        ("client_id", app.client_id),
        ("client_secret", SECRET),
    ]
    # RFC 8693 §2.1 allows several; an ID-JAG names one: never one picked silently.
    for name, other in (("audience", "https://other.example"), ("resource", "https://other.example/mcp")):
        answer = form_post(signed_in, "/o/token/", repeated(exchange, name, other))
        assert name in assert_json_error(answer, 400, "invalid_target")["error_description"]
    assert form_post(signed_in, "/o/token/", exchange).status_code == 200


def test_rfc7009_s2_1_a_revocation_repeating_token_is_refused_and_revokes_nothing(client, app, alice):
    token = make_access_token(alice, app)
    pairs = [("token", "someone-elses-token"), ("token", token), ("client_id", app.client_id)]
    refused_naming(form_post(client, "/o/revoke_token/", pairs), "token")
    assert get_access_token_model().objects.filter(user=alice).exists()
    # Sent once, it is revoked (by a client with no cookies: the endpoint needs no CSRF token).
    revoked = Client(enforce_csrf_checks=True).post("/o/revoke_token/", {"token": token, "client_id": app.client_id})
    assert revoked.status_code == 200 and not get_access_token_model().objects.filter(user=alice).exists()


def test_rfc7662_s2_1_an_introspection_repeating_token_is_refused(client, app, alice):
    token = make_access_token(alice, app)
    resource_server = make_resource_server()
    auth = basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET)
    refused_naming(form_post(client, "/o/introspect/", [("token", "garbage"), ("token", token)], **auth), "token")


def test_rfc6749_s3_2_parameters_in_the_url_of_a_token_revocation_or_introspection_post_are_refused(
    signed_in, app, alice
):
    code, verifier = approved_code(signed_in, app)
    exchange = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", app.client_id),
        ("code_verifier", verifier),
    ]
    # An attacker adds ?code= to a request whose body has one: DOT reads the body, oauthlib both.
    answer = form_post(signed_in, "/o/token/", exchange, query=urlencode({"code": "another-code"}))
    assert "in the request body" in refused_naming(answer, "code")
    token = make_access_token(alice, app)
    answer = form_post(signed_in, "/o/revoke_token/", [("client_id", app.client_id)], query=urlencode({"token": token}))
    assert "in the request body" in refused_naming(answer, "token")
    auth = basic_auth(make_resource_server().client_id, RESOURCE_SERVER_SECRET)
    answer = form_post(signed_in, "/o/introspect/", [], query=urlencode({"token": token}), **auth)
    assert "in the request body" in refused_naming(answer, "token")
    # Nothing was spent or revoked: the same requests, with their parameters in the body, succeed.
    assert exchange_code(signed_in, app, code, verifier).status_code == 200
    assert form_post(signed_in, "/o/introspect/", [("token", token)], **auth).json()["active"] is True


def test_rfc6749_s5_2_a_repeated_parameter_whose_name_cannot_be_quoted_is_refused_without_echoing_it(signed_in, app):
    code, verifier = approved_code(signed_in, app)
    exchange = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", app.client_id),
        ("code_verifier", verifier),
    ]
    for name in ('say"hi', "caf\u00e9", "x" * 200, "new\nline"):
        answer = form_post(signed_in, "/o/token/", [*exchange, (name, "1"), (name, "2")])
        description = assert_json_error(answer, 400, "invalid_request")["error_description"]
        assert description == "A parameter must not be repeated"
    assert not get_access_token_model().objects.exists()


def test_rfc6749_s3_1_a_repeated_authorization_parameter_is_refused_to_the_client_or_on_the_error_page(signed_in, app):
    _verifier, challenge = pkce_pair()
    request = authorize_url(app, challenge, scope="openid mcp", nonce="n-1")
    # Any parameter but those naming where to answer: invalid_request to the client, with state and iss.
    for name, value in (
        ("nonce", "n-2"),
        ("prompt", "consent"),
        ("code_challenge_method", "S256"),
        ("max_age", "60"),
        ("claims", "{}"),
        ("login_hint", "mallory"),
        ("an_extension_unknown_here", "x"),
    ):
        answer = signed_in.get(f"{request}&{urlencode({name: value})}&{urlencode({name: value})}")
        assert answer.status_code == 302, (name, answer.status_code)
        params = redirect_params(answer)
        assert params["error"] == "invalid_request" and "code" not in params, (name, params)
        assert name in params["error_description"]
        assert params["state"] == "state-123" and params["iss"] == ISSUER
    # Which client or which redirect URI is meant is unknown: the error page, never a redirect (§4.1.2.1).
    # oauthlib answers a repeated response_type, scope or state there too (a state it could not echo).
    for name, value in (
        ("client_id", "another-client"),
        ("redirect_uri", "https://attacker.example/cb"),
        ("response_type", "code"),
        ("scope", "mcp"),
        ("state", "another-state"),
    ):
        answer = signed_in.get(f"{request}&{urlencode({name: value})}")
        assert answer.status_code == 400 and "Location" not in answer, name
        assert answer["Content-Type"].startswith("text/html")
    # RFC 8707 §2: `resource` may be repeated, one per resource: the person is asked.
    resource = ISSUER + MCP_PATH
    answer = signed_in.get(f"{request}&{urlencode([('resource', resource), ('resource', resource)])}")
    assert answer.status_code == 200 and "consent_request" in answer.context


def test_rfc6750_s2_a_userinfo_access_token_in_the_url_sent_two_ways_or_twice_is_invalid_request(client, app, alice):
    token = make_access_token(alice, app, scope="openid profile", resource=[ISSUER + "/o/userinfo/"])
    form = "application/x-www-form-urlencoded"
    answers = [
        # RFC 9700 §4.3.2: never in the URL, where access logs and Referer headers keep it.
        client.get("/o/userinfo/?" + urlencode({"access_token": token})),
        # RFC 6750 §2: one way per request, not the header's token over another in the body...
        client.post("/o/userinfo/", urlencode({"access_token": "other"}), form, HTTP_AUTHORIZATION=f"Bearer {token}"),
        # ...and once.
        client.post("/o/userinfo/", urlencode([("access_token", "other"), ("access_token", token)]), form),
    ]
    for answer in answers:
        assert_json_error(answer, 400, "invalid_request")
        assert answer["WWW-Authenticate"].startswith('Bearer error="invalid_request"')
    # Sent once, one way, in the header or the body: the person's claims.
    assert client.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {token}").json()["sub"] == str(alice.pk)
    assert client.post("/o/userinfo/", urlencode({"access_token": token}), form).status_code == 200
