"""Token, revocation and introspection endpoints: what they accept, and JSON refusals for the rest."""

import pytest
from oauth2_provider.models import get_application_model

from tests.authserver.helpers import basic_auth
from tests.factories import RESOURCE_SERVER_SECRET, make_access_token, make_client, make_resource_server, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def resource_server():
    return make_resource_server()


def test_password_grant_is_refused_even_for_a_password_client(client):
    # RFC 9700 §2.4: the resource owner password credentials grant MUST NOT be used.
    alice = make_user("alice")
    Application = get_application_model()
    app = Application.objects.create(name="legacy", client_type="public", authorization_grant_type="password")
    response = client.post(
        "/o/token/",
        {
            "grant_type": "password",
            "username": alice.username,
            "password": "correct horse battery staple",
            "client_id": app.client_id,
        },
    )
    assert response.status_code == 400
    assert "access_token" not in response.json()


@pytest.mark.parametrize(
    "body", ["garbage", "grant_type=authorization_code", "grant_type=refresh_token&refresh_token=x"]
)
def test_bad_token_requests_get_json_errors(client, body):
    response = client.post("/o/token/", body, content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_introspection_reports_an_active_token_to_an_authenticated_client(client, resource_server):
    token = make_access_token(make_user("alice"), make_client(), scope="mcp profile")
    response = client.post(
        "/o/introspect/", {"token": token}, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET)
    )
    assert response.status_code == 200
    assert response.json()["active"] is True
    assert response.json()["scope"] == "mcp profile"


def test_introspection_without_client_authentication_gets_a_json_401(client):
    token = make_access_token(make_user("alice"), make_client())
    response = client.post("/o/introspect/", {"token": token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_revoked_token_introspects_as_inactive(client, resource_server):
    app = make_client()
    token = make_access_token(make_user("alice"), app)
    assert client.post("/o/revoke_token/", {"token": token, "client_id": app.client_id}).status_code == 200
    response = client.post(
        "/o/introspect/", {"token": token}, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET)
    )
    assert response.json() == {"active": False}
