"""Bearer authentication in front of the MCP transports (RFC 6750, RFC 8707, RFC 9728).

The SDK's own wiring takes the resource URL once, at start-up; here the origin may be each
request's (when the site sets no issuer), so the check and the challenge compute it per request.
What a request is let through with is what the SDK's own middleware would leave: its
``AuthenticatedUser`` in ``scope["user"]`` (the transports bind sessions to it), Starlette's
``AuthCredentials`` in ``scope["auth"]``, and the SDK's ``auth_context_var`` set, so
``mcp.server.auth.middleware.auth_context.get_access_token()`` works in tools.
"""

import json

import pydantic_core
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.authentication import AuthCredentials
from starlette.datastructures import URL, Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.resources import audience_covers, resource_metadata_url, resource_url
from authserver.scopes import scope_registry
from mcpapp.registry import MCPRegistry
from mcpapp.verifier import DotTokenVerifier


def request_origin(scope: Scope, headers: Headers) -> str:
    """``scheme://host[:port]`` as the client addressed it: what Starlette's URL gives, without
    building the whole URL on every request (the ``Host`` header, which ``TransportSecurityMiddleware`` checked)."""
    host = headers.get("host")
    if host:
        return f"{scope.get('scheme', 'http')}://{host}"
    url = URL(scope=scope)
    return f"{url.scheme}://{url.netloc}"


def _bearer_token(authorization: str) -> str | None:
    """RFC 6750 §2.1: the token of ``Authorization: Bearer <token>`` (the scheme is case-insensitive)."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


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

    The token is looked up by ``verifier`` (remembered tokens first, ``mcpapp.token_cache``). The
    endpoint needs the base scope; a ``tools/call``, ``resources/read`` or ``prompts/get`` also
    needs what that entry of ``registry`` declares, checked here from the JSON-RPC body before the
    SDK sees the request. Refusals carry ``WWW-Authenticate: Bearer`` with ``resource_metadata``
    (RFC 9728 §5.1):

    - 401 without ``error`` when no token was sent (RFC 6750 §3.1), 401 ``invalid_token`` for a
      bad one, both with the ``scope`` this request needs as the hint a client authorizes for
      (MCP authorization, scope selection strategy): the base scope, plus the entry's if it is one;
    - 403 ``insufficient_scope`` with the ``scope`` the request needs (RFC 6750 §3.1; MCP
      authorization, scope challenge handling), and for clients older than 2026-07-28 the scopes
      the token already carries too (``step_up_scopes``), which the client re-authorizes for (step-up).

    One middleware does what the SDK spreads over three (Starlette's ``AuthenticationMiddleware``,
    its ``AuthContextMiddleware`` and ``RequireAuthMiddleware``): every MCP request passes through
    it, and each layer wrapping the transport is re-entered every time the request's task resumes.
    """

    def __init__(self, app: ASGIApp, *, resource_path: str, registry: MCPRegistry, verifier: DotTokenVerifier):
        self.app = app
        self.resource_path = resource_path
        self.registry = registry
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin, authorizations = request_origin(scope, headers), headers.getlist("authorization")
        if len(authorizations) > 1:
            # RFC 6750 §2: one way of sending the token, once. Two Authorization headers are not
            # "the first one": answered 400 invalid_request (RFC 6750 §3.1) before anything is looked up.
            await self._challenge(send, origin, 400, "invalid_request", "Send exactly one Authorization header")
            return
        bearer = _bearer_token(authorizations[0]) if authorizations else None
        token = await self.verifier.verify_token(bearer) if bearer else None
        # RFC 8707 §2 / MCP authorization "Token audience binding": a token issued for another
        # resource, even by this same authorization server, is not valid here.
        if token is not None and not audience_covers(token.audiences, resource_url(origin, self.resource_path)):
            token = None
        # What this request needs: the base scope, and for a use of a registered tool, resource or
        # prompt, what that entry declares (read from the JSON-RPC body, which is then replayed).
        needed = [scope_registry.base.name]
        if scope["method"] == "POST":
            # Without a valid token only a small body is worth reading, for the challenge's hint.
            body = await _read_body(receive, DEFAULT_MAX_REQUEST_BODY_SIZE if token else 64 * 1024)
            if body is None and token:
                description = "The request body is too large"
                await send_json(send, 413, {"error": "invalid_request", "error_description": description})
                return
            if body is not None:
                needed = list(dict.fromkeys([*needed, *self.registry.scopes_for_message(_json_or_none(body))]))
                receive = _replay(body, receive)
        if token is None:
            if bearer is None:
                await self._challenge(send, origin, 401, None, "Authentication required", needed)
            else:
                description = "The access token is unknown, expired, revoked or for another resource"
                await self._challenge(send, origin, 401, "invalid_token", description, needed)
            return
        if scope_registry.missing(granted=token.scopes, required=needed):
            description = "This request needs more access than the access token carries"
            version = headers.get("mcp-protocol-version")
            challenged = step_up_scopes(granted=token.scopes, needed=needed, version=version)
            await self._challenge(send, origin, 403, "insufficient_scope", description, challenged)
            return
        # Handed to the transport as the SDK's middleware would (in this frame: one layer fewer).
        user = AuthenticatedUser(token)
        scope["user"], scope["auth"] = user, AuthCredentials(token.scopes)
        context = auth_context_var.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            auth_context_var.reset(context)

    async def _challenge(self, send, origin, status, error, description, needed=None):
        params = []
        if error:
            params += [f'error="{error}"', f'error_description="{description}"']
        if needed:
            params.append(f'scope="{" ".join(needed)}"')
        params.append(f'resource_metadata="{resource_metadata_url(origin, self.resource_path)}"')
        body = {"error": error or "invalid_token", "error_description": description}
        await send_json(send, status, body, [(b"www-authenticate", ("Bearer " + ", ".join(params)).encode())])


# SEP-2350 (MCP 2026-07-28): on a 403 step-up the client adds the challenged scopes to those it holds.
CLIENT_UNIONS_SCOPES_FROM = "2026-07-28"


def step_up_scopes(*, granted: list[str], needed: list[str], version: str | None) -> list[str]:
    """The ``scope`` of a 403 ``insufficient_scope`` challenge, shaped by the client's protocol revision.

    MCP 2025-11-25 authorization, "Runtime insufficient scope errors": the server includes the scopes
    already granted, because a client of that revision asks for exactly what the challenge names and
    would otherwise trade its token for one that lost them (one more consent prompt per tool). From
    2026-07-28 (SEP-2350) the client unions, and the challenge names only what this request needs.
    Protocol versions are dates, so they compare as strings; a request without one is 2025-03-26 or older.
    """
    if version and version >= CLIENT_UNIONS_SCOPES_FROM:
        return needed
    return list(dict.fromkeys([*granted, *needed]))


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
    """The body as the SDK's Streamable HTTP transport parses it (the same parser: no message reads
    one way here and another there), or None when it is not JSON."""
    try:
        return pydantic_core.from_json(body)
    except ValueError:  # the SDK answers malformed JSON-RPC with its own parse error
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
