"""The MCP Python SDK's own OAuth client against the real server: the whole flow, end to end.

401 → RFC 9728 metadata → RFC 8414 metadata → RFC 7591 registration → authorize (PKCE, resource)
→ login → consent → token → tools/list → tools/call whoami.
"""

from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.conftest import PASSWORD
from tests.e2e.person import Person

REDIRECT_URI = "http://127.0.0.1:33418/callback"


class MemoryStorage:
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Agent:
    """An MCP client application: the SDK's OAuth provider, with a person at the browser."""

    def __init__(self, server_url: str, person: Person):
        self.person = person
        self.storage = MemoryStorage()
        self.callbacks: list[dict[str, str]] = []
        self.oauth = OAuthClientProvider(
            server_url=server_url,
            client_metadata=OAuthClientMetadata(
                client_name="SDK test agent",
                redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=self.storage,
            redirect_handler=self._open_browser,
            callback_handler=self._receive_callback,
        )

    async def _open_browser(self, authorization_url: str) -> None:
        self.authorization_url = authorization_url
        self.callbacks.append(await anyio.to_thread.run_sync(self.person.authorize, authorization_url))

    async def _receive_callback(self) -> AuthorizationCodeResult:
        params = self.callbacks[-1]
        assert params.get("_redirect_uri") == REDIRECT_URI
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


async def _run_session(transport, mode: str):
    async with Client(transport, mode=mode) as client:
        tools = await client.list_tools()
        result = await client.call_tool("whoami", {})
        return tools, result


def run_flow(server_url: str, *, mode: str = "legacy", sse: bool = False, person=None, client_id=None):
    agent = Agent(server_url, person or Person("alice", PASSWORD))
    if client_id:  # a client the operator registered: the agent skips registration
        agent.storage.client_info = OAuthClientInformationFull(
            client_id=client_id,
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        )

    async def main():
        http = httpx2.AsyncClient(auth=agent.oauth, timeout=30)
        transport = (
            sse_client(server_url, auth=agent.oauth) if sse else streamable_http_client(server_url, http_client=http)
        )
        async with http:
            return await _run_session(transport, mode)

    tools, result = anyio.run(main)
    return agent, tools, result


def _whoami(result) -> dict:
    assert not result.is_error, result
    return result.structured_content


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"], ids=["protocol-2025-11-25", "protocol-2026-07-28"])
def test_sdk_client_completes_the_whole_flow_and_sees_who_the_user_is(running_server, mode):
    agent, tools, result = run_flow(running_server.url + "/star/mcp", mode=mode)

    # The person was asked to sign in, then to consent, and the agent received a code with `iss`.
    assert agent.person.pages == ["/accounts/login/", "/o/authorize/"]
    assert agent.callbacks[-1]["iss"] == running_server.url
    # It registered itself (RFC 7591) and asked for this endpoint as the resource (RFC 8707).
    assert agent.storage.client_info.client_id
    request = parse_qs(urlsplit(agent.authorization_url).query)
    assert request["resource"] == [running_server.url + "/star/mcp"]
    assert request["code_challenge_method"] == ["S256"]
    assert "whoami" in [tool.name for tool in tools.tools]
    claims = _whoami(result)
    assert claims["username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["email"] == "alice@example.com"
    assert claims["client_id"] == agent.storage.client_info.client_id


def test_sdk_client_completes_the_flow_over_the_legacy_sse_transport(running_server):
    _agent, _tools, result = run_flow(running_server.url + "/star/sse", sse=True)
    assert _whoami(result)["username"] == "alice"


def test_sdk_client_completes_the_flow_when_site_url_is_set(running_server_with_site_url):
    server = running_server_with_site_url
    site_url = server.env["SITE_URL"]
    agent, _tools, result = run_flow(site_url + "/star/mcp")

    assert agent.callbacks[-1]["iss"] == site_url
    assert str(agent.oauth.context.oauth_metadata.issuer) == site_url
    assert _whoami(result)["username"] == "alice"


def test_third_party_agent_granted_profile_but_not_email_never_sees_the_email(running_server):
    person = Person("alice", PASSWORD, untick=("email",))
    agent, _tools, result = run_flow(running_server.url + "/star/mcp", person=person)

    assert "SDK test agent" in person.consent_pages[0]
    claims = _whoami(result)
    assert claims["username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert "email" not in claims
    assert "alice@example.com" not in str(result)
    assert agent.storage.tokens.scope == "mcp profile"


def test_first_party_app_gets_what_it_asked_for_without_a_consent_page(running_server):
    out = running_server.manage("create_client", "Official mail app", "--first-party", "--redirect-uri", REDIRECT_URI)
    client_id = out.split("client_id: ")[1].split()[0]
    agent, _tools, result = run_flow(running_server.url + "/star/mcp", client_id=client_id)

    assert agent.person.pages == ["/accounts/login/"]  # signed in, never asked
    claims = _whoami(result)
    assert claims["email"] == "alice@example.com"
    assert claims["client_id"] == client_id
