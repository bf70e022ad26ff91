"""An installed app's ``mcp_tools.py`` is discovered with nothing but ``INSTALLED_APPS`` changed:
its scope reaches the consent page and the metadata, its tool, prompt and resource are served."""

import anyio
import httpx2
import pytest

from live.paths import MCP_PATH
from live.person import Person
from live.server import LiveServer
from tests.e2e.agent import Agent

PASSWORD = "greetings from the test app"


@pytest.fixture(scope="module")
def server_with_test_app(tmp_path_factory):
    server = LiveServer(
        tmp_path_factory.mktemp("live-test-app"), env={"DJANGO_SETTINGS_MODULE": "tests.settings_with_test_app"}
    ).start()
    server.create_user("gina", PASSWORD, first_name="Gina")
    yield server
    server.stop()


def test_a_tool_module_in_an_installed_app_is_discovered_and_served(server_with_test_app):
    server = server_with_test_app
    agent = Agent(server.url + MCP_PATH, Person("gina", PASSWORD))

    async def session():
        async with agent.connect(mode="2026-07-28") as client:
            greeted = await client.call_tool("greet", {"greeting": "Good morning"})
            tools = await client.list_tools()
            prompts = await client.list_prompts()
            card = await client.get_prompt("greeting_card", {"occasion": "birthday"})
            motto = await client.read_resource("greetings://motto")
            return greeted, tools, prompts, card, motto

    greeted, tools, prompts, card, motto = anyio.run(session)

    # The app's own scope was asked for, by the description the app gave it.
    (consent,) = agent.person.consent_pages
    assert "Greet you by name" in consent
    assert agent.storage.tokens.scope == "mcp greetings"
    # Its sync tool ran with the ORM, for the signed-in user.
    assert not greeted.is_error, greeted
    assert greeted.content[0].text == "Good morning, Gina!"
    greet = next(tool for tool in tools.tools if tool.name == "greet")
    assert greet.meta["securitySchemes"][0]["scopes"] == ["mcp", "greetings"]
    # The project's own tools are still there beside it.
    assert {"whoami", "list_notes", "greet"} <= {tool.name for tool in tools.tools}
    assert [prompt.name for prompt in prompts.prompts] == ["greeting_card"]
    assert card.messages[0].content.text == "Write a birthday card for Gina."
    assert motto.contents[0].text == "Be kind."

    metadata = httpx2.get(server.url + "/.well-known/oauth-authorization-server").json()
    assert "greetings" in metadata["scopes_supported"]
