"""The MCP server (the SDK's ``MCPServer``) and its ASGI application, mounted under
``MCPAPP["MOUNT_PATH"]`` by ``mcpapp.asgi``."""

import contextlib

from mcp.server.extension import Extension
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.conf import ENTERPRISE_MANAGED_AUTHORIZATION
from mcpapp.auth import RequireBearerToken
from mcpapp.conf import (
    SSE_MESSAGES_PATH,
    SSE_PATH,
    STREAMABLE_HTTP_PATH,
    app_settings,
    resource_path,
    server_version,
    sse_resource_path,
)
from mcpapp.lifecycle import DjangoRequestLifecycle, freeze_startup_heap, graceful_shutdown
from mcpapp.protocol import UnknownEntries
from mcpapp.registry import MCPRegistry, mcp_registry
from mcpapp.transport_security import TransportSecurityMiddleware
from mcpapp.verifier import DotTokenVerifier


class EnterpriseManagedAuthorization(Extension):
    """Advertised under ``capabilities.extensions`` (SEP-2133; the revisions that define extensions): this
    server's authorization server accepts ID-JAGs (SEP-990, ``authserver.identity_assertions``)."""

    identifier = ENTERPRISE_MANAGED_AUTHORIZATION


def build_server(registry: MCPRegistry = mcp_registry) -> MCPServer:
    """An ``MCPServer`` with every tool, resource and prompt the installed apps registered."""
    server = MCPServer(
        name=app_settings.SERVER_NAME,
        version=server_version(),
        instructions=(
            "Tools that act for the signed-in user of this site, within what they consented to. "
            "Each tool lists the OAuth scopes it needs under _meta.securitySchemes."
        ),
        middleware=[UnknownEntries(registry)],
        extensions=[EnterpriseManagedAuthorization()],
    )
    registry.install(server)
    return server


def mcp_middleware() -> list[Middleware]:
    """What every request to the MCP endpoints goes through before the bearer check: Django's request
    lifecycle, the host and origin checks, CORS."""
    return [
        Middleware(DjangoRequestLifecycle),
        Middleware(TransportSecurityMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],  # every origin that gets here is allowed (TransportSecurityMiddleware)
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-ID"],
            expose_headers=["WWW-Authenticate", "Mcp-Session-Id", "Mcp-Protocol-Version"],
        ),
    ]


async def json_error(request, exc):
    return JSONResponse(
        {"error": "not_found" if exc.status_code == 404 else "invalid_request", "error_description": exc.detail},
        status_code=exc.status_code,
    )


def build_asgi_app(
    server: MCPServer, *, verifier: DotTokenVerifier | None = None, registry: MCPRegistry = mcp_registry
) -> Starlette:
    """``/mcp`` (Streamable HTTP) and ``/sse`` + ``/messages/`` (legacy SSE), behind bearer auth; paths
    relative to the mount (``mcpapp.asgi``).

    The SDK's DNS-rebinding check is off because ``TransportSecurityMiddleware`` applies Django's
    ``ALLOWED_HOSTS`` and the allowed browser origins to every request here; an origin let through
    may then call with a token (CORS).
    """
    no_sdk_host_check = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    # Makes the server's session manager; its requests are handed to it directly (its public
    # ``handle_request``, the SDK's way of mounting it elsewhere), not through the Starlette app
    # this returns (error pages and routing for its one route, which this app already does).
    server.streamable_http_app(
        streamable_http_path=STREAMABLE_HTTP_PATH,
        stateless_http=app_settings.STATELESS_HTTP,
        transport_security=no_sdk_host_check,
    )
    streamable = server.session_manager.handle_request
    sse = server.sse_app(sse_path=SSE_PATH, message_path=SSE_MESSAGES_PATH, transport_security=no_sdk_host_check)
    verifier = verifier or DotTokenVerifier()

    def protected(app, path):
        return RequireBearerToken(app, resource_path=path, registry=registry, verifier=verifier)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        freeze_startup_heap()
        async with graceful_shutdown(), server.session_manager.run():
            yield

    # Routes, not Mounts: the SDK's SSE app routes on its own paths ("/sse", "/messages/").
    streamable_endpoint = protected(streamable, resource_path())
    middleware = mcp_middleware()
    return MCPApplication(
        routes=[
            Route(STREAMABLE_HTTP_PATH, endpoint=streamable_endpoint),
            Route(SSE_PATH, endpoint=protected(sse, sse_resource_path())),
            Route(SSE_MESSAGES_PATH, endpoint=protected(sse, sse_resource_path())),
        ],
        exception_handlers={404: json_error, 405: json_error},
        middleware=middleware,
        lifespan=lifespan,
        direct={STREAMABLE_HTTP_PATH: with_middleware(streamable_endpoint, middleware)},
    )


def route_path(scope: Scope) -> str:
    """The request's path below the app's mount (``root_path``), as Starlette's routing reads it."""
    return scope["path"][len(scope.get("root_path", "")) :]


def with_middleware(app: ASGIApp, middleware: list[Middleware]) -> ASGIApp:
    """``app`` wrapped in ``middleware`` as Starlette wraps its routes (the first one outermost)."""
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


class MCPApplication(Starlette):
    """The MCP endpoints' Starlette app, whose busiest path skips Starlette's own stack.

    Every MCP request is a POST to the Streamable HTTP endpoint: ``direct`` maps that path (relative
    to the mount) to its route's endpoint wrapped in the same middleware, so it is served without
    Starlette's error and exception layers and its router, each of which would wrap every message
    the answer sends. ``DjangoRequestLifecycle`` answers an unexpected error with a JSON 500, as
    Starlette's error layer would with a plain one. Any other path goes through Starlette as usual.
    """

    def __init__(self, *, direct: dict[str, ASGIApp], **kwargs):
        super().__init__(**kwargs)
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.direct.get(route_path(scope))
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
