"""`prompt` at the authorization endpoint, with and without `openid` alike (OpenID Connect Core §3.1.2.1):
`none` never shows a page (login_required, consent_required to the client, with `state` and `iss`,
RFC 9207), and never redirects for a request that is not valid; `login` signs in again and keeps the rest
of the request."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_grant_model

from authserver.models import Application
from live.paths import MCP_PATH, SSE_PATH
from tests.authserver.helpers import ISSUER, authorize_url, consent_answer, pkce_pair, redirect_params
from tests.factories import REDIRECT_URI, make_client

pytestmark = pytest.mark.django_db

# MCP clients send prompt=none without `openid` too: both are answered the same way.
SCOPES = ("openid mcp", "mcp profile")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def agent():
    """A third-party agent that registered itself (RFC 7591): the person is asked to consent."""
    return make_client(name="Agent", registration_source=Application.RegistrationSource.DCR)


def ask(client, app, **params):
    _verifier, challenge = pkce_pair()
    return client.get(authorize_url(app, challenge, **params))


def assert_error_page(response) -> None:
    """RFC 6749 §4.1.2.1: an invalid client or redirect URI is told to the person, never redirected."""
    assert response.status_code == 400, (response.status_code, response.get("Location"))
    assert "Location" not in response
    assert b"This request cannot be completed" in response.content


def test_oidc_core_s3_1_2_6_prompt_none_for_a_signed_out_person_answers_login_required_with_state_and_iss(
    client, agent
):
    for scope in SCOPES:
        response = ask(client, agent, scope=scope, prompt="none")
        assert response.status_code == 302, (scope, response.status_code)
        assert redirect_params(response) == {"error": "login_required", "state": "state-123", "iss": ISSUER}
        # Never the sign-in page: the client said not to show one.
        assert "/accounts/login/" not in response["Location"]
        # An invalid request is the error page, never a redirect (an open redirector otherwise).
        assert_error_page(ask(client, agent, scope=scope, prompt="none", redirect_uri="https://evil.example/cb"))
        assert_error_page(ask(client, "no-such-client", scope=scope, prompt="none"))
    assert not get_grant_model().objects.exists()


def test_oidc_core_s3_1_2_6_prompt_none_for_a_signed_in_person_who_has_not_consented_answers_consent_required(
    signed_in, agent
):
    for scope in SCOPES:
        response = ask(signed_in, agent, scope=scope, prompt="none")
        assert response.status_code == 302, (scope, response.status_code)
        assert redirect_params(response) == {
            "error": "consent_required",
            "error_description": "The user has not allowed this yet.",
            "state": "state-123",
            "iss": ISSUER,
        }
    assert not get_grant_model().objects.exists()


def test_oidc_core_s3_1_2_6_prompt_none_after_consent_gets_a_code_with_openid_too(signed_in, agent):
    page = ask(signed_in, agent, scope="openid mcp")
    signed_in.post(page.wsgi_request.get_full_path(), consent_answer(page))
    response = ask(signed_in, agent, scope="openid mcp", prompt="none")
    assert response.status_code == 302, response.status_code
    params = redirect_params(response)
    assert "code" in params and params["iss"] == ISSUER


def test_oidc_core_s3_1_2_1_prompt_none_with_another_value_is_invalid_request_with_or_without_openid(signed_in, agent):
    signed_out = Client()
    for browser in (signed_in, signed_out):
        for scope in SCOPES:
            for prompt in ("none consent", "none login", "login none"):
                response = ask(browser, agent, scope=scope, prompt=prompt)
                assert response.status_code == 302, (scope, prompt, response.status_code)
                params = redirect_params(response)
                assert params["error"] == "invalid_request", (scope, prompt, params)
                assert params["state"] == "state-123" and params["iss"] == ISSUER
    assert not get_grant_model().objects.exists()


def test_oidc_core_s3_1_2_1_prompt_login_signs_in_again_then_still_asks_consent_and_keeps_every_resource(
    signed_in, agent
):
    resources = [ISSUER + MCP_PATH, ISSUER + SSE_PATH]
    page = ask(signed_in, agent, scope="mcp profile", resource=resources)
    signed_in.post(page.wsgi_request.get_full_path(), consent_answer(page))  # consent remembered
    response = ask(signed_in, agent, scope="mcp profile", resource=resources, prompt="login consent")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    back = parse_qs(urlsplit(response["Location"]).query)["next"][0]
    query = parse_qs(urlsplit(back).query)
    assert query["prompt"] == ["consent"]  # only `login` was consumed
    assert query["resource"] == resources  # RFC 8707: every resource asked for, not the last one
    assert query["redirect_uri"] == [REDIRECT_URI]
    # The person signs in again and comes back: asked again, as the client wanted (not a code at once).
    signed_in.logout()
    signed_in_again = signed_in.post(
        "/accounts/login/?next=" + back, {"username": "alice", "password": PASSWORD, "next": back}
    )
    assert signed_in_again.status_code == 302 and signed_in_again["Location"] == back
    again = signed_in.get(back)
    assert again.status_code == 200 and "form" in again.context
    assert again.context["form"].initial["resource"] == " ".join(resources)


PROMPT_WORDS = ("none", "login", "consent", "select_account", "create", "NONE", "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prompt=st.one_of(st.lists(st.sampled_from(PROMPT_WORDS), max_size=3).map(" ".join), st.text(max_size=20)),
    scope=st.sampled_from(SCOPES),
    person_signed_in=st.booleans(),
)
@example(prompt="none", scope="openid mcp", person_signed_in=False)
@example(prompt="none", scope="openid mcp", person_signed_in=True)
def test_oidc_core_s3_1_2_1_any_prompt_with_or_without_openid_is_answered_never_a_500(
    client, alice, agent, prompt, scope, person_signed_in
):
    client.logout()
    if person_signed_in:
        client.force_login(alice)
    response = ask(client, agent, scope=scope, prompt=prompt)
    assert response.status_code in (200, 302, 400), (prompt, scope, response.status_code)
    if response.status_code == 302:
        location = response["Location"]
        assert location.startswith(("/accounts/login/", REDIRECT_URI)), location
        if location.startswith(REDIRECT_URI):
            params = redirect_params(response)
            assert params["iss"] == ISSUER and params["state"] == "state-123"
