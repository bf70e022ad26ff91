"""Per-tool scopes, end to end with the MCP Python SDK's OAuth client and the demo notes app.

The agent connects with the base scope; each tool that needs more answers 403 insufficient_scope
with the scope it needs, and the SDK client re-authorizes on its own (the person consents to just
the new scope) and retries, all within one client session.
"""

import re
import secrets

import anyio
import pytest

from live.paths import MCP_PATH
from live.person import Person
from tests.e2e.agent import Agent

PASSWORD = "notes are private"


def new_person(server, name: str, **kwargs) -> Person:
    username = name + secrets.token_hex(3)
    server.create_user(username, PASSWORD, email=f"{username}@example.com")
    return Person(username, PASSWORD, **kwargs)


def asked_scopes(page: str) -> list[str]:
    """The scopes a consent page asks for (its checkboxes), not those it says were allowed before."""
    return re.findall(r'<input type="checkbox" id="scope-([^"]+)"', page)


def scope_of(challenge: str) -> str:
    return challenge.split('scope="')[1].split('"')[0]


def test_agent_authorized_to_read_steps_up_to_write_in_one_session(running_server):
    """MCP 2026-07-28: no initialize, so the first request is the tool call, and its 401 asks for
    exactly what list_notes needs."""
    agent = Agent(running_server.url + MCP_PATH, new_person(running_server, "nora"))

    async def session():
        async with agent.connect(mode="2026-07-28") as client:
            first = await client.call_tool("list_notes", {})
            scope_before_write = agent.storage.tokens.scope
            created = await client.call_tool("create_note", {"title": "Groceries", "body": "eggs, flour"})
            listed = await client.call_tool("list_notes", {})
            return first, scope_before_write, created, listed

    first, scope_before_write, created, listed = anyio.run(session)

    # Authorized for reading only (the 401 said what list_notes needs), list_notes worked.
    assert [scope_of(challenge) for challenge in agent.challenges(401)] == ["mcp notes:read"]
    assert scope_before_write == "mcp notes:read"
    assert not first.is_error, first
    assert first.structured_content == {"notes": [], "total": 0}
    # create_note was refused before it ran: 403 insufficient_scope naming what it needs.
    (challenge,) = agent.challenges(403)
    assert 'error="insufficient_scope"' in challenge
    assert scope_of(challenge) == "mcp notes:write"
    assert f'resource_metadata="{running_server.url}/.well-known/oauth-protected-resource/star/mcp"' in challenge
    # The SDK client re-authorized on its own; the consent page listed only the new scope.
    first_consent, step_up_consent = agent.person.consent_pages
    assert asked_scopes(first_consent) == ["mcp", "notes:read"]
    assert asked_scopes(step_up_consent) == ["notes:write"]
    assert "Add notes for you" in step_up_consent
    # The retried create_note succeeded, and the token now carries both.
    assert not created.is_error, created
    assert created.structured_content["title"] == "Groceries"
    assert [note["title"] for note in listed.structured_content["notes"]] == ["Groceries"]
    assert agent.storage.tokens.scope == "mcp notes:read notes:write"


def test_agent_on_protocol_2025_11_25_steps_up_once_per_new_scope(running_server):
    """2025-11-25 clients initialize first, so they connect with the base scope and step up per tool."""
    agent = Agent(running_server.url + MCP_PATH, new_person(running_server, "nils"))

    async def session():
        async with agent.connect(mode="legacy") as client:
            first = await client.call_tool("list_notes", {})
            created = await client.call_tool("create_note", {"title": "Call the vet"})
            return first, created

    first, created = anyio.run(session)

    assert not first.is_error and not created.is_error
    assert [scope_of(challenge) for challenge in agent.challenges(401)] == ["mcp"]
    # MCP 2025-11-25: the challenge carries what the token holds too (the client asks for exactly it).
    challenged = [scope_of(challenge) for challenge in agent.challenges(403)]
    assert challenged == ["mcp notes:read", "mcp notes:read notes:write"]
    assert [asked_scopes(page) for page in agent.person.consent_pages] == [["mcp"], ["notes:read"], ["notes:write"]]
    assert agent.storage.tokens.scope == "mcp notes:read notes:write"


def test_a_person_who_refuses_the_step_up_keeps_the_agent_reading_but_not_writing(running_server):
    person = new_person(running_server, "rita")
    agent = Agent(running_server.url + MCP_PATH, person)

    async def call(name, arguments):
        async with agent.connect(mode="2026-07-28") as client:
            return await client.call_tool(name, arguments)

    assert not anyio.run(call, "list_notes", {}).is_error
    person.allow = False  # the step-up consent page is answered "Deny"
    # The SDK client gives up on the call (and, being the SDK, on that session).
    with pytest.raises(ExceptionGroup) as refused:
        anyio.run(call, "create_note", {"title": "Should not exist"})
    assert refused.group_contains(PermissionError, match="access_denied")
    assert agent.callbacks[-1]["error"] == "access_denied"

    # What the person allowed before still stands; what they refused never happened.
    listed = anyio.run(call, "list_notes", {})
    assert not listed.is_error, listed
    assert listed.structured_content == {"notes": [], "total": 0}
    assert agent.storage.tokens.scope == "mcp notes:read"


def test_two_people_with_two_agents_never_see_each_others_notes(running_server):
    alice_agent = Agent(running_server.url + MCP_PATH, new_person(running_server, "ann"))
    bob_agent = Agent(running_server.url + MCP_PATH, new_person(running_server, "ben"))

    async def use(agent, secret):
        async with agent.connect() as client:
            mine = await client.call_tool("create_note", {"title": f"Diary of {secret}", "body": f"the {secret} code"})
            await client.call_tool("create_note", {"title": "Shared word", "body": "rendezvous"})
            return mine.structured_content

    alice_note = anyio.run(use, alice_agent, "alpaca")
    bob_note = anyio.run(use, bob_agent, "bison")
    assert alice_agent.storage.client_info.client_id != bob_agent.storage.client_info.client_id

    async def look(agent, other_note, other_secret):
        async with agent.connect() as client:
            listed = await client.call_tool("list_notes", {"limit": 100})
            found_other = await client.call_tool("search_notes", {"query": other_secret})
            found_shared = await client.call_tool("search_notes", {"query": "rendezvous"})
            with pytest.raises(Exception) as unreadable:
                await client.read_resource(other_note["uri"])
            return (
                listed.structured_content,
                found_other.structured_content,
                found_shared.structured_content,
                (unreadable.value),
            )

    for agent, own, other, other_secret in (
        (alice_agent, alice_note, bob_note, "bison"),
        (bob_agent, bob_note, alice_note, "alpaca"),
    ):
        listed, found_other, found_shared, unreadable = anyio.run(look, agent, other, other_secret)
        assert {note["title"] for note in listed["notes"]} == {own["title"], "Shared word"}
        assert listed["total"] == 2
        assert found_other == {"notes": [], "total": 0}
        assert found_shared["total"] == 1
        assert {note["id"] for note in found_shared["notes"]} < {note["id"] for note in listed["notes"]}
        assert f"No note {other['id']}" in str(unreadable)
        assert other_secret not in str(listed) + str(found_shared)
