"""Token introspection (RFC 7662) as an attacker tries it: with a public client's empty secret, with a
client they registered themselves, with the token in the URL; and as the resource server it is for."""

import logging

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from oauth2_provider.models import get_application_model

from live.paths import MCP_PATH
from tests.authserver.helpers import AGENT, basic_auth, register
from tests.factories import RESOURCE_SERVER_SECRET, make_access_token, make_client, make_resource_server, make_user
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def resource_server():
    """A confidential client an operator allowed to introspect (Admin → Clients → may introspect)."""
    return make_resource_server(name="MCP gateway")


@pytest.fixture
def victims_token(alice):
    return make_access_token(alice, make_client(name="Alice's agent"), scope="mcp profile")


def introspect(client, token, **credentials):
    return client.post("/o/introspect/", {"token": token, **credentials.pop("body", {})}, **credentials)


def assert_refused_as_invalid_client(response):
    # RFC 7662 §2.3 / RFC 6749 §5.2: the caller did not authenticate as a client allowed to introspect.
    assert_json_error(response, 401, "invalid_client")
    assert "active" not in response.json()


def test_a_public_client_cannot_introspect_with_its_empty_secret_in_basic_auth_rfc7662_2_1(client, victims_token):
    attacker = make_client(name="Attacker's public client")
    assert_refused_as_invalid_client(introspect(client, victims_token, **basic_auth(attacker.client_id, "")))


def test_a_public_client_cannot_introspect_with_its_client_id_alone_rfc7662_2_1(client, victims_token):
    attacker = make_client(name="Attacker's public client")
    for body in ({"client_id": attacker.client_id}, {"client_id": attacker.client_id, "client_secret": ""}):
        assert_refused_as_invalid_client(introspect(client, victims_token, body=body))


def test_a_client_that_registered_itself_as_confidential_cannot_introspect_other_peoples_tokens_rfc7662_4(
    client, victims_token
):
    registered = register(client, {**AGENT, "token_endpoint_auth_method": "client_secret_basic"}).json()
    credentials = basic_auth(registered["client_id"], registered["client_secret"])
    assert_refused_as_invalid_client(introspect(client, victims_token, **credentials))
    # Not even its own tokens: introspection is for resource servers an operator trusts.
    its_client = get_application_model().objects.get(client_id=registered["client_id"])
    own = make_access_token(make_user("mallory"), its_client)
    assert_refused_as_invalid_client(introspect(client, own, **credentials))


def test_an_access_token_is_not_a_credential_for_introspection_rfc7662_2_1(client, alice, victims_token):
    # DOT's view also let a bearer token with the `introspection` scope in.
    bearer = make_access_token(alice, make_client(), scope="introspection mcp")
    response = introspect(client, victims_token, HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert_refused_as_invalid_client(response)


def test_an_allowed_resource_server_introspects_by_form_post_even_with_csrf_checks_rfc7662_2_1(
    resource_server, victims_token, alice
):
    # A resource server posts a form with no cookie and no CSRF token: that must work (it got 403 HTML).
    browserless = Client(enforce_csrf_checks=True)
    response = introspect(browserless, victims_token, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET))
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    claims = response.json()
    assert claims["active"] is True
    assert claims["scope"] == "mcp profile"
    assert claims["sub"] == str(alice.pk) and claims["username"] == "alice"
    assert claims["token_type"] == "Bearer" and claims["iss"] == "http://testserver"
    assert claims["aud"] == ["http://testserver" + MCP_PATH]
    assert claims["exp"] > claims["iat"]


def test_a_resource_server_must_use_the_authentication_method_it_registered_rfc6749_2_3(
    client, resource_server, victims_token
):
    # Registered client_secret_basic (the default); the same secret in the body is another method.
    body = {"client_id": resource_server.client_id, "client_secret": RESOURCE_SERVER_SECRET}
    assert_refused_as_invalid_client(introspect(client, victims_token, body=body))
    # And two methods in one request are refused, even when both are right (RFC 6749 §2.3).
    both = introspect(client, victims_token, body=body, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET))
    assert_refused_as_invalid_client(both)


def test_a_token_in_the_introspection_url_is_refused_and_never_logged_rfc7662_2_1(
    client, resource_server, victims_token, caplog
):
    caplog.set_level(logging.DEBUG)
    response = client.get(
        f"/o/introspect/?token={victims_token}", **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET)
    )
    assert_json_error(response, 405, "invalid_request")
    assert response["Allow"] == "POST, OPTIONS"
    assert victims_token not in caplog.text


@pytest.mark.parametrize("change", ["expired", "deactivated person", "disabled client"])
def test_a_token_that_no_longer_works_introspects_as_inactive_rfc7662_2_2(client, resource_server, alice, change):
    app = make_client()
    token = make_access_token(alice, app, expires_in=-1 if change == "expired" else 3600)
    if change == "deactivated person":
        type(alice).objects.filter(pk=alice.pk).update(is_active=False)  # no signal: checked where it is used
    if change == "disabled client":
        type(app).objects.filter(pk=app.pk).update(is_active=False)
    response = introspect(client, token, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET))
    assert response.json() == {"active": False}


def test_a_registration_access_token_introspects_as_inactive_rfc7662_2_2(client, resource_server):
    # An RFC 7592 credential for the registration endpoint, not a token for any resource.
    registration_token = register(client, AGENT).json()["registration_access_token"]
    response = introspect(client, registration_token, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET))
    assert response.json() == {"active": False}


def test_the_metadata_never_offers_none_for_introspection_rfc8414_2(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]


def test_a_self_registered_client_cannot_be_allowed_to_introspect_even_by_mistake(client, victims_token):
    registered = register(client, {**AGENT, "token_endpoint_auth_method": "client_secret_basic"}).json()
    its_client = get_application_model().objects.get(client_id=registered["client_id"])
    its_client.may_introspect = True
    with pytest.raises(ValidationError) as refused:  # the admin's form says so
        its_client.full_clean()
    assert "may_introspect" in refused.value.message_dict
    its_client.save()  # and a row written anyway is still refused
    credentials = basic_auth(registered["client_id"], registered["client_secret"])
    assert_refused_as_invalid_client(introspect(client, victims_token, **credentials))
