"""RFC 7591 registration open to anonymous agents, held to the redirect and metadata policy; RFC 7592 management."""

import json

import pytest
from oauth2_provider.models import get_application_model

from live.paths import REDIRECT_URI
from tests.authserver.helpers import AGENT, authorize_url, consent_answer, pkce_pair, register
from tests.factories import make_client, make_user

pytestmark = pytest.mark.django_db


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


def assert_refused(response, status, error):
    """A JSON error with RFC 7591's code, and nothing stored."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert not get_application_model().objects.exists()


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://agent.example.com/callback",
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox",
        "https://agent.example.com/cb#fragment",
        "https://*.example.com/cb",
        "https://agent.example.com/*",
        "https://user:secret@agent.example.com/cb",
        "https:///no-host",
        "/relative/callback",
        "callback",
        "madeup:/callback",
        "http://127.0.0.1:port/cb",
        "https://agent.example.com/a b",
        "https://agent.example.com/" + "a" * 2000,
    ],
)
def test_a_redirect_uri_outside_the_policy_is_refused_with_invalid_redirect_uri(client, redirect_uri):
    response = register(client, {**AGENT, "redirect_uris": ["http://127.0.0.1/ok", redirect_uri]})
    assert_refused(response, 400, "invalid_redirect_uri")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:0/cb",
        "http://localhost/callback",
        "http://localhost:8123/callback",
        "http://[::1]:9/cb",
        "https://agent.example.com/cb",
        "https://agent.example.com/cb?tenant=1",
        "cursor://anysphere.cursor-retrieval/oauth/user-abc/callback",
        "vscode://vscode.github-authentication/did-authenticate",
        "com.example.notes:/oauth2redirect",
    ],
)
def test_https_loopback_http_and_native_app_redirects_are_accepted(client, redirect_uri):
    assert register(client, {**AGENT, "redirect_uris": [redirect_uri]}).status_code == 201


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b'"a string"', 400),
        (b"\xff\xfe not utf-8", 400),
        (b"", 415),  # Django's test client sends no Content-Type with an empty body
        (json.dumps({**AGENT, "padding": "x" * (3 * 1024 * 1024)}).encode(), 413),
        (json.dumps({**AGENT, "client_name": "x" * (1024 * 1024)}).encode(), 413),
    ],
    ids=["malformed", "array", "string", "not-utf8", "empty", "3MB-body", "1MB-client-name"],
)
def test_a_body_that_is_not_a_reasonable_json_object_gets_a_json_error(client, body, status):
    response = client.post("/o/register/", body, content_type="application/json")
    assert_refused(response, status, "invalid_client_metadata")


@pytest.mark.parametrize(
    "changes",
    [
        {"client_name": "x" * 201},
        {"client_name": ["a list"]},
        {"grant_types": ["password"]},
        {"grant_types": ["client_credentials"]},
        {"grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"]},
        {"grant_types": ["refresh_token"]},
        {"grant_types": "authorization_code"},
        {"response_types": ["token"]},
        {"response_types": ["code", "token"]},
        {"response_types": []},
        {"token_endpoint_auth_method": "private_key_jwt_typo"},
    ],
    ids=lambda changes: next(iter(changes)) + "=" + str(next(iter(changes.values())))[:30],
)
def test_metadata_outside_the_policy_is_refused_with_invalid_client_metadata(client, changes):
    assert_refused(register(client, {**AGENT, **changes}), 400, "invalid_client_metadata")


def test_ten_thousand_redirect_uris_are_refused_as_too_large(client):
    uris = [f"http://127.0.0.1/cb{n}" for n in range(10_000)]
    assert_refused(register(client, {**AGENT, "redirect_uris": uris}), 413, "invalid_client_metadata")


def test_more_redirect_uris_than_the_cap_are_refused(client):
    uris = [f"http://127.0.0.1/cb{n}" for n in range(11)]
    assert_refused(register(client, {**AGENT, "redirect_uris": uris}), 400, "invalid_redirect_uri")
    assert register(client, {**AGENT, "redirect_uris": uris[:10]}).status_code == 201


def test_a_registration_without_redirect_uris_is_refused(client):
    metadata = {key: value for key, value in AGENT.items() if key != "redirect_uris"}
    assert_refused(register(client, metadata), 400, "invalid_redirect_uri")


def test_the_registration_endpoint_answers_a_wrong_method_with_json(client):
    response = client.get("/o/register/")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert response["Allow"] == "POST, OPTIONS"


def test_an_update_is_held_to_the_same_policy_and_changes_nothing_when_refused(client):
    body = register(client, AGENT).json()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {body['registration_access_token']}"}
    update = {**AGENT, "redirect_uris": ["javascript:alert(1)"]}
    response = client.put(f"/o/register/{body['client_id']}/", json.dumps(update), "application/json", **auth)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    stored = get_application_model().objects.get(client_id=body["client_id"])
    assert stored.redirect_uris == REDIRECT_URI


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("cursor://anysphere.cursor-retrieval/oauth/callback", "cursor://anysphere.cursor-retrieval/oauth/callback"),
        # Claude Code registers a portless localhost URI and listens on an ephemeral port.
        ("http://localhost/callback", "http://localhost:53123/callback"),
    ],
    ids=["native-app-scheme", "portless-localhost"],
)
def test_a_native_app_redirect_receives_the_code(client, registered, requested):
    app = make_client(redirect_uris=registered)
    client.force_login(make_user())
    _verifier, challenge = pkce_pair()
    url = authorize_url(app, challenge, redirect_uri=requested)
    page = client.get(url)
    assert page.status_code == 200
    assert client.post(url, consent_answer(page))["Location"].startswith(requested + "?code=")


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
