"""Per-tool scopes on the MCP endpoint: every tool is listed with what it needs; using one without it is
answered 403 insufficient_scope with that scope before anything runs (MCP authorization, scope challenge)."""

import json

import anyio
import pytest
from django.core.checks import Error
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.mcpserver.exceptions import ToolError

from authserver.scopes import Scope, scope_registry
from live.paths import MCP_METADATA_PATH, MCP_PATH
from mcpapp.checks import check_declared_scopes
from mcpapp.registry import MCPRegistry, current_user
from mcpapp.server import build_server
from mcpapp.verifier import DotTokenVerifier
from notes.models import Note
from tests.factories import make_access_token, make_client
from tests.mcpapp.helpers import HEADERS, bearer, mcp_session, rpc, run_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent():
    return make_client()


def post(body, token=None, *, version=None, **kwargs):
    headers = {**HEADERS, **(bearer(token) if token else {}), **({"MCP-Protocol-Version": version} if version else {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return run_app(lambda http: http.post(MCP_PATH, content=content, headers=headers), **kwargs)


def call(name, arguments=None):
    return rpc("tools/call", {"name": name, "arguments": arguments or {}})


def challenge_scope(response) -> str:
    return response.headers["www-authenticate"].split('scope="')[1].split('"')[0]


def test_tools_list_shows_every_tool_with_the_scopes_it_needs_even_to_a_base_scope_token(alice, agent):
    token = make_access_token(alice, agent, scope="mcp")
    tools = mcp_session(token, lambda client: client.list_tools()).tools
    needs = {tool.name: tool.meta["securitySchemes"][0]["scopes"] for tool in tools}
    assert needs == {
        "whoami": ["mcp", "profile"],
        "list_notes": ["mcp", "notes:read"],
        "search_notes": ["mcp", "notes:read"],
        "create_note": ["mcp", "notes:write"],
    }
    assert all(tool.meta["securitySchemes"][0]["type"] == "oauth2" for tool in tools)


def test_calling_a_tool_without_its_scope_is_a_403_challenge_and_the_tool_never_runs(alice, agent):
    token = make_access_token(alice, agent, scope="mcp notes:read")
    response = post(call("create_note", {"title": "Sneaky"}), token)

    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_scope"')
    assert challenge_scope(response) == "mcp notes:read notes:write"
    assert f'resource_metadata="http://testserver{MCP_METADATA_PATH}"' in challenge
    assert response.json()["error"] == "insufficient_scope"
    assert not Note.objects.exists()


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18"])
def test_mcp_2025_11_25_step_up_challenge_carries_the_scopes_already_granted(alice, agent, version):
    """MCP 2025-11-25 authorization, runtime insufficient scope: such a client asks for exactly what the
    challenge names, so the challenge names what it holds too; its next token loses nothing."""
    token = make_access_token(alice, agent, scope="mcp notes:read profile")
    response = post(call("create_note", {"title": "x"}), token, version=version)
    assert response.status_code == 403
    assert challenge_scope(response) == "mcp notes:read profile notes:write"


def test_sep_2350_step_up_challenge_to_a_2026_07_28_client_names_only_what_the_request_needs(alice, agent):
    """SEP-2350 (MCP 2026-07-28): the client unions what it holds with the challenge itself."""
    token = make_access_token(alice, agent, scope="mcp notes:read profile")
    response = post(call("create_note", {"title": "x"}), token, version="2026-07-28")
    assert response.status_code == 403
    assert challenge_scope(response) == "mcp notes:write"


def test_a_401_for_a_tool_call_hints_at_the_scope_that_tool_needs(alice, agent):
    response = post(call("create_note", {"title": "x"}))
    assert response.status_code == 401
    assert challenge_scope(response) == "mcp notes:write"
    expired = post(call("list_notes"), make_access_token(alice, agent, expires_in=-1))
    assert expired.status_code == 401
    assert challenge_scope(expired) == "mcp notes:read"


def test_the_broad_notes_scope_covers_reading_and_writing(alice, agent):
    token = make_access_token(alice, agent, scope="mcp notes")

    async def use(client):
        created = await client.call_tool("create_note", {"title": "Broad", "body": "covered"})
        return created, await client.call_tool("list_notes", {})

    created, listed = mcp_session(token, use)
    assert not created.is_error and not listed.is_error
    assert [note["title"] for note in listed.structured_content["notes"]] == ["Broad"]


def test_reading_a_note_resource_needs_notes_read(alice, agent):
    note = Note.objects.create(owner=alice, title="Plan", body="step one")
    uri = f"notes://note/{note.pk}"
    refused = post(rpc("resources/read", {"uri": uri}), make_access_token(alice, agent, scope="mcp"))
    assert refused.status_code == 403
    assert challenge_scope(refused) == "mcp notes:read"

    read = mcp_session(make_access_token(alice, agent, scope="mcp notes:read"), lambda c: c.read_resource(uri))
    assert read.contents[0].text == "# Plan\n\nstep one\n"
    assert read.contents[0].mime_type == "text/markdown"


@pytest.mark.parametrize(
    "body",
    [
        call("no_such_tool"),
        rpc("tools/call", {"arguments": {}}),
        rpc("tools/call", ["not", "an", "object"]),
        rpc("resources/read", {"uri": 42}),
        [call("create_note")],
        "just a string",
        b"{not json",
    ],
    ids=["unknown-tool", "no-name", "params-array", "uri-not-string", "batch", "string", "malformed"],
)
def test_requests_that_use_no_registered_entry_pass_to_the_sdk_without_a_challenge_or_a_500(alice, agent, body):
    response = post(body, make_access_token(alice, agent, scope="mcp"))
    assert response.status_code != 500
    if isinstance(body, list):  # a batch that calls create_note still needs its scope
        assert response.status_code == 403
        assert challenge_scope(response) == "mcp notes:write"
    else:
        assert response.status_code not in (401, 403)
        assert "www-authenticate" not in response.headers


def test_an_oversized_request_body_gets_a_json_413(alice, agent):
    body = json.dumps(call("create_note", {"title": "x", "body": "a" * (5 * 1024 * 1024)})).encode()
    response = post(body, make_access_token(alice, agent, scope="mcp notes"))
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"
    assert not Note.objects.exists()


def test_an_entry_called_without_its_scope_past_the_gate_still_refuses(alice, agent):
    """Defence in depth: the entry checks the token again (e.g. if mounted without RequireBearerToken)."""
    token = make_access_token(alice, agent, scope="mcp notes:read")
    verified = anyio.run(DotTokenVerifier().verify_token, token)
    server = build_server()

    async def call_directly():
        auth_context_var.set(AuthenticatedUser(verified))
        return await server.call_tool("create_note", {"title": "Past the gate"})

    with pytest.raises(ToolError, match="needs the scope"):
        anyio.run(call_directly)
    assert not Note.objects.exists()


def test_a_sync_tool_may_use_the_orm_as_usual(alice, agent):
    registry = MCPRegistry()

    @registry.tool()
    def note_count() -> int:
        """A plain function: run in Django's sync thread, so the ORM just works."""
        return Note.objects.filter(owner=current_user()).count()

    Note.objects.create(owner=alice, title="One")
    result = mcp_session(
        make_access_token(alice, agent, scope="mcp"), lambda c: c.call_tool("note_count", {}), registry=registry
    )
    assert not result.is_error, result
    assert result.structured_content == {"result": 1}


def test_a_tool_needing_a_scope_nobody_registered_fails_the_system_check():
    registry = MCPRegistry()

    @registry.tool(scopes=["notes:raed"])
    async def typo() -> str:
        return ""

    (error,) = check_declared_scopes(registry=registry)
    assert isinstance(error, Error)
    assert error.id == "mcpapp.E001"
    assert "'notes:raed'" in error.msg


def test_the_project_passes_its_own_scope_check():
    assert check_declared_scopes() == []


def test_two_entries_under_one_name_are_refused():
    registry = MCPRegistry()

    @registry.tool(name="same")
    async def first() -> str:
        return ""

    with pytest.raises(ValueError, match="already registered"):

        @registry.tool(name="same")
        async def second() -> str:
            return ""


def test_scopes_an_app_registers_are_what_the_consent_page_describes():
    assert scope_registry["notes:write"] == Scope("notes:write", "Add notes for you")
