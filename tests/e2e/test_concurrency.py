"""Races a multi-worker deployment meets: the production command (uvicorn, four worker processes) on
one database, with requests released together, each on a connection of its own so that they spread
over the workers.

A refresh token or an authorization code presented several times at once is honoured once; a refresh
token presented a second time, even concurrently, is reuse and revokes its family (RFC 9700 §4.14.2),
and so is a code (RFC 6749 §4.1.2); and fifty agents doing the whole flow at the same time all end up
with tokens that work.
"""

import functools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from live.oauth_flow import client_register, code_obtain, code_redeem, token_refresh
from live.paths import MCP_PATH
from live.person import Person
from live.server import LiveServer
from tests.conftest import PASSWORD
from tests.e2e.agent import Agent

WORKERS = 4
RACERS = 16  # simultaneous presentations of one refresh token
REDEEMERS = 8  # simultaneous redemptions of one authorization code
CODES = 6  # codes raced one after another, so that the race is run more than once
AGENTS = 50  # agents doing the whole flow at once, one person each
SCOPE = "mcp profile"  # `profile`: whoami needs it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("concurrency"), workers=WORKERS).start()
    try:
        server.create_users(["racer", *agent_names()], PASSWORD)
        yield server
    finally:
        server.stop()


def agent_names() -> list[str]:
    return [f"agent{number:02d}" for number in range(AGENTS)]


def all_at_once(server: LiveServer, count: int, send) -> list[httpx2.Response]:
    """``send(http)`` from ``count`` threads released together, each on a connection of its own.

    Each connection is opened (and served once) before the release, so that what races is the
    request itself and not the TCP handshakes; the kernel hands the connections to the workers.
    """
    release = threading.Barrier(count, timeout=60)

    def one(_number: int) -> httpx2.Response:
        with httpx2.Client(base_url=server.url, timeout=60) as http:
            assert http.get("/.well-known/oauth-authorization-server").status_code == 200
            release.wait()
            return send(http)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def statuses(answers: list[httpx2.Response]) -> list[int]:
    return sorted(answer.status_code for answer in answers)


def assert_refused_as_invalid_grant(answers: list[httpx2.Response]) -> None:
    """RFC 6749 §5.2: a JSON ``invalid_grant``, as the client's OAuth library expects it."""
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.json()["error"] == "invalid_grant"


async def mcp_whoami(server: LiveServer, access_token: str) -> dict:
    """The `whoami` tool, called through the MCP SDK's client holding ``access_token``."""
    headers = {"Authorization": f"Bearer {access_token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(server.url + MCP_PATH, http_client=http)) as client:
            result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    return result.structured_content


def mcp_initialize(server: LiveServer, access_token: str) -> httpx2.Response:
    """What the MCP endpoint answers an initialize request carrying ``access_token``."""
    return httpx2.post(
        server.url + MCP_PATH,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream"},
        timeout=30,
    )


def counted(server: LiveServer, client_id: str, **queries: str) -> dict[str, int]:
    """Numbers read from the server's database in one ``manage.py shell``; each query sees ``app``
    (the client's row), ``AccessToken``, ``RefreshToken`` and ``AuditEvent``."""
    answers = ", ".join(f"{name!r}: {query}" for name, query in queries.items())
    out = server.manage(
        "shell",
        "-c",
        "import json\n"
        "from oauth2_provider.models import get_access_token_model, get_application_model, get_refresh_token_model\n"
        "from authserver.models import AuditEvent\n"
        "AccessToken, RefreshToken = get_access_token_model(), get_refresh_token_model()\n"
        f"app = get_application_model().objects.get(client_id={client_id!r})\n"
        f"print(json.dumps({{{answers}}}))\n",
    )
    return json.loads(out.strip().splitlines()[-1])


def test_a_refresh_token_presented_sixteen_times_at_once_is_honoured_once_then_revokes_its_family(server):
    client_id = client_register(server.url, name="Racing agent")
    code, verifier = code_obtain(server.url, Person("racer", PASSWORD), client_id, scope=SCOPE)
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        first = code_redeem(http, client_id, code, verifier).json()

    present = functools.partial(token_refresh, client_id=client_id, refresh_token=first["refresh_token"])
    answers = all_at_once(server, RACERS, present)

    # RFC 6749 §6: rotation hands out one new pair; every other presentation is refused, none fails.
    assert statuses(answers) == [200] + [400] * (RACERS - 1), [answer.text for answer in answers]
    (winner,) = [answer.json() for answer in answers if answer.status_code == 200]
    assert_refused_as_invalid_grant([answer for answer in answers if answer.status_code != 200])
    # RFC 9700 §4.14.2: the server cannot tell the client from a thief presenting the same token, so
    # a second presentation, concurrent or not, revokes the family: the pair just handed out too.
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        assert_refused_as_invalid_grant([token_refresh(http, client_id, winner["refresh_token"])])
    refused = mcp_initialize(server, winner["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    stored = counted(
        server,
        client_id,
        live_refresh_tokens="RefreshToken.objects.filter(application=app, revoked=None).count()",
        reuse_alarms="AuditEvent.objects.filter(application=app, kind=AuditEvent.Kind.REFRESH_REUSE_DETECTED)"
        ".exclude(detail__has_key='refusals_at_least').count()",
        reuse_counts="list(AuditEvent.objects.filter(application=app, kind=AuditEvent.Kind.REFRESH_REUSE_DETECTED,"
        " detail__has_key='refusals_at_least').values_list('detail__refusals_at_least', flat=True))",
    )
    assert stored["live_refresh_tokens"] == 0
    # The operator sees the reuse at once, as its own row; the other presentations (the losers, then
    # the winner's token) are counted, not written one row each (CWE-770): one row a window, and the
    # presentations may straddle a window's end.
    assert stored["reuse_alarms"] == 1
    assert 1 <= len(stored["reuse_counts"]) <= 2 and all(count >= 1 for count in stored["reuse_counts"])


def test_an_authorization_code_redeemed_eight_times_at_once_issues_one_token_set_then_revokes_it(server):
    client_id = client_register(server.url, name="Racing agent")
    person = Person("racer", PASSWORD)
    rounds = []
    for _ in range(CODES):
        code, verifier = code_obtain(server.url, person, client_id, scope=SCOPE)
        redeem = functools.partial(code_redeem, client_id=client_id, code=code, verifier=verifier)
        rounds.append(all_at_once(server, REDEEMERS, redeem))

    issued = []
    for answers in rounds:
        # RFC 6749 §4.1.2: a code is used once: one redemption gets tokens, the others invalid_grant.
        assert statuses(answers) == [200] + [400] * (REDEEMERS - 1), [answer.text for answer in answers]
        assert_refused_as_invalid_grant([answer for answer in answers if answer.status_code != 200])
        issued += [answer.json() for answer in answers if answer.status_code == 200]
    # One token set per code: a refused redemption left nothing behind. (Registration gave the
    # client an RFC 7592 access token of its own, which acts for nobody.) And since the server cannot
    # tell a thief racing the client from the client racing itself, each second use revoked the set.
    stored = counted(
        server,
        client_id,
        access_tokens="AccessToken.objects.filter(application=app).exclude(user=None).count()",
        refresh_tokens="RefreshToken.objects.filter(application=app).count()",
        live_refresh_tokens="RefreshToken.objects.filter(application=app, revoked=None).count()",
        replay_alarms="AuditEvent.objects.filter(application=app, kind=AuditEvent.Kind.CODE_REPLAY_DETECTED)"
        ".exclude(detail__has_key='refusals_at_least').count()",
        replay_counting_rows="AuditEvent.objects.filter(application=app, kind=AuditEvent.Kind.CODE_REPLAY_DETECTED,"
        " detail__has_key='refusals_at_least').count()",
    )
    replay_counting_rows = stored.pop("replay_counting_rows")
    assert stored == {
        "access_tokens": CODES,
        "refresh_tokens": CODES,
        "live_refresh_tokens": 0,
        # One alarm row per replayed code, at once; its further replays counted on one row a window.
        "replay_alarms": CODES,
    }
    assert CODES <= replay_counting_rows <= 2 * CODES
    assert {mcp_initialize(server, tokens["access_token"]).status_code for tokens in issued} == {401}


def test_fifty_agents_register_authorize_call_refresh_and_call_again_all_at_once(server):
    async def agent_run(username: str, outcomes: dict) -> None:
        agent = Agent(server.url + MCP_PATH, Person(username, PASSWORD))
        try:
            async with agent.connect() as client:
                first = await client.call_tool("whoami", {})
                issued = agent.storage.tokens
                # The access token falls due: the SDK refreshes it (RFC 6749 §6) before the next call.
                agent.oauth.context.token_expiry_time = time.time() - 1
                second = await client.call_tool("whoami", {})
            # The refreshed token, on its own, in a session of its own.
            alone = await mcp_whoami(server, agent.storage.tokens.access_token)
            outcomes[username] = (agent, issued, first, second, alone)
        except Exception as error:  # noqa: BLE001 - collected, so that one failure does not hide the others
            outcomes[username] = error

    async def everyone() -> dict:
        # The person at each agent's browser is a thread (the SDK's redirect handler): one each.
        anyio.to_thread.current_default_thread_limiter().total_tokens = AGENTS
        outcomes: dict = {}
        async with anyio.create_task_group() as group:
            for username in agent_names():
                group.start_soon(agent_run, username, outcomes)
        return outcomes

    outcomes = anyio.run(everyone)

    failed = {name: repr(outcome) for name, outcome in outcomes.items() if isinstance(outcome, Exception)}
    assert not failed, failed
    assert sorted(outcomes) == agent_names()
    for username, (agent, issued, first, second, alone) in outcomes.items():
        assert not [response for response in agent.responses if response[2] >= 500], agent.responses
        assert not first.is_error and not second.is_error, (first, second)
        assert first.structured_content["username"] == username
        # The second call went out with a refreshed pair, which acts for the same person.
        assert agent.storage.tokens.access_token != issued.access_token
        assert agent.storage.tokens.refresh_token != issued.refresh_token
        assert second.structured_content["username"] == username
        assert alone["username"] == username
    # Each agent registered itself (RFC 7591).
    assert len({agent.storage.client_info.client_id for agent, *_ in outcomes.values()}) == AGENTS
