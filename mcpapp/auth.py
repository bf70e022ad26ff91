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
from starlette.authentication import AuthCredentials, AuthenticationBackend
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from mcpapp.resource import audience_covers, resource_metadata_url, resource_url
from mcpapp.verifier import DotTokenVerifier


def request_origin(conn: HTTPConnection) -> str:
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
    """Lets a request through only with a valid token for ``resource_path`` carrying ``required_scopes``.

    Refusals carry ``WWW-Authenticate: Bearer`` with ``resource_metadata`` (RFC 9728 §5.1):
    401 without ``error`` when no token was sent (RFC 6750 §3.1), 401 ``invalid_token`` for a bad
    one, 403 ``insufficient_scope`` with the ``scope`` needed (RFC 6750 §3.1).
    """

    def __init__(self, app: ASGIApp, *, resource_path: str, required_scopes: list[str]):
        self.app = app
        self.resource_path = resource_path
        self.required_scopes = required_scopes

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
        if not isinstance(user, AuthenticatedUser):
            if _bearer_token(conn) is None:
                await self._challenge(send, conn, 401, None, "Authentication required")
            else:
                description = "The access token is unknown, expired, revoked or for another resource"
                await self._challenge(send, conn, 401, "invalid_token", description)
            return
        missing = [name for name in self.required_scopes if name not in scope["auth"].scopes]
        if missing:
            await self._challenge(
                send, conn, 403, "insufficient_scope", "The access token lacks a required scope", scope=missing
            )
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
