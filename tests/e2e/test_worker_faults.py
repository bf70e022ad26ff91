"""A worker killed under load, and a graceful shutdown, under the production command.

- A worker is killed: only its requests in flight fail, the others go on, the supervisor replaces it,
  and no token is left half-written.
- SIGTERM: requests in flight are answered in full, then the server exits cleanly. (During the drain,
  uvicorn's supervisor keeps its copy of the listening socket, so a new connection waits and is reset
  at exit rather than refused: a load balancer should stop sending before it signals.)

Clients retry the way a careful client would (honouring ``Retry-After``, retrying a lost refresh
once); every loop is bounded by a deadline, and the numbers are printed (``pytest -s`` shows them).
"""

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx2
import pytest

from live.server import LiveServer, production_env
from tests.e2e.spread_client import (
    PASSWORD,
    PAUSE_SECONDS,
    OpenStream,
    SlowToolCall,
    connected_agent,
    refresh,
    tool_call,
    tool_result,
    whoami,
)

# --- A worker killed under load -----------------------------------------------------------------

AGENTS = 8
REFRESH_EVERY = 2  # every other request of an agent is a refresh, the others tool calls
CALLS_BEFORE_KILL = 40  # answered requests, all agents together
CALLS_AFTER_KILL = 15  # answered requests per agent after the kill, before the load stops


@dataclass
class Exchange:
    """One request of the load: ``status`` None is a transport error (the connection broke, no answer)."""

    kind: str  # "tool", "refresh", or "refresh retry" (the same refresh token again after a transport error)
    started: float
    ended: float
    status: int | None
    detail: str = ""  # the transport error, or the OAuth error of a refusal


@dataclass
class LoadAgent:
    """An agent calling whoami and refreshing its tokens in a loop, each request on a new connection.

    After a transport error on a refresh it retries once with the same refresh token: if the
    killed worker had already rotated it, the answer is 400 invalid_grant and the agent stops
    (it would send its person through the authorization flow again).
    """

    server: LiveServer
    username: str
    client_id: str
    access_token: str
    refresh_token: str
    exchanges: list[Exchange] = field(default_factory=list)
    refreshes: int = 0  # refreshes the agent got an answer to
    lost_refresh: bool = False

    @classmethod
    def connected(cls, server: LiveServer, username: str) -> "LoadAgent":
        agent = connected_agent(server, username)
        tokens = agent.storage.tokens
        return cls(server, username, agent.storage.client_info.client_id, tokens.access_token, tokens.refresh_token)

    def run(self, stop: threading.Event, deadline: float) -> None:
        count = 0
        while not stop.is_set() and time.monotonic() < deadline and not self.lost_refresh:
            count += 1
            if count % REFRESH_EVERY == 0:
                self.refresh()
            else:
                self.send("tool", lambda: tool_call(self.server, self.access_token, "whoami"))

    def refresh(self) -> None:
        answer = self.send("refresh", lambda: refresh(self.server, self.client_id, self.refresh_token))
        if answer is None:
            answer = self.send("refresh retry", lambda: refresh(self.server, self.client_id, self.refresh_token))
        if answer is not None and answer.status_code == 200:
            tokens = answer.json()
            self.access_token, self.refresh_token = tokens["access_token"], tokens["refresh_token"]
            self.refreshes += 1
        elif answer is not None and answer.status_code == 400:
            self.lost_refresh = True

    def send(self, kind: str, request) -> httpx2.Response | None:
        started = time.monotonic()
        try:
            response = request()
        except httpx2.TransportError as error:
            self.exchanges.append(Exchange(kind, started, time.monotonic(), None, type(error).__name__))
            return None
        detail = ""
        if kind == "tool" and response.status_code == 200:
            result = tool_result(response)
            if result["isError"] or result["structuredContent"]["username"] != self.username:
                detail = "tool error"
        elif response.status_code >= 400 and response.headers.get("content-type") == "application/json":
            detail = response.json().get("error", "")
        self.exchanges.append(Exchange(kind, started, time.monotonic(), response.status_code, detail))
        return response

    def answered_since(self, moment: float) -> int:
        return sum(1 for exchange in self.exchanges if exchange.status == 200 and exchange.started > moment)


# The token tables as rows: live access tokens only (a family revoked for reuse keeps its access
# tokens, expired; RFC 7592 registration access tokens, which have no refresh token, are left out).
TOKEN_ROWS = """
import json
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings
access_tokens = get_access_token_model().objects.exclude(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
print(json.dumps({
    "access": list(access_tokens.filter(expires__gt=timezone.now()).values("pk", "source_refresh_token_id")),
    "refresh": [
        {**row, "token_family": str(row["token_family"]), "revoked": row["revoked"] is not None}
        for row in get_refresh_token_model().objects.values(
            "pk", "application__client_id", "token_family", "revoked", "access_token_id"
        )
    ],
}))
"""


def token_state_problems(state: dict) -> list[str]:
    """Half-written token state, one line per broken rule (none when consistent).

    DOT rotates a refresh token in one transaction: it revokes the old one (deleting its access
    token) and creates a new access token, pointing back at the old refresh token with
    ``source_refresh_token``, and a new refresh token of the same family for it.
    """
    access = {row["pk"]: row for row in state["access"]}
    refresh_rows = {row["pk"]: row for row in state["refresh"]}
    families = defaultdict(list)
    for row in state["refresh"]:
        families[row["token_family"]].append(row)
    problems = []
    live_access_ids = {row["access_token_id"] for row in state["refresh"] if not row["revoked"]}
    problems += [f"access token {pk} has no live refresh token" for pk in access if pk not in live_access_ids]
    for family, rows in families.items():
        live = [row for row in rows if not row["revoked"]]
        if len(live) > 1:
            problems.append(f"family {family} has {len(live)} live refresh tokens")
        for row in live:
            if row["access_token_id"] not in access:
                problems.append(f"live refresh token {row['pk']} lost its access token")
                continue
            source = refresh_rows.get(access[row["access_token_id"]]["source_refresh_token_id"])
            if len(rows) > 1 and (source is None or source["token_family"] != family or not source["revoked"]):
                problems.append(f"refresh token {row['pk']} is not linked to the revoked token it replaced")
    return problems


def family_sizes(state: dict) -> dict[str, list[tuple[int, int]]]:
    """For each client: (refresh tokens issued, how many still live) per token family."""
    families = defaultdict(list)
    for row in state["refresh"]:
        families[(row["application__client_id"], row["token_family"])].append(row)
    sizes = defaultdict(list)
    for (client_id, _family), rows in families.items():
        sizes[client_id].append((len(rows), sum(1 for row in rows if not row["revoked"])))
    return sizes


def wait_for_workers(server: LiveServer, count: int, *, without: int, deadline_seconds: float) -> list[int]:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        pids = server.worker_pids()
        if len(pids) == count and without not in pids:
            return pids
        time.sleep(0.2)
    return server.worker_pids()


def worker_serving(server: LiveServer, client_port: int) -> int:
    """The worker process holding the server side of the connection from ``client_port`` (Linux /proc)."""
    inode = None
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local_port, remote_port) == (server.port, client_port):
            inode = fields[9]
    for pid in server.worker_pids():
        for descriptor in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(descriptor.path) == f"socket:[{inode}]":
                    return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def test_a_worker_killed_under_load_fails_only_its_requests_in_flight_and_leaves_no_half_written_token(tmp_path):
    env = production_env(DJANGO_SETTINGS_MODULE="tests.settings_with_test_app")  # for its pause tool
    server = LiveServer(tmp_path, workers=3, env=env).start()
    try:
        server.create_user("alice", PASSWORD)
        agents = [LoadAgent.connected(server, "alice") for _ in range(AGENTS)]  # one person, several agents
        pausing_token = connected_agent(server, "alice", tool="greet").storage.tokens.access_token
        stop, deadline = threading.Event(), time.monotonic() + 60
        threads = [threading.Thread(target=agent.run, args=(stop, deadline)) for agent in agents]
        for thread in threads:
            thread.start()
        try:
            while time.monotonic() < deadline and sum(a.answered_since(0) for a in agents) < CALLS_BEFORE_KILL:
                time.sleep(0.05)
            # The worker to kill is one busy with a slow tool call, besides whatever load it has.
            slow = SlowToolCall(server, pausing_token)
            assert slow.started.wait(timeout=30) and not slow.error, slow.error
            victim = worker_serving(server, slow.client_port)
            kill_sent = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            workers_after = wait_for_workers(server, 3, without=victim, deadline_seconds=30)
            while time.monotonic() < deadline and any(
                agent.answered_since(killed) < CALLS_AFTER_KILL for agent in agents if not agent.lost_refresh
            ):
                time.sleep(0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=40)
        state = json.loads(server.manage("shell", "-c", TOKEN_ROWS).splitlines()[-1])
        final_users = [whoami(server, agent.access_token) for agent in agents if not agent.lost_refresh]
    finally:
        server.stop()

    exchanges = [exchange for agent in agents for exchange in agent.exchanges]
    statuses = Counter(exchange.status for exchange in exchanges)
    transport_errors = [exchange for exchange in exchanges if exchange.status is None]
    lost = [agent for agent in agents if agent.lost_refresh]
    print(
        f"\nworker kill: {sum(e.ended < kill_sent for e in exchanges)} requests before the kill, "
        f"{sum(e.started > killed for e in exchanges)} after; answers {dict(statuses)}; "
        f"transport errors {[(e.kind, e.detail) for e in transport_errors]} (and the slow call: {slow.answer()}); "
        f"refreshes lost in flight (400 on retry): {len(lost)}, "
        f"refreshes retried successfully: {sum(e.kind == 'refresh retry' and e.status == 200 for e in exchanges)}"
    )
    # No request was answered with a server error, and nothing but refresh retries was refused.
    assert not [e for e in exchanges if e.status is not None and e.status >= 500]
    refusals = [e for e in exchanges if e.status is not None and e.status != 200]
    assert all(e.kind == "refresh retry" and (e.status, e.detail) == (400, "invalid_grant") for e in refusals), refusals
    assert not [e for e in exchanges if e.detail == "tool error"]
    # The slow call in flight on the killed worker was cut, and the only other failures are load
    # requests that were in flight at the kill: at most one per agent.
    assert slow.answer() != f"Paused {PAUSE_SECONDS} s"
    assert all(e.started < killed and e.ended > kill_sent for e in transport_errors), transport_errors
    assert len(transport_errors) <= AGENTS
    assert len(lost) <= len([e for e in transport_errors if e.kind == "refresh"])
    # The other workers kept serving every agent, and the supervisor replaced the killed one.
    assert all(agent.answered_since(killed) >= CALLS_AFTER_KILL for agent in agents if not agent.lost_refresh)
    assert len(workers_after) == 3 and victim not in workers_after
    # Every agent ends with a working token, but one whose refresh answer was lost in flight.
    assert final_users == ["alice"] * (AGENTS - len(lost)), final_users
    # The database holds no half-written token, and each client's token family has exactly the
    # rotations its agent saw (plus the one lost in flight), one live token left unless it was lost.
    assert token_state_problems(state) == []
    sizes = family_sizes(state)
    for agent in agents:
        expected = (1 + agent.refreshes + agent.lost_refresh, 0 if agent.lost_refresh else 1)
        assert sizes[agent.client_id] == [expected], (agent.client_id, sizes[agent.client_id], expected)


# --- Graceful shutdown ------------------------------------------------------------------------


def connection_outcome(server: LiveServer) -> str:
    """What a new client gets: an answer, or "refused" (nothing listens), or another transport error."""
    try:
        return f"answered {httpx2.get(server.url + '/.well-known/oauth-authorization-server', timeout=30).status_code}"
    except httpx2.ConnectError:
        return "refused"
    except httpx2.TransportError as error:
        return type(error).__name__


def wait_for_log(server: LiveServer, text: str, count: int, *, deadline_seconds: float) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if server.log_path.read_text().count(text) >= count:
            return True
        time.sleep(0.05)
    return False


@dataclass
class Shutdown:
    """What was seen around one SIGTERM to the supervisor of a 2-worker server."""

    paused: str  # what the request in flight at the signal got back
    stream: str  # how the event stream open at the signal ended
    new_connection_while_draining: str
    new_connection_after_exit: str
    exit_code: int | None
    log: str


@pytest.fixture(scope="module")
def shutdown(tmp_path_factory):
    env = production_env(DJANGO_SETTINGS_MODULE="tests.settings_with_test_app", UVICORN_LOG_LEVEL="info")
    server = LiveServer(tmp_path_factory.mktemp("graceful"), workers=2, env=env).start()
    try:
        server.create_user("gina", PASSWORD, first_name="Gina")
        access_token = connected_agent(server, "gina", tool="greet").storage.tokens.access_token
        stream = OpenStream(server, access_token)
        slow = SlowToolCall(server, access_token)
        assert stream.started.wait(timeout=30) and stream.ended == "answered 200", stream.ended
        assert slow.started.wait(timeout=30) and not slow.error, slow.error
        server.process.send_signal(signal.SIGTERM)
        # Both workers have stopped accepting once each logged it; the slow call is still running.
        assert wait_for_log(server, "Shutting down", 2, deadline_seconds=PAUSE_SECONDS)
        outcomes: list[str] = []
        draining = threading.Thread(target=lambda: outcomes.append(connection_outcome(server)))
        draining.start()
        paused = slow.answer()
        try:
            exit_code = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            exit_code = None
        draining.join(timeout=35)
        stream.thread.join(timeout=30)
        observed = Shutdown(
            paused, stream.ended, outcomes[0], connection_outcome(server), exit_code, server.log_path.read_text()
        )
        print(
            f"\nshutdown: the call in flight got {observed.paused!r}; the open stream {observed.stream}; "
            f"a new connection while draining: {observed.new_connection_while_draining}; "
            f"after the exit ({exit_code}): {observed.new_connection_after_exit}"
        )
        yield observed
    finally:
        server.stop()


def test_a_request_in_flight_at_sigterm_is_answered_in_full_and_the_server_then_exits_cleanly(shutdown):
    # The tool call in flight was answered, not cut: uvicorn waited for it, and neither
    # sse-starlette nor the MCP SDK's session manager (its lifespan) cancelled it.
    assert shutdown.paused == f"Paused {PAUSE_SECONDS} s"
    assert "ASGI callable returned without completing response" not in shutdown.log
    assert "timeout graceful shutdown exceeded" not in shutdown.log
    assert "Traceback" not in shutdown.log
    # The open-ended event stream was ended cleanly at once, not held until uvicorn gave up on it.
    assert shutdown.stream == "ended by the server"
    # The supervisor exited by itself, successfully, and nothing listens any more.
    assert shutdown.exit_code == 0
    assert shutdown.new_connection_after_exit == "refused"
