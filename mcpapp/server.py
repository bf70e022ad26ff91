"""The MCP server (the SDK's ``MCPServer``) and its ASGI application under ``MCP_MOUNT_PATH``."""

import contextlib

from django.conf import settings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcpapp.auth import RequireBearerToken
from mcpapp.lifecycle import DjangoRequestLifecycle
from mcpapp.registry import MCPRegistry, mcp_registry
from mcpapp.transport_security import TransportSecurityMiddleware
from mcpapp.verifier import DotTokenVerifier


def build_server(registry: MCPRegistry = mcp_registry) -> MCPServer:
    """An ``MCPServer`` with every tool, resource and prompt the installed apps registered."""
    server = MCPServer(
        name=settings.MCP_SERVER_NAME,
        instructions=(
            "Tools that act for the signed-in user of this site, within what they consented to. "
            "Each tool lists the OAuth scopes it needs under _meta.securitySchemes."
        ),
    )
    registry.install(server)
    return server


def build_asgi_app(
    server: MCPServer,
    *,
    verifier: DotTokenVerifier | None = None,
    registry: MCPRegistry = mcp_registry,
    require_token: bool = True,
) -> Starlette:
    """``/mcp`` (Streamable HTTP) and ``/sse`` + ``/messages/`` (legacy SSE), behind bearer auth.

    The SDK's DNS-rebinding check is off because ``TransportSecurityMiddleware`` applies Django's
    ``ALLOWED_HOSTS`` and the allowed browser origins to every request here; an origin let through
    may then call with a token (CORS).

    ``require_token=False`` leaves the bearer authentication out and nothing else: only the
    benchmark uses it, for the ceiling its authenticated numbers are compared with. No setting
    reaches it.
    """
    no_sdk_host_check = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    streamable = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=settings.MCP_STATELESS_HTTP,
        transport_security=no_sdk_host_check,
    )
    sse = server.sse_app(sse_path="/sse", message_path="/messages/", transport_security=no_sdk_host_check)

    verifier = verifier or DotTokenVerifier()

    def protected(app, resource_path):
        if not require_token:
            return app
        return RequireBearerToken(app, resource_path=resource_path, registry=registry, verifier=verifier)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        async with server.session_manager.run():
            yield

    async def json_error(request, exc):
        return JSONResponse(
            {"error": "not_found" if exc.status_code == 404 else "invalid_request", "error_description": exc.detail},
            status_code=exc.status_code,
        )

    # Routes, not Mounts: the SDK apps route on their own paths ("/mcp", "/sse", "/messages/").
    return Starlette(
        routes=[
            Route("/mcp", endpoint=protected(streamable, settings.MCP_RESOURCE_PATH)),
            Route("/sse", endpoint=protected(sse, settings.MCP_SSE_RESOURCE_PATH)),
            Route("/messages/", endpoint=protected(sse, settings.MCP_SSE_RESOURCE_PATH)),
        ],
        exception_handlers={404: json_error, 405: json_error},
        middleware=[
            Middleware(DjangoRequestLifecycle),
            Middleware(TransportSecurityMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],  # every origin that gets here is allowed (TransportSecurityMiddleware)
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Mcp-Session-Id",
                    "Mcp-Protocol-Version",
                    "Last-Event-ID",
                ],
                expose_headers=["WWW-Authenticate", "Mcp-Session-Id", "Mcp-Protocol-Version"],
            ),
        ],
        lifespan=lifespan,
    )
