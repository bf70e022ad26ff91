"""The benchmark server's ASGI application: the product, plus a copy of its MCP endpoint without
authentication, the ceiling that ``benchmarks/auth.py`` compares the authenticated endpoint with.

- ``/star/mcp``: the product app exactly as ``config.asgi`` builds it, bearer authentication and all;
- ``/open/mcp``: the same MCP stack (``build_server``, the SDK's Streamable HTTP app, ``mcp_middleware``:
  the same middleware, the same Django request lifecycle) without ``RequireBearerToken``, so no token
  is asked for or checked. Built here from mcpapp's public parts: the product has no switch for it.

Both MCP servers get the same tool, ``echo``, registered on each ``MCPServer`` directly rather than
through ``mcp_registry`` (whose guard needs a token), so the two endpoints run the very same function
and differ in the token check alone. Only the benchmark serves this module; the product has no
``/open``::

    uvicorn benchmarks.asgi:application
"""

import contextlib

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Mount, Route

# Sets Django up first; the product's application as the production command serves it.
from config.asgi import django_application, with_static_files  # noqa: I001
from mcpapp.asgi import mcp_asgi_application
from mcpapp.conf import STREAMABLE_HTTP_PATH, app_settings
from mcpapp.server import build_asgi_app, build_server, json_error, mcp_middleware

OPEN_MOUNT_PATH = "/open"
ECHO_TOOL = "echo"


async def echo(text: str) -> str:
    """Returns ``text`` as it came: a tool call whose own cost is next to nothing."""
    return text


def server_with_echo() -> MCPServer:
    server = build_server()
    server.add_tool(echo, name=ECHO_TOOL)
    return server


def open_asgi_app(server: MCPServer) -> Starlette:
    """``build_asgi_app`` less the bearer check: the SDK's Streamable HTTP app behind mcpapp's middleware."""
    streamable = server.streamable_http_app(
        streamable_http_path=STREAMABLE_HTTP_PATH,
        stateless_http=app_settings.STATELESS_HTTP,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        async with server.session_manager.run():
            yield

    return Starlette(
        routes=[Route(STREAMABLE_HTTP_PATH, endpoint=streamable)],
        exception_handlers={404: json_error, 405: json_error},
        middleware=mcp_middleware(),
        lifespan=lifespan,
    )


open_mcp = open_asgi_app(server_with_echo())
product = mcp_asgi_application(
    with_static_files(django_application), mcp_application=build_asgi_app(server_with_echo())
)


@contextlib.asynccontextmanager
async def both_session_managers(app):
    """Each MCP server's Streamable HTTP session manager runs for the life of the process."""
    async with product.router.lifespan_context(app), open_mcp.router.lifespan_context(app):
        yield


# The product's routes as they are, with /open in front: a request to /star/mcp tries one more path
# pattern than in the product (a regular expression that fails at its first characters).
application = Starlette(routes=[Mount(OPEN_MOUNT_PATH, app=open_mcp), *product.routes], lifespan=both_session_managers)
