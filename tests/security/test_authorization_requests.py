"""Authorization requests an attacker crafts: toy PKCE values, a missing challenge method, a redirect
URI that differs from the registered one only in case. Each is refused before the person is asked
anything (RFC 6749 §4.1.2.1), and nothing is stored."""

import base64
import hashlib

import pytest
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_grant_model

from tests.authserver.helpers import (
    ISSUER,
    authorize_url,
    consent_answer,
    exchange_code,
    pkce_pair,
    redirect_params,
)
from tests.factories import make_client
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def assert_refused_before_consent(response, error="invalid_request"):
    """An error sent back to the client with its state and the issuer (RFC 6749 §4.1.2.1, RFC 9207),
    instead of the consent page; no code is stored."""
    assert response.status_code == 302, "the consent page was shown"
    params = redirect_params(response)
    assert params["error"] == error, params
    assert params["state"] == "state-123" and params["iss"] == ISSUER
    assert "code" not in params
    assert not get_grant_model().objects.exists()


@pytest.mark.parametrize(
    "challenge",
    [
        "abc",  # a toy
        "a" * 42,  # one short of a SHA-256
        "a" * 44,
        s256("x" * 43) + "=",  # padded
        "+" * 43,  # base64, not base64url
        "a" * 42 + "~",  # a verifier character, not a base64url one
    ],
    ids=["toy", "42-chars", "44-chars", "padded", "plus-signs", "tilde"],
)
def test_a_code_challenge_that_is_no_s256_hash_is_refused_before_consent_rfc7636_4_2(signed_in, app, challenge):
    assert_refused_before_consent(signed_in.get(authorize_url(app, challenge)))


def test_a_missing_code_challenge_method_is_refused_before_consent_rfc7636_4_3(signed_in, app):
    _verifier, challenge = pkce_pair()
    # RFC 7636 §4.3: without a method, the challenge is "plain", which RFC 9700 §2.1.1 rules out.
    response = signed_in.get(authorize_url(app, challenge, code_challenge_method=None))
    assert_refused_before_consent(response)


def test_the_plain_method_is_refused_before_consent_rfc9700_2_1_1(signed_in, app):
    verifier, _challenge = pkce_pair()
    assert_refused_before_consent(signed_in.get(authorize_url(app, verifier, code_challenge_method="plain")))


def test_two_code_challenges_in_one_request_are_refused_before_consent_rfc6749_3_1(signed_in, app):
    _verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge) + "&code_challenge=" + s256("another-verifier-" + "x" * 40)
    assert_refused_before_consent(signed_in.get(url))


@pytest.mark.parametrize(
    "verifier",
    ["v", "a" * 42, "a" * 129, "a" * 42 + " ", "a" * 42 + "/", "ä" * 43],
    ids=["one-char", "42-chars", "129-chars", "space", "slash", "non-ascii"],
)
def test_a_code_verifier_outside_rfc7636_4_1_is_refused_at_the_token_endpoint(signed_in, app, verifier):
    # The challenge is the S256 of the toy verifier, so only its syntax is wrong.
    url = authorize_url(app, s256(verifier))
    code = redirect_params(signed_in.post(url, consent_answer(signed_in.get(url))))["code"]

    response = exchange_code(Client(), app, code, verifier)

    body = assert_json_error(response, 400, "invalid_request")
    assert "code_verifier" in body["error_description"]
    assert not get_access_token_model().objects.filter(user__isnull=False).exists()


def test_a_good_verifier_still_redeems_a_code_after_a_malformed_one_was_refused_rfc7636_4_1(signed_in, app):
    verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge)
    code = redirect_params(signed_in.post(url, consent_answer(signed_in.get(url))))["code"]
    assert exchange_code(Client(), app, code, "short").status_code == 400
    assert exchange_code(Client(), app, code, verifier).status_code == 200


REGISTERED = "https://app.example/cb"


@pytest.mark.parametrize(
    "requested",
    [
        "https://APP.EXAMPLE/cb",
        "HTTPS://app.example/cb",
        "https://app.example/CB",
        "https://app.example:443/cb",
        "https://app.example./cb",
        "https://app.example/cb/",
        "https://app.example/cb?",
        "https://app.example/cb?next=evil",
        "https://app.example/%63b",
        "https://app.example/cb;x",
        "https://app.example//cb",
    ],
)
def test_a_redirect_uri_that_is_not_the_registered_string_is_refused_without_redirecting_rfc9700_4_1_3(
    signed_in, requested
):
    app = make_client(redirect_uris=REGISTERED)
    _verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url(app, challenge, redirect_uri=requested))
    # RFC 6749 §4.1.2.1: an invalid redirect URI is never redirected to; the person sees an error page.
    assert response.status_code == 400
    assert "Location" not in response


def test_the_registered_redirect_uri_itself_is_accepted_rfc9700_4_1_3(signed_in):
    app = make_client(redirect_uris=REGISTERED)
    _verifier, challenge = pkce_pair()
    assert signed_in.get(authorize_url(app, challenge, redirect_uri=REGISTERED)).status_code == 200


@pytest.mark.parametrize(
    ("registered", "requested", "accepted"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:61999/cb", True),  # RFC 8252 §7.3: any port
        ("http://127.0.0.1:5000/cb", "http://127.0.0.1:61999/cb", True),
        ("http://[::1]/cb", "http://[::1]:8080/cb", True),
        ("http://localhost/cb", "http://localhost:53123/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:61999/CB", False),  # only the port may differ
        ("http://localhost/cb", "http://LOCALHOST:53123/cb", False),
        ("http://localhost/cb", "http://127.0.0.1:53123/cb", False),  # another host
        ("http://127.0.0.1/cb", "http://127.0.0.1:61999/cb?x=1", False),
    ],
)
def test_a_loopback_redirect_uri_may_differ_in_its_port_only_rfc8252_7_3(signed_in, registered, requested, accepted):
    app = make_client(redirect_uris=registered)
    _verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url(app, challenge, redirect_uri=requested))
    assert response.status_code == (200 if accepted else 400)


@pytest.mark.parametrize("parameter", ["state", "nonce"])
def test_a_control_character_in_state_or_nonce_is_refused_before_consent_rfc6749_appendix_a5(signed_in, app, parameter):
    # A NUL in the nonce reached the database when the code was stored: a 500 on PostgreSQL.
    _verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge, scope="openid mcp", **{"nonce": "n-0S6_WzA2Mj", parameter: "abc\x00def"})
    response = signed_in.get(url)
    assert response.status_code == 302, "the consent page was shown"
    assert redirect_params(response)["error"] == "invalid_request"
    assert not get_grant_model().objects.exists()
