"""Several worker processes behind one port: which MCP transport survives requests landing anywhere.

Every HTTP request below goes out on a new connection, so the kernel hands consecutive requests of
one MCP session to different workers, as a load balancer would. Measured, not assumed:

- Stateless Streamable HTTP (``MCP_STATELESS_HTTP``, the default) keeps no state in a worker, so
  every session succeeds, with the 2025-11-25 protocol and with 2026-07-28 (which has no sessions).
- Stateful Streamable HTTP keeps each ``Mcp-Session-Id`` in the memory of the worker that answered
  ``initialize``: sessions break as soon as a request reaches another worker.
- The legacy SSE transport is stateful by design (the stream and its ``/messages/`` posts must meet
  in one process): with several workers it needs a single worker or sticky sessions.
"""

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from live.oauth_flow import client_register, tokens_obtain
from live.paths import MCP_PATH, SSE_PATH
from live.person import Person
from live.server import LiveServer
from tests.conftest import PASSWORD, start_server_with_alice

WORKERS = 4
SESSIONS = 8
CALLS = 4  # whoami calls per session, after initialize and tools/list
NEW_CONNECTION_EACH_REQUEST = httpx2.Limits(max_keepalive_connections=0)


@pytest.fixture(scope="module")
def stateless_server(tmp_path_factory):
    server = start_server_with_alice(tmp_path_factory, "stateless", workers=WORKERS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stateful_server(tmp_path_factory):
    server = start_server_with_alice(tmp_path_factory, "stateful", workers=WORKERS, env={"MCP_STATELESS_HTTP": "false"})
    yield server
    server.stop()


def access_token(server: LiveServer, endpoint: str) -> str:
    """A token for ``endpoint`` (RFC 8707 resource), from registration, alice's consent and PKCE."""
    client_id = client_register(server.url)
    return tokens_obtain(server.url, Person("alice", PASSWORD), client_id, resource=endpoint)["access_token"]


def client_factory(headers=None, timeout=None, auth=None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=headers, timeout=timeout or 30, auth=auth, limits=NEW_CONNECTION_EACH_REQUEST)


async def one_session(endpoint: str, token: str, mode: str) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    if endpoint.endswith("/sse"):
        transport = sse_client(endpoint, headers=bearer, httpx_client_factory=client_factory)
        async with Client(transport, mode=mode) as client:
            await exercise(client)
        return
    async with client_factory(headers=bearer) as http:
        async with Client(streamable_http_client(endpoint, http_client=http), mode=mode) as client:
            await exercise(client)


async def exercise(client: Client) -> None:
    assert "whoami" in [tool.name for tool in (await client.list_tools()).tools]
    for _ in range(CALLS):
        result = await client.call_tool("whoami", {})
        assert not result.is_error and result.structured_content["username"] == "alice"


def sessions_that_fail(endpoint: str, token: str, mode: str, *, sessions: int = SESSIONS, limit: float = 30) -> int:
    """How many of ``sessions`` consecutive client sessions fail, each given ``limit`` seconds."""

    async def main():
        failed = 0
        for _ in range(sessions):
            try:
                with anyio.fail_after(limit):
                    await one_session(endpoint, token, mode)
            except Exception:  # noqa: BLE001 - any failure of the session counts
                failed += 1
        return failed

    return anyio.run(main)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"], ids=["protocol-2025-11-25", "protocol-2026-07-28"])
def test_stateless_streamable_http_sessions_succeed_whichever_worker_answers(stateless_server, mode):
    endpoint = stateless_server.url + MCP_PATH
    assert sessions_that_fail(endpoint, access_token(stateless_server, endpoint), mode) == 0


def test_stateful_streamable_http_sessions_break_across_workers(stateful_server):
    # Why MCP_STATELESS_HTTP is on by default: a session's requests meet a worker that never saw it.
    endpoint = stateful_server.url + MCP_PATH
    assert sessions_that_fail(endpoint, access_token(stateful_server, endpoint), "legacy") > 0


def test_the_legacy_sse_transport_breaks_across_workers(stateless_server):
    # A failed SSE session waits on its stream for answers that went to another worker: it
    # takes the whole time limit, so only two are tried (each has 7 posts that all must meet the stream).
    endpoint = stateless_server.url + SSE_PATH
    token = access_token(stateless_server, endpoint)
    assert sessions_that_fail(endpoint, token, "legacy", sessions=2, limit=5) > 0
