"""Registration abuse limits and pruning against the real server processes.

The rate limit is counted in the shared cache (the database by default), so it holds across worker
processes; `manage.py prune` runs beside a serving server without disturbing a connected agent.
"""

import secrets
import threading

import anyio
import httpx2

from live.paths import MCP_PATH
from live.person import Person
from live.server import LiveServer
from tests.authserver.test_registration import AGENT
from tests.e2e.agent import Agent


def register(server) -> httpx2.Response:
    return httpx2.post(server.url + "/o/register/", json=AGENT, timeout=30)


def test_the_registration_limit_holds_across_two_server_processes_on_one_database(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    limits = {"REGISTRATION_RATE_LIMIT": "4", "REGISTRATION_RATE_WINDOW_SECONDS": "3600"}
    one = LiveServer(tmp_path / "one", env=limits).start()
    try:
        shared = {name: one.env[name] for name in ("DATABASE_URL", "DJANGO_VAR_DIR")}
        two = LiveServer(tmp_path / "two", env={**limits, **shared}).start()
        try:
            answers = [register((one, two)[attempt % 2]) for attempt in range(6)]
        finally:
            two.stop()
    finally:
        one.stop()

    assert [answer.status_code for answer in answers] == [201, 201, 201, 201, 429, 429]
    for refused in answers[4:]:
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"] == "temporarily_unavailable"
        assert 0 < int(refused.headers["retry-after"]) <= 3600


def test_pruning_while_serving_removes_unused_clients_and_leaves_a_connected_agent_working(running_server):
    username = "pat" + secrets.token_hex(3)
    running_server.create_user(username, "prune while serving")
    agent = Agent(running_server.url + MCP_PATH, Person(username, "prune while serving"))
    unused = [register(running_server).json() for _ in range(20)]
    pruned: list[str] = []

    def prune():
        # With no grace period every client never used is due, the 20 above among them.
        pruned.append(running_server.manage("prune", env={"CLIENT_UNUSED_GRACE_HOURS": "0"}))

    async def session():
        results = []
        async with agent.connect(mode="2026-07-28") as client:
            results.append(await client.call_tool("whoami", {}))
            pruner = threading.Thread(target=prune)
            pruner.start()
            while pruner.is_alive() or len(results) < 5:  # calls go on while the prune runs
                results.append(await client.call_tool("whoami", {}))
                if len(results) > 200:
                    break
            await anyio.to_thread.run_sync(pruner.join, 60)
            results.append(await client.call_tool("whoami", {}))
        return results

    results = anyio.run(session)

    assert all(not result.is_error for result in results), [result for result in results if result.is_error]
    assert results[-1].structured_content["username"] == username
    (report,) = pruned
    assert "Pruned" in report
    # RFC 7592 §2.1: reading a registration that is gone fails (its registration token went with it).
    reads = [
        httpx2.get(
            registration["registration_client_uri"],
            headers={"Authorization": f"Bearer {registration['registration_access_token']}"},
            timeout=30,
        ).status_code
        for registration in unused
    ]
    assert reads == [401] * 20
