"""A revoked access token is refused by every worker process within a second.

The server runs the production command with several workers. Keep-alive connections are pinned to
the worker that accepted them (the test app's ``worker_process`` tool says which), and each has used
the token once, so every worker remembers it (``mcpapp.token_cache``). The token is then revoked
on one of those connections: the very next request on it (the same process) is refused at once,
and a request reaching any worker from one second after the revocation was answered is refused.
Revocations travel through the shared cache: the database (the default) and Redis are both run.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx2
import pytest

from live.oauth_flow import client_register, token_refresh, tokens_obtain
from live.paths import MCP_PATH
from live.person import Person
from live.redis_server import RedisServer
from live.server import LiveServer
from tests.conftest import PASSWORD, start_server_with_alice
from tests.e2e.spread_client import mcp_headers, tool_result

WORKERS = 2
PROPAGATION_SECONDS = 1.0  # the guarantee: MCP_TOKEN_REVOCATION_POLL_SECONDS (0.5) plus a margin
MAX_CONNECTIONS = 24  # opened until every worker holds one; uvicorn's workers share one socket


@pytest.fixture(scope="module", params=["database cache", "redis cache"])
def server(request, tmp_path_factory):
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings_with_test_app"}
    redis = None
    if request.param == "redis cache":
        redis = RedisServer().start()
        env["CACHE_URL"] = redis.url
    server = start_server_with_alice(tmp_path_factory, "revocation-workers", env=env, workers=WORKERS)
    yield server
    server.stop()
    if redis is not None:
        redis.stop()


def call(connection: httpx2.Client, access_token: str, tool: str = "worker_process") -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    return connection.post(MCP_PATH, json=body, headers=mcp_headers(access_token))


@dataclass
class Pinned:
    connection: httpx2.Client
    worker: int


def connections_on_every_worker(server: LiveServer, access_token: str) -> list[Pinned]:
    """Keep-alive connections until each worker holds at least one; each has used the token."""
    workers = set(server.worker_pids())
    pinned: list[Pinned] = []
    while {pin.worker for pin in pinned} != workers and len(pinned) < MAX_CONNECTIONS:
        connection = httpx2.Client(base_url=server.url, timeout=30)
        answered = tool_result(call(connection, access_token))
        pinned.append(Pinned(connection, int(answered["structuredContent"]["result"])))
    assert {pin.worker for pin in pinned} == workers, "could not reach every worker"
    return pinned


@dataclass
class Agent:
    client_id: str
    tokens: dict
    first_refresh_token: str = ""  # once rotated, the refresh token it was rotated from


def agent_connected(server: LiveServer) -> Agent:
    client_id = client_register(server.url, name="Agent to revoke")
    return Agent(client_id, tokens_obtain(server.url, Person("alice", PASSWORD), client_id))


ALICE_ACTIVE = (
    "from django.contrib.auth.models import User\n"
    "user = User.objects.get(username='alice')\n"
    "user.is_active = {active}\n"
    "user.save()\n"
)

# A revocation made on `connection` (its answer), or from outside the server (None).
Revocation = Callable[[LiveServer, httpx2.Client, Agent], httpx2.Response | None]


def at_the_revocation_endpoint(server, connection, agent):
    # RFC 7009 §2.1: the client revokes its own token.
    data = {"token": agent.tokens["access_token"], "client_id": agent.client_id}
    return connection.post("/o/revoke_token/", data=data)


def by_refresh_rotation(server, connection, agent):
    return token_refresh(connection, agent.client_id, agent.tokens["refresh_token"])


def by_reuse_of_a_rotated_refresh_token(server, connection, agent):
    # RFC 9700 §4.14.2: the refresh token of the first pair, already rotated, comes back.
    return token_refresh(connection, agent.client_id, agent.first_refresh_token)


def by_an_operator_deactivating_the_person(server, connection, agent):
    # From another process altogether: `manage.py shell`, as an operator's script would.
    server.manage("shell", "-c", ALICE_ACTIVE.format(active=False))
    return None


REVOCATIONS: list[Revocation] = [
    at_the_revocation_endpoint,
    by_refresh_rotation,
    by_reuse_of_a_rotated_refresh_token,
    by_an_operator_deactivating_the_person,
]


@pytest.mark.parametrize("revoke", REVOCATIONS)
def test_a_revoked_token_is_refused_by_every_worker_within_a_second(server, revoke):
    agent = agent_connected(server)
    if revoke is by_reuse_of_a_rotated_refresh_token:
        agent.first_refresh_token = agent.tokens["refresh_token"]
        with httpx2.Client(base_url=server.url, timeout=30) as http:
            agent.tokens = token_refresh(http, agent.client_id, agent.first_refresh_token).json()
    pinned = connections_on_every_worker(server, agent.tokens["access_token"])
    try:
        revoking = pinned[0]
        answer = revoke(server, revoking.connection, agent)
        revoked_at = time.monotonic()
        if answer is not None:
            assert answer.status_code in (200, 400), answer.text
            # The same process: its very next request is refused.
            assert call(revoking.connection, agent.tokens["access_token"]).status_code == 401

        # How long each worker took (for the reader), then the guarantee.
        first_refused: dict[int, float] = {}
        while time.monotonic() - revoked_at < PROPAGATION_SECONDS:
            for pin in pinned:
                if pin.worker in first_refused:
                    continue
                if call(pin.connection, agent.tokens["access_token"]).status_code == 401:
                    first_refused[pin.worker] = time.monotonic() - revoked_at
            time.sleep(0.05)
        print(f"{revoke.__name__}: first refusal per worker, seconds after the revocation: {first_refused}")
        statuses = {pin.worker: call(pin.connection, agent.tokens["access_token"]).status_code for pin in pinned}
        assert set(statuses.values()) == {401}, statuses
    finally:
        for pin in pinned:
            pin.connection.close()
        if revoke is by_an_operator_deactivating_the_person:
            server.manage("shell", "-c", ALICE_ACTIVE.format(active=True))


def test_tokens_nobody_revoked_keep_working_on_every_worker(server):
    kept, revoked = agent_connected(server), agent_connected(server)
    pinned = connections_on_every_worker(server, kept.tokens["access_token"])
    try:
        for pin in pinned:
            tool_result(call(pin.connection, revoked.tokens["access_token"]))
        at_the_revocation_endpoint(server, pinned[0].connection, revoked)
        time.sleep(PROPAGATION_SECONDS)
        for pin in pinned:
            assert call(pin.connection, revoked.tokens["access_token"]).status_code == 401
            assert tool_result(call(pin.connection, kept.tokens["access_token"]))["isError"] is False
    finally:
        for pin in pinned:
            pin.connection.close()
