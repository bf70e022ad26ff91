"""The database goes away and comes back, under the production command (uvicorn, several workers).

Requests that need it get 503 with ``Retry-After`` (JSON on the JSON endpoints, a page on pages,
never a traceback), and service resumes when it is back, without a restart. Clients holding event
streams open do not starve the others of pooled database connections.
"""

import sqlite3

import httpx2
import pytest

from live.postgres_server import PostgresServer, wait_until_accepting
from live.server import LiveServer, production_env, suite_uses_postgresql
from tests.e2e.spread_client import (
    PASSWORD,
    OpenStream,
    connected_agent,
    refresh,
    retry_until_answered,
    sign_in,
    tool_call,
    tool_result,
    whoami,
)


class SqliteLockedByAnotherProcess:
    """Another process (this test) holds SQLite's exclusive lock, as a long write or a careless
    maintenance script would: in WAL mode ``locking_mode=EXCLUSIVE`` plus a write shuts readers out too."""

    def __init__(self, path: str):
        self.path = path
        self.holder: sqlite3.Connection | None = None

    def begin(self) -> None:
        self.holder = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        self.holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        self.holder.execute("BEGIN IMMEDIATE")
        self.holder.execute("CREATE TABLE IF NOT EXISTS maintenance_note (note TEXT)")
        self.holder.execute("COMMIT")  # the exclusive lock stays until the connection closes

    def end(self) -> None:
        self.holder.close()


class PostgresStopped:
    """The PostgreSQL server stops (``pg_ctl stop -m fast``: open sessions are ended) and starts again."""

    def __init__(self, postgres: PostgresServer, url: str):
        self.postgres = postgres
        self.url = url

    def begin(self) -> None:
        self.postgres.stop(mode="fast")

    def end(self) -> None:
        self.postgres.start()
        wait_until_accepting(self.url)


@pytest.fixture
def server_and_outage(tmp_path):
    """The production server (DEBUG off, 2 workers) and a way to take its database away.

    Short waits for the database (busy timeout, pool timeout) keep the test fast; by default a
    request would wait 20 s (SQLite) or 10 s (PostgreSQL) before its 503.
    """
    if suite_uses_postgresql():
        postgres = PostgresServer().start()  # a private one: the suite's own keeps running
        url = postgres.create_database("faults")
        env = {"DATABASE_URL": url, "DATABASE_POOL_TIMEOUT_SECONDS": "2", "DATABASE_CONNECT_TIMEOUT_SECONDS": "2"}
        server = LiveServer(tmp_path, workers=2, env=production_env(**env)).start()
        outage = PostgresStopped(postgres, url)
    else:
        postgres = None
        # The outage is another process taking SQLite's exclusive lock (WAL, locking_mode=EXCLUSIVE),
        # which it cannot get while the server holds connections open: none kept between requests.
        env = production_env(SQLITE_BUSY_TIMEOUT_SECONDS="1", DATABASE_CONN_MAX_AGE="0")
        server = LiveServer(tmp_path, workers=2, env=env).start()
        outage = SqliteLockedByAnotherProcess(server.env["DATABASE_URL"].removeprefix("sqlite:///"))
    try:
        yield server, outage
    finally:
        server.stop()
        if postgres:
            postgres.remove()


def assert_temporarily_unavailable_json(response: httpx2.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text


def assert_temporarily_unavailable_page(response: httpx2.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    assert "Temporarily unavailable" in response.text
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text


def test_while_the_database_is_away_requests_get_503_with_retry_after_and_service_resumes_when_it_is_back(
    server_and_outage,
):
    server, outage = server_and_outage
    server.create_user("dora", PASSWORD)
    agent = connected_agent(server, "dora")
    client_id = agent.storage.client_info.client_id
    # A token pair the MCP endpoint has not seen yet: a worker remembers a token it verified
    # (mcpapp/token_cache.py), and may answer a tool that needs no database with it meanwhile.
    tokens = refresh(server, client_id, agent.storage.tokens.refresh_token).json()

    outage.begin()
    try:
        tool_refused = tool_call(server, tokens["access_token"], "whoami")
        refresh_refused = refresh(server, client_id, tokens["refresh_token"])
        sign_in_refused = sign_in(server, "dora", PASSWORD)
        authorize_refused = agent.person.browser.get(agent.authorization_url)  # signed in: the consent step
        metadata = httpx2.get(server.url + "/.well-known/oauth-authorization-server", timeout=30)
    finally:
        outage.end()

    # The MCP endpoint and the token endpoint: a JSON error a client can act on, and when to retry.
    assert_temporarily_unavailable_json(tool_refused)
    assert_temporarily_unavailable_json(refresh_refused)
    # A person signing in, or authorizing an agent, sees a page saying so, not a stack trace or
    # "Server Error (500)" (the sign-in form itself needs no database, and still shows).
    assert_temporarily_unavailable_page(sign_in_refused)
    assert_temporarily_unavailable_page(authorize_refused)
    # RFC 8414 metadata needs no database: discovery keeps working.
    assert metadata.status_code == 200
    assert metadata.json()["issuer"] == server.url

    # Back, without a restart: the same access token works again (after some more 503s, perhaps,
    # while each worker reconnects).
    answer, refusals_after = retry_until_answered(
        lambda: tool_call(server, tokens["access_token"], "whoami"), deadline_seconds=45
    )
    assert tool_result(answer)["structuredContent"]["username"] == "dora"
    # The refresh refused during the outage did not use the refresh token up.
    refreshed = refresh(server, client_id, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert whoami(server, refreshed.json()["access_token"]) == "dora"
    # Someone new can go through the whole flow again.
    server.create_user("ezra", PASSWORD)
    assert whoami(server, connected_agent(server, "ezra").storage.tokens.access_token) == "ezra"

    log = server.log_path.read_text()
    assert "Database unavailable answering POST /star/mcp" in log
    assert "Database unavailable answering POST /o/token/" in log
    assert "Traceback" not in log
    print(f"\noutage: {refusals_after} more 503s before the MCP endpoint answered again")


def test_open_event_streams_do_not_hold_the_workers_pooled_database_connections(tmp_path):
    # PostgreSQL's pool in both passes of the suite (SQLite has no pool to starve).
    postgres = PostgresServer().start()
    url = postgres.create_database("streams")
    env = production_env(DATABASE_URL=url, DATABASE_POOL_MAX_SIZE="2", DATABASE_POOL_TIMEOUT_SECONDS="2")
    server = LiveServer(tmp_path, workers=1, env=env).start()
    try:
        server.create_user("otto", PASSWORD)
        access_token = connected_agent(server, "otto").storage.tokens.access_token
        streams = [OpenStream(server, access_token) for _ in range(3)]  # more than the pool's 2 connections
        opened = [stream.started.wait(timeout=30) and stream.ended for stream in streams]
        answered = whoami(server, access_token)
    finally:
        server.stop()
        postgres.remove()
    assert opened == ["answered 200"] * 3
    assert answered == "otto"
