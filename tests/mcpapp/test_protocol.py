"""What the MCP endpoint answers beyond the tools themselves: who it says it is, and a client's typos.

JSON-RPC 2.0 §5.1 / MCP "Error Handling" (tools, prompts, resources): naming a tool, prompt or
resource the server does not have is -32602 invalid params, a client's mistake, not a server error.
"""

import contextlib
import logging

import pytest

from live.paths import MCP_PATH
from tests.factories import make_access_token, make_client, make_user
from tests.mcpapp.helpers import HEADERS, mcp_session, rpc, run_app

pytestmark = pytest.mark.django_db(transaction=True)

MODERN = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "1"},
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def logged(*names):
    """What these loggers log (on the loggers themselves: the site's start-up reconfigures the root's handlers)."""
    handler = Records()
    for name in names:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler.records
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)


@pytest.fixture
def token():
    return make_access_token(make_user("ada"), make_client(), scope="mcp profile")


def post_modern(token, method, params):
    """One 2026-07-28 request (no session, no initialize), as the spec's HTTP binding sends it."""
    headers = {
        **HEADERS,
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        **({"Mcp-Name": params.get("name") or params["uri"]} if method != "server/discover" else {}),
    }
    body = rpc(method, {**params, "_meta": MODERN_META})
    return run_app(lambda http: http.post(MCP_PATH, json=body, headers=headers))


def test_server_info_names_the_package_version_in_initialize(token):
    async def server_info(client):
        return client.server_info

    info = mcp_session(token, server_info)
    assert info.name == "Django MCP"
    assert info.version == "0.2.0"


def test_discover_under_2026_07_28_carries_server_info_in_meta(token):
    response = post_modern(token, "server/discover", {})
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"] == {"name": "Django MCP", "version": "0.2.0"}
    assert MODERN in result["supportedVersions"]


@pytest.mark.parametrize(
    ("method", "params", "kind"),
    [
        ("tools/call", {"name": "whoamii", "arguments": {}}, "tool"),
        ("prompts/get", {"name": "no-such-prompt"}, "prompt"),
        ("resources/read", {"uri": "notes://nothing/here"}, "resource"),
    ],
)
def test_unknown_entry_is_invalid_params_logged_at_info_without_traceback(token, method, params, kind):
    with logged("mcpapp", "mcp") as records:
        response = post_modern(token, method, params)
    error = response.json()["error"]
    assert error["code"] == -32602
    assert error["message"].startswith(f"Unknown {kind}: ")
    assert "result" not in response.json()  # never an isError result the model reads as "the tool failed"
    problems = [record for record in records if record.levelno >= logging.WARNING or record.exc_info]
    assert problems == []
    assert any(f"Unknown {kind} requested" in record.getMessage() for record in records)


def test_unknown_tool_in_a_2025_11_25_session_is_an_error_the_sdk_client_raises(token):
    from mcp.shared.exceptions import MCPError

    async def call(client):
        with pytest.raises(MCPError) as refused:
            await client.call_tool("whoamii", {})
        return refused.value.error.code

    assert mcp_session(token, call) == -32602
