"""Step-up without prompt floods, with the MCP clients people use: walking every tool costs one browser
visit per scope the person has not granted that app yet, and no step-up loses a scope.

MCP 2025-11-25 clients (the Python SDK 1.x) ask for exactly the scopes a 403 challenge names, so the
server names what the token already carries too; 2026-07-28 clients (SEP-2350) union it themselves.
"""

import json
import re
import subprocess
from pathlib import Path

import anyio
import pytest

from live.paths import MCP_PATH, REDIRECT_URI
from tests.e2e.agent import Agent
from tests.e2e.test_notes_step_up import new_person

ROOT = Path(__file__).resolve().parents[2]
SDK_1_PYTHON = ROOT / ".venv-mcp1" / "bin" / "python"
WALKER = ROOT / "tests" / "interop" / "python_sdk_1" / "walk_tools.py"

# Every tool the site serves, then the same again: the second pass must cost nothing.
TOOLS = [
    ("whoami", {}),
    ("list_notes", {}),
    ("search_notes", {"query": "milk"}),
    ("create_note", {"title": "Milk", "body": "two litres"}),
]
WALK = TOOLS + TOOLS
EVERY_SCOPE = {"mcp", "profile", "notes:read", "notes:write"}


def ticked_scopes(page: str) -> list[str]:
    """The scopes a consent page asks for and has ticked (what the client requested)."""
    return re.findall(r'<input type="checkbox" id="scope-([^"]+)"[^>]* checked', page)


def walk_with_sdk_1(url: str, person) -> list[dict]:
    """Run the 1.x client over ``WALK``; the person answers every authorization URL it opens."""
    process = subprocess.Popen(
        [str(SDK_1_PYTHON), str(WALKER), url, REDIRECT_URI, json.dumps(WALK)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = []
    try:
        for line in process.stdout:  # bounded: the walker ends after len(WALK) calls
            message = json.loads(line)
            said.append(message)
            if "authorize" in message:
                answer = person.authorize(message["authorize"])
                process.stdin.write(json.dumps(answer) + "\n")
                process.stdin.flush()
        assert process.wait(timeout=60) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    return said


def test_mcp_sdk_1_client_on_2025_11_25_is_asked_once_per_new_scope_and_keeps_every_scope(running_server):
    person = new_person(running_server, "una")
    said = walk_with_sdk_1(running_server.url + MCP_PATH, person)

    assert next(m for m in said if "protocol_version" in m)["protocol_version"] == "2025-11-25"
    calls = [m for m in said if "called" in m]
    assert [m["called"] for m in calls] == [name for name, _ in WALK]
    assert not [m for m in calls if m["is_error"]], calls
    # One browser visit per scope, each asking for just the new one; the second pass asked nothing.
    assert len([m for m in said if "authorize" in m]) == 4
    assert [ticked_scopes(page) for page in person.consent_pages] == [
        ["mcp"],
        ["profile"],
        ["notes:read"],
        ["notes:write"],
    ]
    assert set(said[-1]["scope"].split()) == EVERY_SCOPE


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_mcp_sdk_2_client_is_asked_once_per_new_scope_and_keeps_every_scope(running_server, mode):
    person = new_person(running_server, "vic")
    agent = Agent(running_server.url + MCP_PATH, person)

    async def walk():
        async with agent.connect(mode=mode) as client:
            return [await client.call_tool(name, arguments) for name, arguments in WALK]

    results = anyio.run(walk)
    assert not [result for result in results if result.is_error]
    asked = [ticked_scopes(page) for page in person.consent_pages]
    assert len(agent.callbacks) == len(asked)
    # Each scope asked for on exactly one page. 2026-07-28 has no initialize: the first request is
    # whoami, whose 401 names `mcp profile` together (one visit fewer).
    assert sorted(sum(asked, [])) == sorted(EVERY_SCOPE)
    assert asked[-2:] == [["notes:read"], ["notes:write"]]
    assert len(asked) == (4 if mode == "legacy" else 3)
    assert set(agent.storage.tokens.scope.split()) == EVERY_SCOPE


@pytest.mark.parametrize("ticks_email", [True, False])
def test_with_the_stock_sdk_client_whoami_shows_the_email_only_to_a_person_who_ticked_it(running_server, ticks_email):
    """`whoami` uses `email` if granted; no client asks for it (the challenges name `mcp`, then `profile`),
    so the consent page offers it unticked and the person decides."""
    person = new_person(running_server, "wes", tick=("email",) if ticks_email else ())
    agent = Agent(running_server.url + MCP_PATH, person)

    async def whoami():
        async with agent.connect(mode="legacy") as client:
            return await client.call_tool("whoami", {})

    claims = anyio.run(whoami).structured_content
    assert "Who am I can also show your email" in person.consent_pages[-1]
    assert ("email" in claims) is ticks_email
    if ticks_email:
        assert claims["email"] == f"{person.username}@example.com"
        assert agent.storage.tokens.scope == "mcp profile email"
    else:
        assert agent.storage.tokens.scope == "mcp profile"
