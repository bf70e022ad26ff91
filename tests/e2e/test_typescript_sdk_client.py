"""The official MCP TypeScript SDK (`@modelcontextprotocol/sdk` 1.x, tests/interop/typescript_sdk/) as an
MCP client application against the live server, with a person at the browser.

tests/interop/typescript_sdk/client.mjs implements the SDK's `OAuthClientProvider` and connects with its
`StreamableHTTPClientTransport`: 401 → RFC 9728 metadata → RFC 8414 metadata → RFC 7591 registration →
authorization request with PKCE → the person signs in and consents (the server's real forms, with
cookies and CSRF tokens) → callback with `code` and RFC 9207 `iss` → `transport.finishAuth(code)` →
reconnect → tools/list → tools/call whoami. It logs every HTTP request the SDK makes (by wrapping
`fetch`) and prints what happened as JSON.

Step-up with SDK 1.x: whoami needs `profile` beyond `mcp`, so the server answers 403 insufficient_scope
with scope="mcp profile". The SDK, holding a refresh token, refreshes instead of re-authorizing
(typescript-sdk#2255); a refresh cannot add a scope (RFC 6749 §6), so the retry gets the same 403 and
the SDK gives up. Asking for the scopes up front does not help: the SDK prefers the 401's `scope`
("mcp", for initialize) over `clientMetadata.scope`. So the app forgets its tokens and calls again;
the 401 then names "mcp profile" and the SDK sends the person to consent to it. The test pins that
behaviour: a version that steps up on its own fails it, and the workaround can go.
"""

import json
import shutil
import subprocess

from live.paths import MCP_PATH
from live.server import PROJECT_DIR
from tests.conftest import PASSWORD, start_server_with_alice

CLIENT_DIR = PROJECT_DIR / "tests" / "interop" / "typescript_sdk"
SDK_PACKAGE = CLIENT_DIR / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json"
RUN_TIMEOUT = 120  # seconds for a whole client run; the script gives up by itself after 90
SHORT_TOKEN_LIFETIME = 3  # seconds; the refresh test waits it out


def run_client(server_url: str, *flags: str) -> dict:
    """One run of the TypeScript SDK client as alice; what it printed."""
    node = shutil.which("node")
    assert node, "Node.js is needed (bin/test installs Debian's nodejs)"
    assert SDK_PACKAGE.exists(), f"run `npm ci --prefix {CLIENT_DIR.relative_to(PROJECT_DIR)}`"
    done = subprocess.run(
        [node, "client.mjs", server_url, "alice", PASSWORD, *flags],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, f"the TypeScript SDK client failed:\n{done.stderr}"
    return json.loads(done.stdout)


def trace(result: dict, phase: str) -> list[str]:
    """The SDK's HTTP requests in one phase of the run, e.g. "POST /o/token/ refresh_token → 200".

    The GET that opens the listening SSE stream is left out: the SDK starts it without waiting."""
    lines = []
    for request in result["requests"]:
        if request["phase"] != phase or (request["method"], request["path"]) == ("GET", MCP_PATH):
            continue
        words = [request["method"], request["path"], request.get("rpc"), request.get("grant_type"), "→"]
        words.append(str(request["status"]))
        challenge = request.get("challenge", "")
        if 'error="' in challenge:
            words.append(challenge.split('error="')[1].split('"')[0])
        lines.append(" ".join(word for word in words if word))
    return lines


def requests_in(result: dict, phase: str) -> list[dict]:
    return [request for request in result["requests"] if request["phase"] == phase]


def test_typescript_sdk_client_completes_the_whole_flow_and_sees_who_the_user_is(running_server):
    """Discovery, registration, PKCE, the person's consent and `iss` all work with the TypeScript SDK,
    and whoami returns the person's claims for exactly the scopes consented to."""
    result = run_client(running_server.url)
    mcp_url = running_server.url + MCP_PATH

    pinned = json.loads((CLIENT_DIR / "package.json").read_text())["dependencies"]["@modelcontextprotocol/sdk"]
    assert result["sdk_version"] == pinned
    # 401 → RFC 9728 §3 → RFC 8414 §3 → RFC 7591 §3 → the person → the code exchange → connected.
    assert trace(result, "connect") == [
        "POST /star/mcp initialize → 401",
        "GET /.well-known/oauth-protected-resource/star/mcp → 200",
        "GET /.well-known/oauth-authorization-server → 200",
        "POST /o/register/ → 201",
        "POST /o/token/ authorization_code → 200",
        "POST /star/mcp initialize → 200",
        "POST /star/mcp notifications/initialized → 202",
    ]
    first_challenge = requests_in(result, "connect")[0]["challenge"]
    assert f'resource_metadata="{running_server.url}/.well-known/oauth-protected-resource/star/mcp"' in first_challenge
    assert 'scope="mcp"' in first_challenge
    assert result["issuer"] == running_server.url
    client_id = result["client_id"]
    assert client_id

    # Each authorization request: PKCE S256 (OAuth 2.1 §4.1.1), this endpoint as the resource
    # (RFC 8707 §2), the scope the challenge named; each answer carries our issuer (RFC 9207 §2).
    first_request, step_up_request = result["authorization_requests"]
    for request in (first_request, step_up_request):
        assert request["client_id"] == client_id
        assert request["code_challenge_method"] == "S256"
        assert request["resource"] == mcp_url
    assert first_request["scope"] == "mcp"
    assert step_up_request["scope"] == "mcp profile"
    assert [callback["iss"] for callback in result["callbacks"]] == [running_server.url] * 2
    assert all(callback["code"] for callback in result["callbacks"])
    # Signed in once, consented to the base scope, then to just `profile` when whoami needed it.
    assert result["pages"] == ["/accounts/login/", "/o/authorize/", "/o/authorize/"]
    assert result["consents_asked"] == [["mcp"], ["profile"]]

    assert "whoami" in result["tools"]
    # SDK 1.x on 403 insufficient_scope refreshes, gets the same scope back and gives up (typescript-sdk#2255).
    assert trace(result, "step_up") == [
        "POST /star/mcp tools/call → 403 insufficient_scope",
        "POST /o/token/ refresh_token → 200",
        "POST /star/mcp tools/call → 403 insufficient_scope",
    ], "the SDK's step-up changed: drop the app's workaround in client.mjs and this pin"
    assert "403 after trying upscoping" in result["step_up"]["error"]
    # Without tokens the 401 names what whoami needs, and the SDK asks the person for it.
    assert trace(result, "step_up_by_app") == [
        "POST /star/mcp tools/call → 401",
        "POST /o/token/ authorization_code → 200",
        "POST /star/mcp tools/call → 200",
    ]

    claims = result["whoami"]
    assert claims["username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["client_id"] == client_id
    assert claims["scope"] == "mcp profile"
    # Nobody asked for `email`, so the agent never got it.
    assert "email" not in claims


def test_typescript_sdk_client_refreshes_an_expired_access_token_without_asking_the_person(tmp_path_factory):
    """An expired access token is refused with 401 invalid_token (RFC 6750 §3.1); the SDK uses its
    refresh token (RFC 6749 §6) and the call succeeds with a new access token, with no page shown."""
    server = start_server_with_alice(
        tmp_path_factory, "typescript-sdk-short-tokens", env={"ACCESS_TOKEN_EXPIRE_SECONDS": str(SHORT_TOKEN_LIFETIME)}
    )
    try:
        result = run_client(server.url, "--call-again-after-expiry")
    finally:
        server.stop()

    assert result["whoami"]["username"] == "alice"
    assert trace(result, "after_expiry") == [
        "POST /star/mcp tools/call → 401 invalid_token",
        "POST /o/token/ refresh_token → 200",
        "POST /star/mcp tools/call → 200",
    ]
    refused, _refresh, accepted = requests_in(result, "after_expiry")
    assert refused["bearer"] == result["expired_access_token"]
    refreshed = result["tokens_received"][-1]
    assert refreshed["phase"] == "after_expiry"
    assert refreshed["expires_in"] == SHORT_TOKEN_LIFETIME
    assert accepted["bearer"] == refreshed["access_token"] != result["expired_access_token"]
    # The refreshed token keeps what the person allowed, and nobody was asked again.
    assert refreshed["scope"] == "mcp profile"
    assert result["whoami_after_expiry"]["username"] == "alice"
    assert result["whoami_after_expiry"]["name"] == "Alice Liddell"
    assert result["whoami_after_expiry"]["scope"] == "mcp profile"
    assert result["pages_after_expiry"] == []
    assert len(result["authorization_requests"]) == 2  # the first one and whoami's step-up, no more
