"""The authorization endpoint and the token endpoint: the OAuth 2.1 code flow and its refusals."""

import pytest
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from live.paths import MCP_PATH, SSE_PATH
from tests.authserver.helpers import (
    ISSUER,
    authorize_url,
    consent_answer,
    exchange_code,
    pkce_pair,
    redirect_params,
    stored_access_token,
)
from tests.factories import REDIRECT_URI

pytestmark = pytest.mark.django_db


def consent(client, url, *, allow=True, untick=()):
    """Show the consent page for ``url`` and answer it as the person would."""
    page = client.get(url)
    assert page.status_code == 200, page.content[:300]
    return client.post(url, consent_answer(page, allow=allow, untick=untick))


def test_unauthenticated_person_is_sent_to_the_projects_login_page(client, app):
    _verifier, challenge = pkce_pair()
    response = client.get(authorize_url(app, challenge))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/o/authorize/")


def test_login_page_is_the_projects_own_and_cannot_be_framed(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content
    assert response["X-Frame-Options"] == "DENY"


def test_consent_page_names_the_client_and_what_it_asks_for_and_cannot_be_framed(signed_in, app):
    _verifier, challenge = pkce_pair()
    page = signed_in.get(authorize_url(app, challenge))
    assert page.status_code == 200
    assert b"Test agent" in page.content
    assert b"See your username and name" in page.content
    assert page["X-Frame-Options"] == "DENY"
    assert "no-cache" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]


def test_allowed_request_gets_a_code_with_state_and_iss_and_the_code_redeems_once(signed_in, app):
    verifier, challenge = pkce_pair()
    params = redirect_params(consent(signed_in, authorize_url(app, challenge)))
    assert params["state"] == "state-123"
    assert params["iss"] == ISSUER

    token = exchange_code(signed_in, app, params["code"], verifier)
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "mcp profile"
    assert body["refresh_token"]
    # Stored hashed, bound to the MCP endpoints (RFC 8707) even though the client named none.
    row = stored_access_token(body["access_token"])
    assert row.token == ""
    assert row.resource == ["http://testserver" + MCP_PATH, "http://testserver" + SSE_PATH]

    again = exchange_code(signed_in, app, params["code"], verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_resource_named_by_the_client_is_what_the_token_is_bound_to(signed_in, app):
    verifier, challenge = pkce_pair()
    resource = "http://testserver" + MCP_PATH
    params = redirect_params(consent(signed_in, authorize_url(app, challenge, resource=resource)))
    body = exchange_code(signed_in, app, params["code"], verifier, resource=resource).json()
    row = stored_access_token(body["access_token"])
    assert row.resource == [resource]


def test_wrong_code_verifier_is_refused(signed_in, app):
    _verifier, challenge = pkce_pair()
    params = redirect_params(consent(signed_in, authorize_url(app, challenge)))
    response = exchange_code(signed_in, app, params["code"], "x" * 50)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_denied_request_redirects_with_access_denied_state_and_iss(signed_in, app):
    _verifier, challenge = pkce_pair()
    params = redirect_params(consent(signed_in, authorize_url(app, challenge), allow=False))
    assert params == {"error": "access_denied", "state": "state-123", "iss": ISSUER}


def test_plain_pkce_is_refused(signed_in, app):
    # RFC 9700 §2.1.1: S256 only.
    url = authorize_url(app, "a" * 43, code_challenge_method="plain")
    response = signed_in.get(url)
    if response.status_code == 200:  # refused when the code would be issued
        response = consent(signed_in, url)
    params = redirect_params(response)
    assert params["error"] == "invalid_request"
    assert params["iss"] == ISSUER
    assert not get_access_token_model().objects.exists()


def test_missing_pkce_is_refused(signed_in, app):
    response = signed_in.get(authorize_url(app, None, code_challenge_method=None))
    params = redirect_params(response)
    assert params["error"] == "invalid_request"
    assert params["iss"] == ISSUER


def test_implicit_response_type_token_is_refused(signed_in, app):
    # RFC 9700 §2.1.2: no implicit grant.
    _verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url(app, challenge, response_type="token"))
    params = redirect_params(response)
    assert params["error"] in ("unsupported_response_type", "unauthorized_client")
    assert "#" not in response["Location"] and "access_token" not in response["Location"]
    assert params["iss"] == ISSUER


def test_redirect_uri_one_character_off_is_refused_without_redirecting(signed_in, app):
    # RFC 9700 §2.1: exact string matching; an unregistered URI never receives a redirect.
    _verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url(app, challenge, redirect_uri=REDIRECT_URI + "x"))
    assert response.status_code == 400
    assert "Location" not in response
    assert b"invalid_request" in response.content or b"Mismatching redirect URI" in response.content


def test_unknown_client_is_refused_without_redirecting(signed_in, app):
    _verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url(app, challenge, client_id="nobody"))
    assert response.status_code in (400, 401)
    assert "Location" not in response


def test_resource_of_another_server_is_refused_with_invalid_target(signed_in, app):
    # RFC 8707 §2: this server issues tokens only for its own MCP endpoints.
    _verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url(app, challenge, resource="https://evil.example.com/mcp"))
    params = redirect_params(response)
    assert params["error"] == "invalid_target"
    assert params["state"] == "state-123"
    assert params["iss"] == ISSUER


def test_resource_swapped_in_the_consent_form_is_refused(signed_in, app):
    _verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge)
    data = consent_answer(signed_in.get(url))
    data["resource"] = "https://evil.example.com/mcp"
    response = signed_in.post(url, data)
    assert response.status_code == 400
    assert "Location" not in response
    assert not get_grant_model().objects.exists()


def test_refresh_rotates_and_replaying_an_old_refresh_token_revokes_the_family(signed_in, app):
    verifier, challenge = pkce_pair()
    params = redirect_params(consent(signed_in, authorize_url(app, challenge)))
    first = exchange_code(signed_in, app, params["code"], verifier).json()

    def refresh(refresh_token):
        return signed_in.post(
            "/o/token/", {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id}
        )

    second = refresh(first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    # The refreshed token keeps the resource binding.
    row = stored_access_token(second.json()["access_token"])
    assert row.resource == ["http://testserver" + MCP_PATH, "http://testserver" + SSE_PATH]

    replay = refresh(first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Reuse protection: the stolen-token family is revoked, including the newest refresh token.
    assert refresh(second.json()["refresh_token"]).json()["error"] == "invalid_grant"
    assert not get_refresh_token_model().objects.filter(revoked__isnull=True).exists()


def test_openid_grant_reads_userinfo_with_the_claims_its_scopes_release(signed_in, app):
    verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge, scope="openid mcp profile", nonce="n-1")
    params = redirect_params(consent(signed_in, url))
    body = exchange_code(signed_in, app, params["code"], verifier).json()
    assert body["id_token"]
    claims = signed_in.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").json()
    assert claims["username"] == "alice"
    assert "email" not in claims
