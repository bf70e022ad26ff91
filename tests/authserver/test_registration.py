"""RFC 7591 registration open to anonymous agents, RFC 7592 management, the loopback redirect rule."""

import json

import pytest
from oauth2_provider.models import get_application_model

from tests.authserver.helpers import authorize_url, consent_answer, pkce_pair
from tests.factories import make_client, make_user

pytestmark = pytest.mark.django_db

AGENT = {
    "client_name": "Claude-style agent",
    "redirect_uris": ["http://127.0.0.1:51234/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


def register(client, metadata):
    return client.post("/o/register/", json.dumps(metadata), content_type="application/json")


def test_anonymous_agent_registers_as_a_public_client(client):
    response = register(client, AGENT)
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["registration_access_token"]
    assert body["registration_client_uri"] == f"http://testserver/o/register/{body['client_id']}/"
    stored = get_application_model().objects.get(client_id=body["client_id"])
    assert stored.registration_source == "dcr"
    assert stored.client_type == "public"


def test_registration_management_reads_and_deletes_with_the_registration_token(client):
    body = register(client, AGENT).json()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {body['registration_access_token']}"}
    read = client.get(f"/o/register/{body['client_id']}/", **auth)
    assert read.status_code == 200
    assert read.json()["client_name"] == "Claude-style agent"

    refused = client.get(f"/o/register/{body['client_id']}/")
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/json"
    assert refused["WWW-Authenticate"].startswith("Bearer")

    assert client.delete(f"/o/register/{body['client_id']}/", **auth).status_code == 204
    assert not get_application_model().objects.filter(client_id=body["client_id"]).exists()


def test_http_redirect_to_a_non_loopback_host_is_refused_and_nothing_is_stored(client):
    response = register(client, {**AGENT, "redirect_uris": ["http://agent.example.com/callback"]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert not get_application_model().objects.exists()


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1/callback",
        "http://localhost:8123/callback",
        "http://[::1]:9/cb",
        "https://agent.example.com/cb",
    ],
)
def test_https_and_loopback_http_redirects_are_accepted(client, redirect_uri):
    assert register(client, {**AGENT, "redirect_uris": [redirect_uri]}).status_code == 201


def test_malformed_registration_gets_a_json_error(client):
    response = client.post("/o/register/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_loopback_redirect_matches_on_any_port(client):
    # RFC 8252 §7.3: the native app picks its port when it starts listening.
    app = make_client(redirect_uris="http://127.0.0.1/callback")
    client.force_login(make_user())
    _verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge, redirect_uri="http://127.0.0.1:61999/callback")
    page = client.get(url)
    assert page.status_code == 200
    response = client.post(url, consent_answer(page))
    assert response["Location"].startswith("http://127.0.0.1:61999/callback?code=")


def test_userinfo_answers_a_bad_token_with_json(client):
    response = client.get("/o/userinfo/", HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
