"""Bearer authentication in front of the MCP transports (RFC 6750, RFC 8707, RFC 9728).

The SDK's own wiring takes the resource URL once, at start-up; here the origin may be each
request's (when ``SITE_URL`` is unset), so the backend and the challenge compute it per request.
The SDK's ``AuthenticatedUser`` and ``AuthContextMiddleware`` are used as they are, so
``mcp.server.auth.middleware.auth_context.get_access_token()`` works in tools.
"""

import json

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.authentication import AuthCredentials, AuthenticationBackend
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.scopes import scope_registry
from mcpapp.registry import MCPRegistry
from mcpapp.resource import audience_covers, resource_metadata_url, resource_url
from mcpapp.verifier import DotTokenVerifier


def request_origin(conn: HTTPConnection) -> str:
    """``scheme://host[:port]`` as the client addressed it: what Starlette's ``conn.url`` gives,
    without building the whole URL on every request."""
    host = conn.headers.get("host")
    if host:
        return f"{conn.scope.get('scheme', 'http')}://{host}"
    return f"{conn.url.scheme}://{conn.url.netloc}"


def _bearer_token(conn: HTTPConnection) -> str | None:
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class DotBearerAuthBackend(AuthenticationBackend):
    """Who the bearer token speaks for; whether it is *for this endpoint* is RequireBearerToken's call."""

    def __init__(self, verifier: DotTokenVerifier):
        self.verifier = verifier

    async def authenticate(self, conn: HTTPConnection):
        token = _bearer_token(conn)
        if token is None:
            return None
        verified = await self.verifier.verify_token(token)
        if verified is None:
            return None
        return AuthCredentials(verified.scopes), AuthenticatedUser(verified)


async def send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequireBearerToken:
    """Lets a request through only with a valid token for ``resource_path`` carrying the scopes it needs.

    The endpoint needs the base scope; a ``tools/call``, ``resources/read`` or ``prompts/get`` also
    needs what that entry of ``registry`` declares, checked here from the JSON-RPC body before the
    SDK sees the request. Refusals carry ``WWW-Authenticate: Bearer`` with ``resource_metadata``
    (RFC 9728 §5.1):

    - 401 without ``error`` when no token was sent (RFC 6750 §3.1), 401 ``invalid_token`` for a
      bad one, both with the ``scope`` this request needs as the hint a client authorizes for
      (MCP authorization, scope selection strategy): the base scope, plus the entry's if it is one;
    - 403 ``insufficient_scope`` with the ``scope`` the request needs (RFC 6750 §3.1; MCP
      authorization, scope challenge handling), which the client adds to what it holds and
      re-authorizes for (step-up).
    """

    def __init__(self, app: ASGIApp, *, resource_path: str, registry: MCPRegistry):
        self.app = app
        self.resource_path = resource_path
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        user = scope.get("user")
        # RFC 8707 §2 / MCP authorization "Token audience binding": a token issued for another
        # resource, even by this same authorization server, is not valid here.
        if isinstance(user, AuthenticatedUser) and not audience_covers(
            user.access_token.audiences, resource_url(request_origin(conn), self.resource_path)
        ):
            user = None
        # What this request needs: the base scope, and for a use of a registered tool, resource or
        # prompt, what that entry declares (read from the JSON-RPC body, which is then replayed).
        authenticated = isinstance(user, AuthenticatedUser)
        needed = [scope_registry.base.name]
        if scope["method"] == "POST":
            # Without a valid token only a small body is worth reading, for the challenge's hint.
            body = await _read_body(receive, DEFAULT_MAX_REQUEST_BODY_SIZE if authenticated else 64 * 1024)
            if body is None and authenticated:
                description = "The request body is too large"
                await send_json(send, 413, {"error": "invalid_request", "error_description": description})
                return
            if body is not None:
                needed = list(dict.fromkeys([*needed, *self.registry.scopes_for_message(_json_or_none(body))]))
                receive = _replay(body, receive)
        if not authenticated:
            if _bearer_token(conn) is None:
                await self._challenge(send, conn, 401, None, "Authentication required", needed)
            else:
                description = "The access token is unknown, expired, revoked or for another resource"
                await self._challenge(send, conn, 401, "invalid_token", description, needed)
            return
        if scope_registry.missing(granted=scope["auth"].scopes, required=needed):
            description = "This request needs more access than the access token carries"
            await self._challenge(send, conn, 403, "insufficient_scope", description, needed)
            return
        await self.app(scope, receive, send)

    async def _challenge(self, send, conn, status, error, description, scope=None):
        params = []
        if error:
            params += [f'error="{error}"', f'error_description="{description}"']
        if scope:
            params.append(f'scope="{" ".join(scope)}"')
        params.append(f'resource_metadata="{resource_metadata_url(request_origin(conn), self.resource_path)}"')
        body = {"error": error or "invalid_token", "error_description": description}
        await send_json(send, status, body, [(b"www-authenticate", ("Bearer " + ", ".join(params)).encode())])


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past ``limit`` (for MCP requests, the SDK's own cap)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _json_or_none(body: bytes):
    try:
        return json.loads(body)
    except ValueError:  # the SDK answers malformed JSON-RPC with its own parse error
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class AllowedHostsMiddleware:
    """Django's ``ALLOWED_HOSTS`` for the MCP side too (also what stops DNS rebinding)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = HTTPConnection(scope).headers.get("host", "")
            domain, _port = split_domain_port(host)
            if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
                await send_json(
                    send, 400, {"error": "invalid_request", "error_description": "This host is not served here"}
                )
                return
        await self.app(scope, receive, send)
