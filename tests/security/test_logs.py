"""Secrets never reach a log line, even when a client puts one where it does not belong: the live server
(the production command, access log on) is sent credentials in URLs, and its log is read."""

import secrets

import httpx2
import pytest

from authserver.log_redaction import secrets_redact
from live.paths import MCP_PATH
from live.server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("logs"), workers=1, env={"UVICORN_LOG_LEVEL": "info"}).start()
    yield server
    server.stop()


def test_credentials_in_urls_are_refused_and_redacted_from_the_access_log(server):
    sent = {name: "secret-" + secrets.token_urlsafe(16) for name in ("token", "access", "client", "code", "refresh")}
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        # RFC 7662 §2.1: introspection is a POST; a token in its URL is refused.
        assert http.get(f"/o/introspect/?token={sent['token']}").status_code == 405
        # RFC 6750 §2.3 / RFC 9700 §2.5: the MCP endpoint never takes a token from the query.
        mcp = http.post(f"{MCP_PATH}?access_token={sent['access']}", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert mcp.status_code == 401
        token_endpoint = http.post(
            f"/o/token/?client_secret={sent['client']}&code={sent['code']}&refresh_token={sent['refresh']}",
            data={"grant_type": "authorization_code"},
        )
        assert token_endpoint.status_code in (400, 401)
    server.stop()  # flushes the log

    log = server.log_path.read_text()
    assert "/o/introspect/?token=[redacted]" in log  # the request is logged, its secret is not
    leaked = [name for name, value in sent.items() if value in log]
    assert not leaked, f"in the log: {leaked}"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('GET /o/introspect/?token=abc HTTP/1.1" 405', 'GET /o/introspect/?token=[redacted] HTTP/1.1" 405'),
        ("/o/x?state=keep&CODE=abc&acc%65ss_token=def", "/o/x?state=keep&CODE=[redacted]&acc%65ss_token=[redacted]"),
        ("/o/authorize/?client_id=a&code_challenge=b", "/o/authorize/?client_id=a&code_challenge=b"),
        ("no query here", "no query here"),
    ],
)
def test_redaction_hides_credential_values_and_keeps_the_rest(line, expected):
    assert secrets_redact(line) == expected
