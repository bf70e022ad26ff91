"""Who may reach the MCP endpoint at all: the hosts it serves (DNS rebinding), and the browser
origins that may call it (MCP transport, "Security Warning": servers MUST validate ``Origin``).

The SDK has both checks (``TransportSecuritySettings``), with fixed lists and plain-text refusals;
here the lists are Django's ``ALLOWED_HOSTS`` (read as Django reads it), the site's own origin (the
issuer, or the request's origin when it is unset) and ``MCPAPP["ALLOWED_ORIGINS"]``, and refusals
are JSON, as everywhere else.
"""

import re

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.resources import public_origin
from mcpapp.auth import request_origin, send_json
from mcpapp.conf import allowed_origins

# A loopback origin (any port): a page served on this device, e.g. MCP Inspector at http://localhost:6274.
LOOPBACK_ORIGIN = re.compile(r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$")


def origin_allowed(origin: str, *, own_origin: str) -> bool:
    """Whether a page of ``origin`` may call the MCP endpoint that ``own_origin`` names.

    The site's own origin (the issuer, and the one the request came to), the origins an operator
    lists in ``MCPAPP["ALLOWED_ORIGINS"]``, and loopback origins while ``DEBUG`` is on (tools on the
    developer's machine). Any other origin, ``null`` (sandboxed frames, files) included, is refused.
    """
    origin = origin.rstrip("/").lower()
    if origin in (own_origin.lower(), public_origin(own_origin).lower()) or origin in allowed_origins():
        return True
    return settings.DEBUG and LOOPBACK_ORIGIN.match(origin) is not None


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS`` as Django's ``HttpRequest.get_host`` reads it: empty with DEBUG on means loopback."""
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return settings.ALLOWED_HOSTS


class TransportSecurityMiddleware:
    """Both checks, in one layer (every layer around the transport costs on every request):

    - ``Host`` must be one of Django's ``ALLOWED_HOSTS`` (what stops DNS rebinding): else 400;
    - MCP transport (2025-11-25 and later): a request whose ``Origin`` is present and not allowed
      (:func:`origin_allowed`) is answered 403 with a JSON-RPC error without an id. Requests
      without one (clients that are not browsers) pass. Placed before CORS, so a page of another
      origin gets no preflight either.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            domain, _port = split_domain_port(headers.get("host", ""))
            if not domain or not validate_host(domain, allowed_hosts()):
                refusal = {"error": "invalid_request", "error_description": "This host is not served here"}
                await send_json(send, 400, refusal)
                return
            origin = headers.get("origin")
            if origin is not None and not origin_allowed(origin, own_origin=request_origin(scope, headers)):
                refusal = {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32600, "message": "Requests from this origin are not allowed"},
                }
                await send_json(send, 403, refusal)
                return
        await self.app(scope, receive, send)
