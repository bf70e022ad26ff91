"""The MCP resource server app: ``MCPServer`` behind the site's OAuth 2.1 authorization server."""

# The django-mcp-oauth package's version (pyproject.toml reads it from here); serverInfo.version by default.
__version__ = "0.2.0"
