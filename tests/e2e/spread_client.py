"""A client whose every request goes out on a connection of its own, so that consecutive requests
spread over a server's worker processes; and the agents and streams the fault tests drive with it."""

import json
import threading
import time
from urllib.parse import urlencode

import anyio
import httpx2

from live.forms import parse_forms
from live.oauth_flow import token_refresh
from live.paths import MCP_PATH
from live.person import Person
from live.server import LiveServer
from tests.e2e.agent import Agent

PASSWORD = "faults happen to everyone"
MCP_PROTOCOL_VERSION = "2025-11-25"  # stateless Streamable HTTP: any worker answers any request


def tool_call(server: LiveServer, access_token: str, name: str, arguments: dict | None = None) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}
    return httpx2.post(server.url + MCP_PATH, json=body, headers=mcp_headers(access_token), timeout=30)


def mcp_headers(access_token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {access_token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MCP_PROTOCOL_VERSION,
    }


def tool_result(response: httpx2.Response) -> dict:
    """The JSON-RPC ``result`` of a tools/call answer (sent as one server-sent event, or as JSON)."""
    assert response.status_code == 200, (response.status_code, response.text[:300])
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        message = json.loads(data[-1])
    else:
        message = response.json()
    return message["result"]


def whoami(server: LiveServer, access_token: str) -> str | None:
    """The username the token acts for, as the whoami tool says; None if the call was not answered."""
    response = tool_call(server, access_token, "whoami")
    if response.status_code != 200:
        return None
    result = tool_result(response)
    return None if result["isError"] else result["structuredContent"]["username"]


def refresh(server: LiveServer, client_id: str, refresh_token: str) -> httpx2.Response:
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        return token_refresh(http, client_id, refresh_token)


def sign_in(server: LiveServer, username: str, password: str) -> httpx2.Response:
    """A person opens the sign-in page and submits it; the answer to the submission."""
    with httpx2.Client(base_url=server.url, timeout=30) as browser:
        page = browser.get("/accounts/login/")
        assert page.status_code == 200, page.status_code
        data = parse_forms(page.text)[0].submission(username=username, password=password)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return browser.post("/accounts/login/", content=urlencode(data), headers=form)


def connected_agent(server: LiveServer, username: str, *, tool: str = "whoami") -> Agent:
    """An agent that went through the whole flow (registration, sign-in, consent, PKCE exchange)
    with the MCP SDK's OAuth client, and whose first call of ``tool`` worked."""
    agent = Agent(server.url + MCP_PATH, Person(username, PASSWORD))

    async def session():
        async with agent.connect(mode="2026-07-28") as client:
            return await client.call_tool(tool, {})

    result = anyio.run(session)
    assert not result.is_error, result
    return agent


def retry_until_answered(request, *, deadline_seconds: float) -> tuple[httpx2.Response, int]:
    """Repeat ``request()`` while it answers 503, waiting as ``Retry-After`` says (at most a second
    here, to keep the test short); the final answer and how many 503s came before it."""
    deadline = time.monotonic() + deadline_seconds
    refusals = 0
    while True:
        response = request()
        if response.status_code != 503 or time.monotonic() > deadline:
            return response, refusals
        refusals += 1
        time.sleep(min(float(response.headers.get("retry-after", "1")), 1.0))


PAUSE_SECONDS = 4  # the test app's pause tool; uvicorn waits up to 10 s (--timeout-graceful-shutdown)


class SlowToolCall:
    """A tools/call of the test app's ``pause`` tool, in a thread of its own. It is in flight once
    the response has started (the SDK answers as an event stream, whose headers come first)."""

    def __init__(self, server: LiveServer, access_token: str):
        self.server = server
        self.access_token = access_token
        self.started = threading.Event()
        self.client_port: int | None = None
        self.body = ""
        self.error = ""  # the transport error that broke the call, if one did
        self.thread = threading.Thread(target=self._call)
        self.thread.start()

    def _call(self) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "pause", "arguments": {"seconds": PAUSE_SECONDS}},
        }
        try:
            with httpx2.Client(timeout=30) as http:
                headers = mcp_headers(self.access_token)
                with http.stream("POST", self.server.url + MCP_PATH, json=body, headers=headers) as response:
                    if response.status_code != 200:
                        self.error = f"answered {response.status_code}"
                        return
                    self.client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
                    self.started.set()
                    self.body = response.read().decode()
        except httpx2.TransportError as error:
            self.error = type(error).__name__
        finally:
            self.started.set()

    def answer(self) -> str:
        """What the tool answered, or the transport error that cut the call."""
        self.thread.join(timeout=30)
        if self.error or not self.body:
            return self.error or "no answer"
        data = [line[5:].strip() for line in self.body.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])["result"]["content"][0]["text"]


class OpenStream:
    """A GET on the MCP endpoint: Streamable HTTP's open-ended event stream, which lasts until the
    client or the server ends it. In a thread of its own; ``ended`` says how it ended."""

    def __init__(self, server: LiveServer, access_token: str):
        self.started = threading.Event()
        self.ended = ""
        self.thread = threading.Thread(target=self._listen, args=(server, access_token))
        self.thread.start()

    def _listen(self, server: LiveServer, access_token: str) -> None:
        headers = {**mcp_headers(access_token), "Accept": "text/event-stream"}
        try:
            with (
                httpx2.Client(timeout=60) as http,
                http.stream("GET", server.url + MCP_PATH, headers=headers) as response,
            ):
                self.ended = f"answered {response.status_code}"
                self.started.set()
                for _line in response.iter_lines():
                    pass
                self.ended = "ended by the server"
        except httpx2.TransportError as error:
            self.ended = type(error).__name__
        finally:
            self.started.set()
