"""mcpapp's settings: one dict setting, ``MCPAPP``, with every default defined here, read lazily
(``app_settings.MOUNT_PATH``), so ``override_settings`` and a site's values always reach the code.

The endpoints' paths all derive from ``MOUNT_PATH``: the ASGI mount (``mcpapp.asgi``), the RFC 8707
resource identifiers and the RFC 9728 metadata URLs cannot drift apart. Misconfiguration is
reported by ``manage.py check`` (``mcpapp/checks.py``).
"""

from typing import Any

from authserver.conf import AppSettings
from mcpapp import __version__

DEFAULTS: dict[str, Any] = {
    # Where the MCP endpoints live: <MOUNT_PATH>/mcp (Streamable HTTP), <MOUNT_PATH>/sse and
    # <MOUNT_PATH>/messages/ (the legacy SSE transport).
    "MOUNT_PATH": "/star",
    # The name MCP clients show (serverInfo) and RFC 9728's resource_name.
    "SERVER_NAME": "Django MCP",
    # serverInfo.version; None: this package's version (mcpapp.__version__).
    "SERVER_VERSION": None,
    # Stateless Streamable HTTP: no per-process session state, so any worker can answer any request.
    "STATELESS_HTTP": True,
    # Browser origins allowed to call the MCP endpoint (its Origin check, and its CORS answers), besides
    # the site's own origin and, with DEBUG on, loopback ones (MCP Inspector): e.g. "https://app.example.com".
    "ALLOWED_ORIGINS": [],
    # Verified access tokens are remembered per worker for this long (never past their expiry; 0:
    # look every token up on every request). A revocation is refused at once by the worker that made
    # it and within TOKEN_REVOCATION_POLL_SECONDS by the others, through the cache (mcpapp/token_cache.py).
    "TOKEN_CACHE_SECONDS": 60.0,
    "TOKEN_CACHE_MAX_ENTRIES": 10_000,
    "TOKEN_REVOCATION_POLL_SECONDS": 0.5,
    # Once per process, when the server starts (the ASGI lifespan): gc.collect(), then gc.freeze(),
    # so that what start-up built (Django, every app, the MCP server) is left out of the cyclic
    # collector's later passes, which then scan what requests make. Worth ~10% of an MCP request's
    # CPU (README, "Against the bare SDK"). False leaves the process's collector alone.
    "GC_FREEZE_AT_STARTUP": True,
}

app_settings = AppSettings("MCPAPP", DEFAULTS)

# Below MOUNT_PATH, fixed: the SDK's transports route on these.
STREAMABLE_HTTP_PATH = "/mcp"
SSE_PATH = "/sse"
SSE_MESSAGES_PATH = "/messages/"


def server_version() -> str:
    """What ``serverInfo.version`` says: the site's ``SERVER_VERSION``, else this package's version."""
    return app_settings.SERVER_VERSION or __version__


def mount_path() -> str:
    return "/" + app_settings.MOUNT_PATH.strip("/")


def resource_path() -> str:
    """The Streamable HTTP endpoint's path, e.g. ``/star/mcp``."""
    return mount_path() + STREAMABLE_HTTP_PATH


def sse_resource_path() -> str:
    """The legacy SSE endpoint's path, e.g. ``/star/sse``."""
    return mount_path() + SSE_PATH


def allowed_origins() -> list[str]:
    return [origin.rstrip("/").lower() for origin in app_settings.ALLOWED_ORIGINS]
