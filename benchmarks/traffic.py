"""The load generator: asyncio clients, each an MCP agent calling a tool back to back over stateless
Streamable HTTP (``whoami`` on ``/star/mcp`` unless the plan's ``call`` names another tool, endpoint,
or no token) and refreshing its token every so often (the write path: a refresh rotates the token
pair, RFC 9700 §4.14.2).

The clients run in several processes, so that Python on the generating side is not what limits
the numbers; each process reports the CPU time it used, which says whether it came close.
Only requests that finish inside the timed window count; a warm-up before it is not counted.
"""

import asyncio
import json
import multiprocessing
import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

import httpx2

from benchmarks.harness import AgentToken, CpuMeter
from live.oauth_flow import MCP_PATH

MCP_PROTOCOL_VERSION = "2025-11-25"


@dataclass(frozen=True)
class ToolCall:
    """The MCP request each client sends (a ``tools/call`` unless ``method`` says otherwise: ``ping``,
    ``tools/list``), where to, and what a right answer carries."""

    path: str = MCP_PATH
    tool: str = "whoami"
    arguments: dict = field(default_factory=dict)
    # True: the client's own token; a string: that token, for every client (a peer's static token);
    # False: no Authorization header (an endpoint without authentication).
    bearer: bool | str = True
    # What the result's structuredContent must hold; None: the token's identity (whoami's answer).
    expect: dict | None = None
    method: str = "tools/call"
    # A Streamable HTTP server in stateful mode: each client initializes a session first (in the warm-up).
    stateful: bool = False

    @property
    def kind(self) -> str:
        """What the tally counts it as: the tool's name, or the method."""
        return self.tool if self.method == "tools/call" else self.method

    def body(self) -> bytes:
        if self.method != "tools/call":
            return json.dumps({"jsonrpc": "2.0", "id": 1, "method": self.method}).encode()
        params = {"name": self.tool, "arguments": self.arguments}
        return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()

    def authorization(self, token: AgentToken) -> dict[str, str]:
        if self.bearer is False:
            return {}
        return {"Authorization": f"Bearer {token.access_token if self.bearer is True else self.bearer}"}

    def expected(self, token: AgentToken) -> dict:
        if self.expect is not None:
            return self.expect
        return {"username": token.username, "client_id": token.client_id}


@dataclass(frozen=True)
class TrafficPlan:
    server_url: str
    warmup_seconds: float
    seconds: float
    refresh_every: int  # each client refreshes its token pair after this many calls; 0: never
    # Each client closes its connection after this many requests (0: never), as a reverse proxy's
    # keep-alive limit does: a connection stays with the worker that accepted it, and connections
    # opened all at once may all land on one worker.
    requests_per_connection: int = 10
    request_timeout: float = 30.0
    call: ToolCall = field(default_factory=ToolCall)


@dataclass(frozen=True)
class TrafficWindow:
    """Moments on the machine's monotonic clock, which every process reads alike."""

    go: float
    start: float
    end: float


@dataclass
class TrafficTally:
    """What the clients saw during the timed window."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, per kind: the tool, or "refresh"
    http_errors: Counter = field(default_factory=Counter)  # (kind, status)
    transport_errors: Counter = field(default_factory=Counter)  # (kind, exception class)
    wrong_answers: Counter = field(default_factory=Counter)  # kind: a 200 without the expected result
    samples: dict[str, str] = field(default_factory=dict)  # the first answer of each kind of failure
    lost_clients: int = 0  # clients whose refresh token was refused: they stopped
    generator_cpu_seconds: list[float] = field(default_factory=list)  # per generating process
    window_seconds: float = 0.0

    def merge(self, other: "TrafficTally") -> None:
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)
        self.http_errors.update(other.http_errors)
        self.transport_errors.update(other.transport_errors)
        self.wrong_answers.update(other.wrong_answers)
        for key, sample in other.samples.items():
            self.samples.setdefault(key, sample)
        self.lost_clients += other.lost_clients
        self.generator_cpu_seconds.extend(other.generator_cpu_seconds)

    def record(self, kind: str, outcome: "Outcome", seconds: float) -> None:
        if outcome.failure is None:
            self.latencies.setdefault(kind, []).append(seconds)
            return
        if outcome.failure == "http":
            self.http_errors[(kind, outcome.status)] += 1
            key = f"{kind} HTTP {outcome.status}"
        elif outcome.failure == "transport":
            name = outcome.detail.split(":")[0]
            self.transport_errors[(kind, name)] += 1
            key = f"{kind} {name}"
        else:
            self.wrong_answers[kind] += 1
            key = f"{kind} wrong answer"
        self.samples.setdefault(key, outcome.detail[:600])

    def succeeded(self, kind: str | None = None) -> int:
        kinds = [kind] if kind else list(self.latencies)
        return sum(len(self.latencies.get(name, ())) for name in kinds)

    @property
    def failed(self) -> int:
        return sum(self.http_errors.values()) + sum(self.transport_errors.values()) + sum(self.wrong_answers.values())

    @property
    def requests_per_second(self) -> float:
        """Successful requests (calls and refreshes) per second of the window."""
        return self.succeeded() / self.window_seconds

    def latency_ms(self, quantile: float, kind: str | None = None) -> float:
        """Nearest-rank quantile of successful requests' latency, in milliseconds."""
        values = sorted(value for name, found in self.latencies.items() if kind in (None, name) for value in found)
        if not values:
            return float("nan")
        return 1000 * values[min(len(values) - 1, max(0, round(quantile * len(values)) - 1))]


def call_failure(response: httpx2.Response, call: ToolCall, token: AgentToken) -> str | None:
    """Why a 200 answer to ``call`` is not a successful tool result holding what it should; None when it is.

    The answer is one JSON-RPC message: a JSON body, or an SSE ``data:`` line (Streamable HTTP).
    """
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        text = data[-1] if data else ""
    try:
        message = json.loads(text)
    except ValueError:
        return f"not JSON-RPC: {response.text[:300]!r}"
    if "error" in message:
        return f"JSON-RPC error: {message['error']}"
    result = message.get("result")
    if call.method == "ping":
        return None if result == {} else f"not an empty result: {message}"
    if call.method == "tools/list":
        return None if isinstance(result, dict) and result.get("tools") else f"no tools listed: {message}"
    result = result or {}
    content = result.get("structuredContent") or {}
    expected = call.expected(token)
    if result.get("isError") or any(content.get(key) != value for key, value in expected.items()):
        return f"not a result with {expected}: {result}"
    return None


@dataclass
class Outcome:
    """One request's end: ``failure`` is None, ``"http"`` (not 200), ``"transport"`` or ``"wrong"``
    (a 200 without the expected result)."""

    failure: str | None
    status: int | None = None
    detail: str = ""
    answer: dict | None = None


async def session_open(http: httpx2.AsyncClient, url: str, headers: dict[str, str]) -> str:
    """``initialize`` and ``notifications/initialized`` (a stateful server's handshake): the session id."""
    hello = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": MCP_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "benchmark", "version": "1"},
        },
    }
    response = await http.post(url, json=hello, headers=headers)
    response.raise_for_status()
    session = {**headers, "Mcp-Session-Id": response.headers["mcp-session-id"]}
    done = await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    done.raise_for_status()
    return response.headers["mcp-session-id"]


async def send(
    http: httpx2.AsyncClient,
    kind: str,
    token: AgentToken,
    plan: TrafficPlan,
    *,
    close: bool,
    sessions: dict[str, str] | None = None,
) -> Outcome:
    """The plan's MCP request, or (``kind`` ``"refresh"``) a refresh of the token pair (RFC 6749 §6).
    ``sessions`` holds the client's session ids by URL, for stateful servers."""
    connection = {"Connection": "close"} if close else {}
    try:
        if kind == "refresh":
            form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token, "client_id": token.client_id}
            response = await http.post(plan.server_url + "/o/token/", data=form, headers=connection)
        else:
            call = plan.call
            url = plan.server_url + call.path
            headers = {
                **call.authorization(token),
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": MCP_PROTOCOL_VERSION,
            }
            if call.stateful:
                sessions = {} if sessions is None else sessions
                if url not in sessions:
                    sessions[url] = await session_open(http, url, headers)
                headers["Mcp-Session-Id"] = sessions[url]
            response = await http.post(url, content=call.body(), headers={**headers, **connection})
    except (httpx2.TransportError, httpx2.HTTPStatusError) as error:
        return Outcome("transport", detail=f"{type(error).__name__}: {error}")
    if response.status_code != 200:
        return Outcome("http", response.status_code, f"{dict(response.headers)} {response.text}")
    if kind != "refresh":
        wrong = call_failure(response, plan.call, token)
        return Outcome("wrong", 200, wrong) if wrong else Outcome(None, 200)
    return Outcome(None, 200, answer=response.json())


async def run_client(
    http: httpx2.AsyncClient,
    token: AgentToken,
    phases: list[tuple[TrafficPlan, TrafficWindow, TrafficTally]],
) -> None:
    """One agent, through the phases in turn: each phase's tool call back to back until its window
    ends, refreshing every ``refresh_every`` calls."""
    first = phases[0][0]
    # Clients start at different points of their refresh and connection cycles: no bursts.
    calls_since_refresh = random.randrange(max(1, first.refresh_every))
    requests = random.randrange(max(1, first.requests_per_connection))
    sessions: dict[str, str] = {}
    for plan, window, tally in phases:
        while (started := time.monotonic()) < window.end:
            kind = "refresh" if plan.refresh_every and calls_since_refresh >= plan.refresh_every else plan.call.kind
            requests += 1
            close = bool(plan.requests_per_connection) and requests % plan.requests_per_connection == 0
            outcome = await send(http, kind, token, plan, close=close, sessions=sessions)
            finished = time.monotonic()
            if window.start <= finished <= window.end:
                tally.record(kind, outcome, finished - started)
            if kind != "refresh":
                calls_since_refresh += 1
            elif outcome.failure is None:
                answer = outcome.answer
                token.access_token, token.refresh_token = answer["access_token"], answer["refresh_token"]
                calls_since_refresh = 0
            elif outcome.status in (400, 401):
                # The refresh token is gone (RFC 6749 §5.2 invalid_grant): the person would have to reconnect.
                tally.lost_clients += 1
                return
            # A refresh that failed otherwise (5xx, transport) is tried again on the next turn.


async def run_clients(
    tokens: list[AgentToken], plans: list[TrafficPlan], windows: list[TrafficWindow]
) -> list[TrafficTally]:
    tallies = [TrafficTally(window_seconds=window.end - window.start) for window in windows]
    phases = list(zip(plans, windows, tallies, strict=True))
    timeout = max(plan.request_timeout for plan in plans)
    limits = httpx2.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    async with httpx2.AsyncClient(limits=limits, timeout=timeout) as http:
        await asyncio.sleep(max(0.0, windows[0].go - time.monotonic()))
        clients = [asyncio.create_task(run_client(http, token, phases)) for token in tokens]
        for window, tally in zip(windows, tallies, strict=True):
            await asyncio.sleep(max(0.0, window.start - time.monotonic()))
            cpu_at_start = time.process_time()
            await asyncio.sleep(max(0.0, window.end - time.monotonic()))
            tally.generator_cpu_seconds.append(time.process_time() - cpu_at_start)
        # In-flight requests finish (bounded by the request timeout) but no longer count.
        await asyncio.wait(clients, timeout=timeout + 5)
        for client in clients:
            client.cancel()
    return tallies


def _generating_process(plans, tokens, ready, schedule, results) -> None:
    try:
        ready.wait(timeout=120)
        windows = schedule.get(timeout=60)
        results.put(asyncio.run(run_clients(tokens, plans, windows)))
    except BaseException:
        results.put(traceback.format_exc())


def run_traffic(
    tokens: list[AgentToken], plan: TrafficPlan, *, processes: int, meter: CpuMeter | None = None
) -> TrafficTally:
    """Drive the server with one client per token, spread over ``processes`` processes, for
    ``plan.warmup_seconds`` + ``plan.seconds``; ``meter`` is started and stopped with the timed window."""
    return run_traffic_phases(tokens, [plan], processes=processes, meters=[meter])[0]


def run_traffic_phases(
    tokens: list[AgentToken],
    plans: list[TrafficPlan],
    *,
    processes: int,
    meters: list[CpuMeter | None] | None = None,
) -> list[TrafficTally]:
    """Like :func:`run_traffic`, through several plans back to back with the same clients and
    connections, a tally for each: each plan's warm-up starts when the previous window ends, and
    lets the previous plan's requests in flight finish before its own window is timed. Comparing
    two plans phase after phase in one run needs no new processes or connections between them.
    ``meters[i]``, when given, is started and stopped with window ``i``."""
    meters = meters or [None] * len(plans)
    processes = max(1, min(processes, len(tokens)))
    context = multiprocessing.get_context("spawn")  # no copy of this process's threads and sockets
    ready, schedule, results = context.Barrier(processes + 1), context.Queue(), context.Queue()
    workers = [
        context.Process(target=_generating_process, args=(plans, tokens[index::processes], ready, schedule, results))
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=120)
        windows, moment = [], time.monotonic() + 0.1
        for plan in plans:
            timed_from = moment + plan.warmup_seconds
            windows.append(TrafficWindow(moment, timed_from, timed_from + plan.seconds))
            moment = windows[-1].end
        for _ in workers:
            schedule.put(windows)
        for window, meter in zip(windows, meters, strict=True):
            time.sleep(max(0.0, window.start - time.monotonic()))
            if meter:
                meter.start()
            time.sleep(max(0.0, window.end - time.monotonic()))
            if meter:
                meter.stop()
        tallies = [TrafficTally(window_seconds=plan.seconds) for plan in plans]
        for _ in workers:
            answer = results.get(timeout=max(plan.request_timeout for plan in plans) + 60)
            if isinstance(answer, str):
                raise RuntimeError(f"a load-generating process failed:\n{answer}")
            for tally, found in zip(tallies, answer, strict=True):
                tally.merge(found)
        return tallies
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)
