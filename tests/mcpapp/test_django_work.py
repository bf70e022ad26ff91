"""Django's request lifecycle on the MCP endpoints (``mcpapp.work``): a request that runs synchronous
code gets ``request_started`` / ``request_finished`` in its own thread, around that code, and its
database connection closed after it with ``CONN_MAX_AGE = 0``, kept for the next request otherwise;
one that runs none pays for neither; the threads serve request after request; in stateful mode
each tool call is a unit of its own."""

import gc
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import signals
from django.db import connection, connections

from mcpapp import lifecycle
from mcpapp.registry import MCPRegistry, current_user
from mcpapp.work import RequestThreads, request_threads
from tests.factories import make_access_token, make_client
from tests.mcpapp.helpers import mcp_session
from tests.overrides import mcpapp_settings

pytestmark = pytest.mark.django_db(transaction=True)


class Lifecycle:
    """What Django's request signals and a sync tool saw: (event, thread, connection open?)."""

    def __init__(self):
        self.events: list[tuple[str, str, bool]] = []

    def note(self, event: str) -> None:
        self.events.append((event, threading.current_thread().name, connection.connection is not None))

    def started(self, **kwargs):
        self.note("started")

    def finished(self, **kwargs):
        # Connected after Django's close_old_connections: sees what it left.
        self.note("finished")

    def __enter__(self):
        signals.request_started.connect(self.started)
        signals.request_finished.connect(self.finished)
        return self

    def __exit__(self, *exc):
        signals.request_started.disconnect(self.started)
        signals.request_finished.disconnect(self.finished)


@pytest.fixture
def registry():
    registry = MCPRegistry()
    seen = []

    @registry.tool()
    def first_name() -> str:
        """A plain function using the ORM, as in a view."""
        name = get_user_model().objects.get(pk=current_user().pk).first_name
        seen.append((threading.current_thread().name, connection.connection is not None))
        return name

    @registry.tool()
    async def echo(text: str) -> str:
        return text

    registry.seen = seen
    return registry


def session(token, interaction, registry):
    return mcp_session(token, interaction, registry=registry)


@pytest.fixture
def conn_max_age():
    """Sets ``CONN_MAX_AGE`` for connections opened from now on (each reads it when it connects),
    with no kept thread holding a connection opened before."""
    database = connections.settings["default"]
    before = database["CONN_MAX_AGE"]
    request_threads.close_all()
    yield lambda seconds: database.__setitem__("CONN_MAX_AGE", seconds)
    database["CONN_MAX_AGE"] = before
    request_threads.close_all()


def test_a_sync_tool_runs_between_the_request_signals_in_one_thread_and_its_connection_is_closed_after(
    alice, registry, conn_max_age
):
    conn_max_age(0)
    token = make_access_token(alice, make_client(), scope="mcp")

    async def calls(client):
        return [await client.call_tool("first_name", {}), await client.call_tool("first_name", {})]

    with Lifecycle() as lifecycle:
        results = session(token, calls, registry)
    assert [result.structured_content for result in results] == [{"result": "Alice"}] * 2
    tool_threads = [thread for thread, _ in registry.seen]
    assert all(name.startswith("mcp-django") for name in tool_threads)
    assert all(open_ for _, open_ in registry.seen)
    # Each call's request: started, then the tool, then finished, in that same thread; the ORM's
    # connection is open in the tool and closed once the request finished (CONN_MAX_AGE = 0).
    for tool_thread in tool_threads:
        around = [(event, open_) for event, thread, open_ in lifecycle.events if thread == tool_thread]
        assert ("started", False) in around and ("finished", False) in around
    # The threads are kept: the second request did not need a new one.
    assert len(set(tool_threads)) == 1


def test_with_persistent_connections_the_next_request_reuses_its_threads_connection(alice, registry, conn_max_age):
    conn_max_age(60)
    token = make_access_token(alice, make_client(), scope="mcp")
    used = []

    @registry.tool()
    def connection_id() -> int:
        get_user_model().objects.filter(pk=current_user().pk).exists()
        used.append(id(connection.connection))
        return 0

    async def calls(client):
        for _ in range(3):
            await client.call_tool("connection_id", {})

    with Lifecycle() as lifecycle:
        session(token, calls, registry)
    assert len(used) == 3 and len(set(used)) == 1  # one connection, opened once
    assert ("finished", True) in [(event, open_) for event, _, open_ in lifecycle.events]


def test_requests_that_run_no_sync_code_send_no_request_signals_and_take_no_thread(alice, registry):
    """tools/list, an async tool with a remembered token: nothing of Django's to set up or clean."""
    token = make_access_token(alice, make_client(), scope="mcp")

    async def warm_then_calls(client):
        await client.list_tools()  # the token's first use looks it up: a unit that ran sync code
        idle = len(request_threads)
        with Lifecycle() as lifecycle:
            await client.list_tools()
            result = await client.call_tool("echo", {"text": "hi"})
        return idle, lifecycle.events, result

    idle, events, result = session(token, warm_then_calls, registry)
    assert result.structured_content == {"result": "hi"}
    assert events == []
    assert len(request_threads) == idle


def test_in_stateful_mode_a_sync_tool_called_from_the_session_gets_its_own_unit(alice, registry):
    """The SDK runs a session's tools in the session's task, which outlives the request that opened it."""
    token = make_access_token(alice, make_client(), scope="mcp")
    with mcpapp_settings(STATELESS_HTTP=False), Lifecycle() as lifecycle:
        result = session(token, lambda client: client.call_tool("first_name", {}), registry)
    assert result.structured_content == {"result": "Alice"}
    (tool_thread, open_in_tool) = registry.seen[0]
    assert open_in_tool
    around = [event for event, thread, _ in lifecycle.events if thread == tool_thread]
    assert around[:1] == ["started"] and around[-1:] == ["finished"]


def test_threads_beyond_those_kept_close_their_connections_and_end():
    threads = RequestThreads(keep=1)
    kept, extra = threads.take(), threads.take()
    opened = []

    def use_database():
        connections["default"].ensure_connection()
        opened.append(connections["default"])  # this thread's own

    for thread in (kept, extra):
        thread.submit(use_database).result(timeout=10)
    threads.give_back(kept)
    threads.give_back(extra)  # one too many: closes its connection, then ends
    extra.shutdown(wait=True)
    assert len(threads) == 1
    assert opened[1].connection is None
    assert opened[0].connection is not None
    kept.submit(connections.close_all).result(timeout=10)
    kept.shutdown(wait=True)


def test_what_start_up_built_is_frozen_out_of_the_collector_once_unless_the_site_turns_it_off(monkeypatch):
    """MCPAPP["GC_FREEZE_AT_STARTUP"]: later collections scan only what requests make."""
    monkeypatch.setattr(lifecycle, "_heap_frozen", False)
    gc.unfreeze()
    with mcpapp_settings(GC_FREEZE_AT_STARTUP=False):
        lifecycle.freeze_startup_heap()
    assert gc.get_freeze_count() == 0
    lifecycle.freeze_startup_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    gc.collect()  # what a request made meanwhile is collected as usual; the frozen part stays
    lifecycle.freeze_startup_heap()  # a second lifespan in the process: nothing more
    assert gc.get_freeze_count() == frozen
