"""Running the project's real ASGI application in-process, with the MCP SDK's client over it."""

import time

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from live.paths import MCP_PATH
from mcpapp.asgi import mcp_asgi_application
from mcpapp.registry import mcp_registry
from mcpapp.server import build_asgi_app, build_server
from mcpapp.verifier import DotTokenVerifier

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def run_app(interaction, *, clock=time.time, registry=mcp_registry, raise_app_exceptions=True):
    """Run ``interaction(http)`` against a fresh application whose token verifier uses ``clock``
    (``raise_app_exceptions=False``: what a client sees when the app fails, not the exception)."""
    server = build_server(registry)
    app = mcp_asgi_application(
        mcp_application=build_asgi_app(server, verifier=DotTokenVerifier(clock=clock), registry=registry)
    )

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
                return await interaction(http)

    return anyio.run(main)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def mcp_session(token, interaction, **kwargs):
    """Run ``interaction(client)`` in an MCP client session (protocol 2025-11-25) holding ``token``."""

    async def in_session(http):
        http.headers.update(bearer(token))
        transport = streamable_http_client("http://testserver" + MCP_PATH, http_client=http)
        async with Client(transport, mode="legacy") as client:
            return await interaction(client)

    return run_app(in_session, **kwargs)


def rpc(method, params=None, id=1):
    return {"jsonrpc": "2.0", "id": id, "method": method, **({"params": params} if params is not None else {})}
