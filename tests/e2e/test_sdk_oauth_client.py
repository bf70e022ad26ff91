"""The MCP Python SDK's own OAuth client against the real server: the whole flow, end to end.

401 → RFC 9728 metadata → RFC 8414 metadata → the client identifies itself → authorize (PKCE,
resource) → login → consent → token → tools/list → tools/call whoami, which needs `profile` and so
steps the client up once (403 insufficient_scope → re-authorize → retry).

The client identifies itself either by RFC 7591 registration or, when it has a Client ID Metadata
Document and the server advertises ``client_id_metadata_document_supported``, by that document's
URL as its client_id. Both ways run with the 2025-11-25 protocol and with 2026-07-28.
"""

import threading
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from live.paths import MCP_PATH, SSE_PATH
from live.person import Person
from tests.authserver.document_server import SERVER_SOCKET_TIMEOUT_SECONDS, DocumentServer, throwaway_tls
from tests.conftest import PASSWORD, start_server_with_alice
from tests.e2e.agent import REDIRECT_URI, Agent

PROTOCOL_MODES = pytest.mark.parametrize(
    "mode", ["legacy", "2026-07-28"], ids=["protocol-2025-11-25", "protocol-2026-07-28"]
)


def run_agent(agent: Agent, *, mode: str = "legacy", sse: bool = False):
    """Connect, list the tools and call whoami; returns both answers."""

    async def main():
        async with agent.connect(mode=mode, sse=sse) as client:
            return await client.list_tools(), await client.call_tool("whoami", {})

    return anyio.run(main)


def run_flow(server_url: str, *, mode: str = "legacy", sse: bool = False, person=None, client_id=None):
    agent = Agent(server_url, person or Person("alice", PASSWORD))
    if client_id:
        agent.use_registered_client(client_id)
    tools, result = run_agent(agent, mode=mode, sse=sse)
    return agent, tools, result


def _whoami(result) -> dict:
    assert not result.is_error, result
    return result.structured_content


@PROTOCOL_MODES
def test_sdk_client_completes_the_whole_flow_and_sees_who_the_user_is(running_server, mode):
    """A client that registers itself (RFC 7591) gets a token for the endpoint and acts for alice."""
    agent, tools, result = run_flow(running_server.url + MCP_PATH, mode=mode)

    # Signed in, consented to the base scope, then to `profile` when whoami asked for it.
    assert agent.person.pages == ["/accounts/login/", "/o/authorize/", "/o/authorize/"]
    assert agent.callbacks[-1]["iss"] == running_server.url
    # It registered itself (RFC 7591), once, and asked for this endpoint as the resource (RFC 8707).
    assert agent.requests("POST", "/o/register/") == [201]
    assert agent.storage.client_info.client_id
    request = parse_qs(urlsplit(agent.authorization_url).query)
    assert request["resource"] == [running_server.url + MCP_PATH]
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
    agent, _tools, result = run_flow(running_server.url + SSE_PATH, sse=True)
    assert _whoami(result)["username"] == "alice"
    assert agent.storage.tokens.scope == "mcp profile"


def test_sdk_client_completes_the_flow_when_site_url_is_set(running_server_with_site_url):
    server = running_server_with_site_url
    site_url = server.env["SITE_URL"]
    agent, _tools, result = run_flow(site_url + MCP_PATH)

    assert agent.callbacks[-1]["iss"] == site_url
    assert str(agent.oauth.context.oauth_metadata.issuer) == site_url
    assert _whoami(result)["username"] == "alice"


def test_first_party_app_steps_up_without_ever_showing_a_consent_page(running_server):
    out = running_server.manage("create_client", "Official mail app", "--first-party", "--redirect-uri", REDIRECT_URI)
    client_id = out.split("client_id: ")[1].split()[0]
    agent, _tools, result = run_flow(running_server.url + MCP_PATH, client_id=client_id)

    assert agent.person.pages == ["/accounts/login/"]  # signed in, never asked
    claims = _whoami(result)
    assert claims["username"] == "alice"
    assert claims["client_id"] == client_id


# --- Client ID Metadata Documents ------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent_website(tmp_path_factory):
    """The agent's website: HTTPS on 127.0.0.1, its certificate signed by a CA made for this run."""
    tls = throwaway_tls(tmp_path_factory.mktemp("agent-website-tls"))
    website = DocumentServer(tls["server_context"])
    website.ca_path = tls["ca_path"]
    thread = threading.Thread(target=website.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield website
    website.shutdown()
    website.server_close()
    thread.join(timeout=SERVER_SOCKET_TIMEOUT_SECONDS)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def server_fetching_from_loopback(tmp_path_factory, agent_website):
    """The real server, allowed to fetch metadata documents from loopback and trusting the test CA
    (``tests.settings_cimd_loopback``; production refuses both)."""
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings_cimd_loopback", "SSL_CERT_FILE": agent_website.ca_path}
    server = start_server_with_alice(tmp_path_factory, "live-cimd", env=env)
    yield server
    server.stop()


@PROTOCOL_MODES
def test_sdk_client_identifies_itself_with_its_metadata_document_instead_of_registering(
    server_fetching_from_loopback, agent_website, mode
):
    """draft-ietf-oauth-client-id-metadata-document: the server advertises support, so the SDK uses the
    document's URL as client_id and never registers; the server fetches the document, shows its name
    on the consent page, and issues alice's token to that URL."""
    server = server_fetching_from_loopback
    path = f"/agents/{mode}/client-metadata.json"
    client_name = f"Document Agent ({mode})"
    agent = Agent(
        server.url + MCP_PATH,
        Person("alice", PASSWORD),
        client_name=client_name,
        client_metadata_url=agent_website.url(path),
    )
    client_id = agent_website.publish(path, agent.metadata_document())
    assert client_id == f"https://localhost:{agent_website.port}{path}"

    tools, result = run_agent(agent, mode=mode)

    # The server said it takes metadata documents (RFC 8414 metadata), so the SDK chose the URL.
    assert agent.oauth.context.oauth_metadata.client_id_metadata_document_supported is True
    assert agent.storage.client_info.client_id == client_id
    assert parse_qs(urlsplit(agent.authorization_url).query)["client_id"] == [client_id]
    # No registration request reached the server: the document is the registration.
    assert not [response for response in agent.responses if response[1].startswith("/o/register/")], agent.responses
    assert path in agent_website.requested  # the server fetched the document from the agent's website
    # Signed in, consented to the base scope, then to `profile`; each consent page named the client
    # from its document and said how it identified itself.
    assert agent.person.pages == ["/accounts/login/", "/o/authorize/", "/o/authorize/"]
    for page in agent.person.consent_pages:
        assert f'<strong id="client-name"><bdi>{client_name}</bdi></strong>' in page
        assert "It identifies itself with a metadata document published at localhost." in page
    assert agent.callbacks[-1]["iss"] == server.url  # RFC 9207 §2
    assert agent.requests("POST", "/o/token/") == [200, 200]  # one token per consent, to this client_id
    assert "whoami" in [tool.name for tool in tools.tools]
    claims = _whoami(result)
    assert claims["username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["client_id"] == client_id  # the token was issued to the document's URL
    assert "email" not in claims
    assert agent.storage.tokens.scope == "mcp profile"
