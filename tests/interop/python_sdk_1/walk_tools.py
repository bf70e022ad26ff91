"""An MCP client built on the MCP Python SDK 1.x (run in .venv-mcp1): walks tools with OAuth, asking its
parent process to play the person at the browser.

    walk_tools.py <mcp-url> <redirect-uri> '<calls as JSON: [[tool, arguments], ...]>'

Each authorization URL the SDK opens is printed as a JSON line ``{"authorize": url}``; the parent
answers with one JSON line, the query parameters the redirect URI received. Each call's outcome is
printed as ``{"called": tool, "is_error": bool, "text": ...}``, and finally ``{"scope": ...}`` of
the token the client holds.
"""

import json
import sys

import anyio
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def say(message: dict) -> None:
    print(json.dumps(message), flush=True)


async def main(url: str, redirect_uri: str, calls: list) -> None:
    storage = MemoryStorage()
    answers: list[dict] = []

    async def open_browser(authorization_url: str) -> None:
        say({"authorize": authorization_url})
        answers.append(json.loads(await anyio.to_thread.run_sync(sys.stdin.readline)))

    async def callback():
        answer = answers[-1]
        if "error" in answer:
            raise PermissionError(answer["error"])
        return answer["code"], answer.get("state")

    oauth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP SDK 1.x walker",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=open_browser,
        callback_handler=callback,
    )
    async with streamablehttp_client(url, auth=oauth, timeout=30) as (read, write, _session_id):
        async with ClientSession(read, write) as session:
            initialized = await session.initialize()
            say({"protocol_version": initialized.protocolVersion})
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                say({"called": name, "is_error": result.isError, "text": result.content[0].text})
    say({"scope": storage.tokens.scope if storage.tokens else None})


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
