"""A third-party app's MCP contributions: a sync tool using the ORM, a slow async tool, a prompt and a
resource, with a scope."""

import os

import anyio
from django.contrib.auth import get_user_model

from authserver.scopes import Scope, scope_registry
from mcpapp.registry import current_user, mcp_registry

scope_registry.register(Scope("greetings", "Greet you by name"))


@mcp_registry.tool(scopes=["greetings"], title="Greet me")
def greet(greeting: str = "Hello") -> str:
    """Greet the user by their first name (a plain function: the ORM is used as in any Django view)."""
    user = get_user_model().objects.get(pk=current_user().pk)
    return f"{greeting}, {user.first_name}!"


PAUSE_LIMIT_SECONDS = 5.0


@mcp_registry.tool(scopes=["greetings"], title="Pause")
async def pause(seconds: float = 1.0) -> str:
    """Answer after ``seconds`` (at most 5): a request that is still in flight a while, for the fault tests."""
    seconds = min(max(seconds, 0.0), PAUSE_LIMIT_SECONDS)
    await anyio.sleep(seconds)
    return f"Paused {seconds:g} s"


@mcp_registry.prompt(scopes=["greetings"], title="Greeting card")
def greeting_card(occasion: str) -> str:
    return f"Write a {occasion} card for {current_user().first_name}."


@mcp_registry.resource("greetings://motto", title="Motto", mime_type="text/plain")
def motto() -> str:
    return "Be kind."


@mcp_registry.tool(title="Worker process")
def worker_process() -> int:
    """The id of the server process that answered (which worker a connection reached, for the tests)."""
    return os.getpid()
