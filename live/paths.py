"""Where the product's endpoints are, as its clients see them (the reference site mounts MCP at
``/star``), and the redirect URI the test and benchmark clients listen on: one place for each."""

MCP_PATH = "/star/mcp"  # Streamable HTTP
SSE_PATH = "/star/sse"  # the legacy SSE transport
MCP_METADATA_PATH = "/.well-known/oauth-protected-resource" + MCP_PATH  # RFC 9728 §3.1
SSE_METADATA_PATH = "/.well-known/oauth-protected-resource" + SSE_PATH
# A native app's loopback redirect (RFC 8252 §7.3): what every test and benchmark client registers.
REDIRECT_URI = "http://127.0.0.1:33418/callback"
