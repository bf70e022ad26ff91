"""The MCP endpoint as an attacker reaches it: two credentials in one request, a hostile page in the
person's browser (Origin), a made-up Host. Runs the project's real ASGI application in-process."""

import pytest
from django.conf import settings
from django.test import override_settings

from live.paths import MCP_PATH
from tests.factories import make_access_token, make_client
from tests.mcpapp.helpers import HEADERS, INITIALIZE, bearer, run_app

pytestmark = pytest.mark.django_db(transaction=True)  # the endpoint reads tokens from its own threads


@pytest.fixture
def token(alice):
    return make_access_token(alice, make_client())


def post(headers, *, method="POST"):
    """The endpoint's answer to one request with these headers (an initialize, for POST)."""
    if method == "POST":
        return run_app(lambda http: http.post(MCP_PATH, json=INITIALIZE, headers={**HEADERS, **headers}))
    return run_app(lambda http: http.request(method, MCP_PATH, headers=headers))


def test_two_authorization_headers_are_refused_not_the_first_one_served_rfc6750_2(token):
    response = run_app(
        lambda http: http.post(
            MCP_PATH,
            json=INITIALIZE,
            headers=[*HEADERS.items(), ("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")],
        )
    )
    # RFC 6750 §3.1: invalid_request, 400.
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert "serverInfo" not in response.text


def test_a_page_of_another_origin_is_refused_even_with_a_valid_token_mcp_transport_origin(token):
    # MCP transport (2025-11-25, "Security Warning"): validate Origin, 403 when present and not allowed.
    response = post({**bearer(token), "Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Requests from this origin are not allowed"
    assert response.json()["id"] is None


@pytest.mark.parametrize("origin", ["null", "", "http://testserver.evil.example", "http://localhost:6274"])
def test_other_origins_are_refused_in_production_mcp_transport_origin(token, origin):
    with override_settings(DEBUG=False):
        assert post({**bearer(token), "Origin": origin}).status_code == 403


def test_a_cors_preflight_from_another_origin_is_refused_too(token):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = post(preflight, method="OPTIONS")
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_no_origin_the_sites_own_and_listed_origins_are_served(token):
    assert post(bearer(token)).status_code == 200  # not a browser: no Origin
    assert post({**bearer(token), "Origin": "http://testserver"}).status_code == 200
    with override_settings(DEBUG=False, MCPAPP={**settings.MCPAPP, "ALLOWED_ORIGINS": ["https://app.example.com"]}):
        assert post({**bearer(token), "Origin": "https://app.example.com"}).status_code == 200


def test_loopback_origins_are_served_while_debug_is_on_for_mcp_inspector(token):
    with override_settings(DEBUG=True):
        response = post({**bearer(token), "Origin": "http://localhost:6274"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_made_up_host_is_answered_with_json(token):
    response = post({**bearer(token), "Host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
