"""The standalone ``fastmcp`` package's server, with its cheapest bearer check (a static token), in
stateless mode like the product: ``uvicorn benchmarks.peer_servers.fastmcp_peer:application``, from
the peers' virtualenv (``benchmarks/requirements-peers.txt``)."""

from fastmcp import FastMCP
from fastmcp.server.auth import StaticTokenVerifier

from benchmarks.peer_servers import PEER_CLIENT_ID, PEER_TOKEN
from benchmarks.peer_servers.tools import product_entries

verifier = StaticTokenVerifier(
    tokens={PEER_TOKEN: {"client_id": PEER_CLIENT_ID, "scopes": ["mcp", "profile", "notes:write"]}},
    required_scopes=["mcp"],
)
server = FastMCP("fastmcp peer", auth=verifier)
for entry, fn, options in product_entries():
    if entry.kind == "tool":
        server.tool(fn, name=entry.key, **options)
    elif entry.kind == "resource":
        server.resource(entry.key, **options)(fn)
    else:
        server.prompt(fn, name=entry.key, **options)
application = server.http_app(path="/mcp", stateless_http=True)
