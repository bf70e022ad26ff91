"""Browser-based MCP clients (the MCP Inspector's older releases, web agents) call discovery and the
token endpoints cross-origin; a browser first asks (a CORS preflight) whether it may send the
headers MCP clients send, ``MCP-Protocol-Version`` among them. Pages people use are not opened."""

import pytest

from live.paths import MCP_METADATA_PATH

pytestmark = pytest.mark.django_db

ORIGIN = "http://localhost:6274"


def preflight(client, path, headers):
    return client.options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET" if path.startswith("/.well-known") else "POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server",
        MCP_METADATA_PATH,
        "/.well-known/openid-configuration",
        "/o/register/",
        "/o/token/",
    ],
)
def test_a_browser_may_send_mcp_headers_to_discovery_registration_and_token_endpoints(client, path):
    response = preflight(client, path, "mcp-protocol-version, content-type")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {name.strip().lower() for name in response["Access-Control-Allow-Headers"].split(",")}
    assert {"mcp-protocol-version", "content-type", "authorization"} <= allowed
    # No cookies cross origins: tokens and PKCE only.
    assert "Access-Control-Allow-Credentials" not in response


def test_the_metadata_answer_itself_can_be_read_by_a_page_of_another_origin(client):
    response = client.get(
        "/.well-known/oauth-authorization-server", HTTP_ORIGIN=ORIGIN, HTTP_MCP_PROTOCOL_VERSION="2025-11-25"
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize("path", ["/o/authorize/", "/accounts/login/", "/admin/login/"])
def test_pages_people_use_are_not_opened_to_other_origins(client, path):
    response = client.get(path, HTTP_ORIGIN=ORIGIN)

    assert "Access-Control-Allow-Origin" not in response
