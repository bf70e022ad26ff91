"""The bare MCP SDK server, stateless and stateful: ``uvicorn benchmarks.peer_servers.sdk:stateless``."""

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from benchmarks.peer_servers.tools import product_entries


def sdk_app(*, stateless: bool):
    server = MCPServer(name="bare SDK", log_level="WARNING")
    for entry, fn, options in product_entries():
        if entry.kind == "tool":
            server.tool(name=entry.key, **options)(fn)
        elif entry.kind == "resource":
            server.resource(entry.key, **options)(fn)
        else:
            server.prompt(name=entry.key, **options)(fn)
    # As the product runs it: the host check is the product's own (Django's ALLOWED_HOSTS), not the SDK's.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return server.streamable_http_app(stateless_http=stateless, transport_security=security)


stateless = sdk_app(stateless=True)
stateful = sdk_app(stateless=False)
