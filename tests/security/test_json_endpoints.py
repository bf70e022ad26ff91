"""JSON endpoints answer JSON, always: also when Django itself refuses the request (a Host it does not
serve, too many form fields, a path that does not exist), in production and with DEBUG on."""

import pytest
from django.test import Client, override_settings

from live.paths import MCP_METADATA_PATH
from tests.authserver.helpers import basic_auth
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

JSON_ENDPOINTS = [
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/.well-known/openid-configuration"),
    ("get", MCP_METADATA_PATH),
    ("get", "/.well-known/jwks.json"),
    ("post", "/o/token/"),
    ("post", "/o/revoke_token/"),
    ("post", "/o/introspect/"),
    ("get", "/o/userinfo/"),
    ("post", "/o/register/"),
    ("get", "/o/register/some-client/"),
]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_a_host_this_site_does_not_serve_gets_a_json_400_rfc6749_5_2(client, method, path, debug):
    with override_settings(DEBUG=debug):
        response = getattr(client, method)(path, HTTP_HOST="evil.example")
    assert_json_error(response, 400, "invalid_request")


@pytest.mark.parametrize("path", ["/o/nothing-here/", "/.well-known/nothing-here"])
@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_an_unknown_address_under_the_json_endpoints_gets_a_json_404(client, path, debug):
    with override_settings(DEBUG=debug):
        assert_json_error(client.get(path), 404, "not_found")


def test_too_many_form_fields_at_the_token_endpoint_get_a_json_400(client):
    body = "&".join(f"field{number}=x" for number in range(1_500))
    response = client.post("/o/token/", body, content_type="application/x-www-form-urlencoded")
    assert_json_error(response, 400, "invalid_request")


def test_a_page_for_people_keeps_its_html_error(client):
    with override_settings(DEBUG=False):
        response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/o/token/", "/o/revoke_token/", "/o/introspect/", "/o/register/", "/o/userinfo/"])
def test_api_endpoints_are_not_refused_as_cross_site_form_posts(path):
    # Clients call these with credentials of their own, never cookies: Django's CSRF check would
    # answer 403 (as introspection did), so each is exempt, and each answers its own error.
    response = Client(enforce_csrf_checks=True).post(path, {"token": "x"})
    assert response.status_code != 403
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("path", "data", "headers"),
    [
        ("/o/token/", {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "a\x00b"}, {}),
        ("/o/introspect/", {"token": "x"}, basic_auth("\x00", "")),
        ("/o/revoke_token/", {"token": "x", "client_id": "\x00"}, {}),
    ],
    ids=["token-body", "introspect-basic", "revoke-body"],
)
def test_a_nul_in_a_client_id_is_no_client_not_a_500_rfc6749_appendix_a1(client, path, data, headers):
    # PostgreSQL cannot even compare a string holding NUL: DOT let psycopg 3's DataError through.
    response = client.post(path, data, **headers)
    assert 400 <= response.status_code < 500
    assert response["Content-Type"].startswith("application/json")


def test_a_nul_in_the_authorization_requests_client_id_is_an_error_page_not_a_500(client, alice):
    client.force_login(alice)
    response = client.get("/o/authorize/?response_type=code&client_id=a%00b&redirect_uri=http://127.0.0.1/cb")
    assert response.status_code == 400
    assert "Location" not in response
