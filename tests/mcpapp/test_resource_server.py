"""The MCP endpoint as an OAuth protected resource: who gets in, and what each refusal says.

Runs the project's real ASGI application in-process (Django and the MCP app, with its lifespan)
and the MCP SDK's client over it; tokens are rows in DOT's table, stored hashed as DOT stores them.
"""

import time

import pytest

from live.paths import MCP_METADATA_PATH, MCP_PATH, SSE_PATH
from tests.factories import make_access_token, make_client, make_user
from tests.mcpapp.helpers import HEADERS, INITIALIZE, bearer, mcp_session, run_app

pytestmark = pytest.mark.django_db(transaction=True)


def post_initialize(token=None, *, path=MCP_PATH, **kwargs):
    headers = {**HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    return run_app(lambda http: http.post(path, json=INITIALIZE, headers=headers), **kwargs)


def call_whoami(token):
    return mcp_session(token, lambda client: client.call_tool("whoami", {}))


@pytest.fixture
def client_app():
    return make_client()


def assert_challenge(response, status, error=None):
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="http://testserver{MCP_METADATA_PATH}"' in challenge
    if error:
        assert f'error="{error}"' in challenge
        assert response.json()["error"] == error
    else:
        # RFC 6750 §3.1: no error code when the request carried no credentials.
        assert "error=" not in challenge


def test_request_without_token_gets_401_pointing_at_resource_metadata_with_the_base_scope_hint():
    response = post_initialize()
    assert_challenge(response, 401)
    # MCP authorization, scope selection: a client asks for what the challenge names.
    assert 'scope="mcp"' in response.headers["www-authenticate"]


def test_unknown_token_gets_401_invalid_token(alice, client_app):
    assert_challenge(post_initialize("not-a-token"), 401, "invalid_token")


def test_valid_token_is_served(alice, client_app):
    response = post_initialize(make_access_token(alice, client_app))
    assert response.status_code == 200
    assert '"serverInfo"' in response.text


def test_expired_token_gets_401(alice, client_app):
    token = make_access_token(alice, client_app, expires_in=600)
    assert post_initialize(token).status_code == 200
    # Eleven minutes later (the verifier's clock moves; nobody sleeps).
    assert_challenge(post_initialize(token, clock=lambda: time.time() + 660), 401, "invalid_token")


def test_token_expired_in_the_database_gets_401(alice, client_app):
    token = make_access_token(alice, client_app, expires_in=-1)
    assert_challenge(post_initialize(token), 401, "invalid_token")


def test_revoked_token_gets_401(alice, client_app, client):
    token = make_access_token(alice, client_app)
    assert post_initialize(token).status_code == 200
    # RFC 7009 revocation by the public client itself.
    response = client.post("/o/revoke_token/", {"token": token, "client_id": client_app.client_id})
    assert response.status_code == 200
    assert_challenge(post_initialize(token), 401, "invalid_token")


def test_token_for_another_resource_gets_401(alice, client_app):
    token = make_access_token(alice, client_app, resource=["https://other.example.com/mcp"])
    assert_challenge(post_initialize(token), 401, "invalid_token")


def test_token_for_a_sibling_path_gets_401(alice, client_app):
    # RFC 8707 prefix matching is by path segment: /star/mcpx is not /star/mcp.
    token = make_access_token(alice, client_app, resource=["http://testserver/star/mcpx"])
    assert_challenge(post_initialize(token), 401, "invalid_token")


def test_token_bound_to_no_resource_gets_401(alice, client_app):
    # DOT treats an empty resource list as "anywhere"; this endpoint does not.
    token = make_access_token(alice, client_app, resource=[])
    assert_challenge(post_initialize(token), 401, "invalid_token")


def test_token_for_the_mcp_endpoint_is_refused_on_the_sse_endpoint(alice, client_app):
    token = make_access_token(alice, client_app, resource=["http://testserver" + MCP_PATH])
    response = run_app(lambda http: http.get(SSE_PATH, headers={"Authorization": f"Bearer {token}"}))
    assert response.status_code == 401
    assert "oauth-protected-resource/star/sse" in response.headers["www-authenticate"]


def test_token_of_a_deactivated_user_gets_401(alice, client_app):
    token = make_access_token(alice, client_app)
    alice.is_active = False
    alice.save()
    assert_challenge(post_initialize(token), 401, "invalid_token")


def test_token_of_a_client_an_operator_disabled_gets_401(alice, client_app):
    token = make_access_token(alice, client_app, scope="mcp")
    type(client_app).objects.filter(pk=client_app.pk).update(is_active=False)  # tokens left behind
    assert_challenge(post_initialize(token), 401, "invalid_token")


def test_token_without_the_base_scope_gets_403_insufficient_scope(alice, client_app):
    token = make_access_token(alice, client_app, scope="profile email")
    response = post_initialize(token)
    assert_challenge(response, 403, "insufficient_scope")
    # A 2025-11-25 client (initialize) is told what it holds too, so re-authorizing loses nothing.
    assert 'scope="profile email mcp"' in response.headers["www-authenticate"]


def test_whoami_returns_profile_and_email_claims_when_granted(alice, client_app):
    result = call_whoami(make_access_token(alice, client_app, scope="mcp profile email"))
    claims = result.structured_content
    assert claims["sub"] == str(alice.pk)
    assert claims["username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["email"] == "alice@example.com"


def test_whoami_without_email_scope_never_shows_the_email(alice, client_app):
    claims = call_whoami(make_access_token(alice, client_app, scope="mcp profile")).structured_content
    assert claims["username"] == "alice"
    assert "email" not in claims
    assert "alice@example.com" not in str(claims)


def test_whoami_with_only_the_base_scope_is_refused_with_a_profile_challenge(alice, client_app):
    token = make_access_token(alice, client_app, scope="mcp")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    response = run_app(lambda http: http.post(MCP_PATH, json=call, headers={**HEADERS, **bearer(token)}))
    assert_challenge(response, 403, "insufficient_scope")
    assert 'scope="mcp profile"' in response.headers["www-authenticate"]
    assert str(alice.pk) not in response.text


def test_unknown_path_under_the_mount_answers_json_404():
    response = run_app(lambda http: http.get("/star/nothing"))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_unexpected_error_is_answered_with_a_json_500_not_a_page(alice, client_app):
    def broken_clock():
        raise RuntimeError("a bug in the server")

    response = post_initialize(make_access_token(alice, client_app), clock=broken_clock, raise_app_exceptions=False)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "server_error"
    assert "a bug" not in response.text


def test_host_outside_allowed_hosts_is_refused_with_json():
    response = run_app(lambda http: http.post(MCP_PATH, json=INITIALIZE, headers={**HEADERS, "Host": "evil.example"}))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_stateful_session_answers_only_the_credential_that_opened_it(alice, client_app, settings):
    """The SDK binds a session to the authenticated user the gate leaves in the request (``scope["user"]``):
    another person's valid token holding the session id gets 404, as if it did not exist."""
    settings.MCPAPP = {**settings.MCPAPP, "STATELESS_HTTP": False}
    alices = make_access_token(alice, client_app)
    bobs = make_access_token(make_user("bob"), client_app)
    tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    async def interaction(http):
        opened = await http.post(MCP_PATH, json=INITIALIZE, headers={**HEADERS, **bearer(alices)})
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        as_bob = await http.post(MCP_PATH, json=tools_list, headers={**HEADERS, **session, **bearer(bobs)})
        as_alice = await http.post(MCP_PATH, json=tools_list, headers={**HEADERS, **session, **bearer(alices)})
        return as_bob, as_alice

    as_bob, as_alice = run_app(interaction)
    assert as_bob.status_code == 404
    assert "whoami" not in as_bob.text
    assert as_alice.status_code == 200
    assert "whoami" in as_alice.text
