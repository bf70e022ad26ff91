"""The servers ``benchmarks.peers`` measures the product against, each serving the same MCP tools
(``tools.py``) at ``/mcp`` under the same uvicorn command:

- ``sdk:stateless`` and ``sdk:stateful``: the MCP SDK's own ``MCPServer`` and nothing else (no Django
  request lifecycle, no authentication): the ceilings;
- ``fastmcp_peer:application``: the standalone ``fastmcp`` package with its cheapest bearer check,
  ``StaticTokenVerifier`` (one token, compared as a string), run from a virtualenv of its own
  (``benchmarks/requirements-peers.txt``), as a user who picked it instead would run it.

Their ``create_note`` writes through Django's ORM (``notes.services``, with the minimal settings in
``settings.py``) to the database the product's server uses, as a user of the bare SDK who keeps
their data in Django would; ``whoami`` answers a fixed identity (they know no user).
"""

PEER_USERNAME = "peer"  # the benchmark creates this account in the product's database
PEER_TOKEN = "peer-static-token"  # fastmcp_peer's StaticTokenVerifier accepts this one
PEER_CLIENT_ID = "peer-client"
