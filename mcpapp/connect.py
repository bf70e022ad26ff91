"""How a person connects an MCP client to this site: the endpoint's public URL and ready-to-paste snippets
for the clients people use, built from the real URL (``SITE_URL`` when set, else the request's origin)."""

import json
from dataclasses import dataclass

from django.utils.text import slugify

from authserver.resources import resource_url
from mcpapp.conf import app_settings, resource_path


@dataclass(frozen=True)
class Snippet:
    client: str
    where: str  # what to do with the text
    text: str


def mcp_connection(request) -> dict:
    """Template context: ``mcp_url``, ``mcp_server_name`` and ``mcp_snippets``."""
    url = resource_url(request.build_absolute_uri("/"), resource_path())
    key = slugify(app_settings.SERVER_NAME) or "mcp"
    snippets = [
        Snippet(
            "Claude Code",
            "Run in a terminal, then /mcp in Claude Code to sign in:",
            f"claude mcp add --transport http {key} {url}",
        ),
        Snippet(
            "VS Code",
            "Add to .vscode/mcp.json in your workspace:",
            json.dumps({"servers": {key: {"type": "http", "url": url}}}, indent=2),
        ),
        Snippet("Cursor", "Add to ~/.cursor/mcp.json:", json.dumps({"mcpServers": {key: {"url": url}}}, indent=2)),
        Snippet(
            "MCP Inspector",
            "Run (it needs Node 22) and open the address it prints:",
            f"npx @modelcontextprotocol/inspector --transport http --server-url {url}",
        ),
    ]
    return {"mcp_url": url, "mcp_server_name": app_settings.SERVER_NAME, "mcp_snippets": snippets}
