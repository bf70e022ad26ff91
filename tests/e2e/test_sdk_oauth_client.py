"""The MCP Python SDK's own OAuth client against the real server: the whole flow, end to end.

401 → RFC 9728 metadata → RFC 8414 metadata → RFC 7591 registration → authorize (PKCE, resource)
→ login → consent → token → tools/list → tools/call whoami, which needs `profile` and so steps
the client up once (403 insufficient_scope → re-authorize → retry).
"""

from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from tests.conftest import PASSWORD
from tests.e2e.agent import REDIRECT_URI, Agent
from tests.e2e.person import Person


def run_flow(server_url: str, *, mode: str = "legacy", sse: bool = False, person=None, client_id=None):
    agent = Agent(server_url, person or Person("alice", PASSWORD))
    if client_id:
        agent.use_registered_client(client_id)

    async def main():
        async with agent.connect(mode=mode, sse=sse) as client:
            return await client.list_tools(), await client.call_tool("whoami", {})

    tools, result = anyio.run(main)
    return agent, tools, result


def _whoami(result) -> dict:
    assert not result.is_error, result
    return result.structured_content


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"], ids=["protocol-2025-11-25", "protocol-2026-07-28"])
def test_sdk_client_completes_the_whole_flow_and_sees_who_the_user_is(running_server, mode):
    agent, tools, result = run_flow(running_server.url + "/star/mcp", mode=mode)

    # Signed in, consented to the base scope, then to `profile` when whoami asked for it.
    assert agent.person.pages == ["/accounts/login/", "/o/authorize/", "/o/authorize/"]
    assert agent.callbacks[-1]["iss"] == running_server.url
    # It registered itself (RFC 7591) and asked for this endpoint as the resource (RFC 8707).
    assert agent.storage.client_info.client_id
    request = parse_qs(urlsplit(agent.authorization_url).query)
    assert request["resource"] == [running_server.url + "/star/mcp"]
    assert request["code_challenge_method"] == ["S256"]
    assert request["scope"] == ["mcp profile"]
    assert "whoami" in [tool.name for tool in tools.tools]
    claims = _whoami(result)
    assert claims["username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["client_id"] == agent.storage.client_info.client_id
    # Nobody asked for `email`, so the agent never got it.
    assert "email" not in claims
    assert agent.storage.tokens.scope == "mcp profile"


def test_sdk_client_completes_the_flow_over_the_legacy_sse_transport(running_server):
    agent, _tools, result = run_flow(running_server.url + "/star/sse", sse=True)
    assert _whoami(result)["username"] == "alice"
    assert agent.storage.tokens.scope == "mcp profile"


def test_sdk_client_completes_the_flow_when_site_url_is_set(running_server_with_site_url):
    server = running_server_with_site_url
    site_url = server.env["SITE_URL"]
    agent, _tools, result = run_flow(site_url + "/star/mcp")

    assert agent.callbacks[-1]["iss"] == site_url
    assert str(agent.oauth.context.oauth_metadata.issuer) == site_url
    assert _whoami(result)["username"] == "alice"


def test_first_party_app_steps_up_without_ever_showing_a_consent_page(running_server):
    out = running_server.manage("create_client", "Official mail app", "--first-party", "--redirect-uri", REDIRECT_URI)
    client_id = out.split("client_id: ")[1].split()[0]
    agent, _tools, result = run_flow(running_server.url + "/star/mcp", client_id=client_id)

    assert agent.person.pages == ["/accounts/login/"]  # signed in, never asked
    claims = _whoami(result)
    assert claims["username"] == "alice"
    assert claims["client_id"] == client_id
