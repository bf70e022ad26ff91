"""The benchmark server's ASGI application: the product, plus a copy of its MCP endpoint without
authentication, the ceiling that ``benchmarks/auth.py`` compares the authenticated endpoint with.

- ``/star/mcp``: the product app exactly as ``config.asgi`` builds it, bearer authentication and all;
- ``/open/mcp``: the same MCP stack (``build_server``, ``build_asgi_app``: the same middleware, the
  same Django request lifecycle) built with ``require_token=False``, so no token is asked for or checked.

Both MCP servers get the same tool, ``echo``, registered on each ``MCPServer`` directly rather than
through ``mcp_registry`` (whose guard needs a token), so the two endpoints run the very same function
and differ in the token check alone. Only the benchmark serves this module; the product has no
``/open``::

    uvicorn benchmarks.asgi:application
"""

import contextlib

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.routing import Mount

# Sets Django up first; also builds the product's own application, which is left unused here.
from config.asgi import build_application
from mcpapp.server import build_asgi_app, build_server

OPEN_MOUNT_PATH = "/open"
ECHO_TOOL = "echo"


async def echo(text: str) -> str:
    """Returns ``text`` as it came: a tool call whose own cost is next to nothing."""
    return text


def server_with_echo() -> MCPServer:
    server = build_server()
    server.add_tool(echo, name=ECHO_TOOL)
    return server


authenticated_mcp = build_asgi_app(server_with_echo())
open_mcp = build_asgi_app(server_with_echo(), require_token=False)
product = build_application(authenticated_mcp)


@contextlib.asynccontextmanager
async def both_session_managers(app):
    """Each MCP server's Streamable HTTP session manager runs for the life of the process."""
    async with product.router.lifespan_context(app), open_mcp.router.lifespan_context(app):
        yield


# The product's routes as they are, with /open in front: a request to /star/mcp tries one more path
# pattern than in the product (a regular expression that fails at its first characters).
application = Starlette(routes=[Mount(OPEN_MOUNT_PATH, app=open_mcp), *product.routes], lifespan=both_session_managers)
