"""The rounds of ``benchmarks.auth``: at one concurrency, a window on the open endpoint and one on the
authenticated endpoint, in turn, round after round, and what they tell.

Open goes first in even rounds and auth in odd ones, so a drift over the run falls on both alike.
The windows follow each other with the same clients and connections; each starts with an untimed
warm-up while the previous window's requests finish. On a VM the CPU's speed wanders by several
per cent from second to second, so one pair of windows says little: rounds are added, a batch at a
time, until the 95% confidence interval of auth/open is as narrow as asked, or the time is up.
"""

import statistics
from dataclasses import dataclass, field

from benchmarks.harness import BenchmarkDatabase, CpuMeter, CpuUse, wait_for_idle_machine
from benchmarks.traffic import ToolCall, TrafficPlan, TrafficTally, run_traffic_phases
from live.oauth_flow import MCP_PATH
from live.server import LiveServer

OPEN_MCP_PATH = "/open/mcp"  # benchmarks.asgi.OPEN_MOUNT_PATH + "/mcp": no authentication
ECHO_TEXT = "ping"
ENDPOINTS = {
    "open": ToolCall(OPEN_MCP_PATH, "echo", {"text": ECHO_TEXT}, bearer=False, expect={"result": ECHO_TEXT}),
    "auth": ToolCall(MCP_PATH, "echo", {"text": ECHO_TEXT}, bearer=True, expect={"result": ECHO_TEXT}),
}
BATCH_ROUNDS = 5  # rounds added at a time once the first ones are done
# Cores busy with neither the server, the generator nor the database above this disturb the numbers.
OTHER_BUSY_CORES = 0.25


@dataclass(frozen=True)
class RoundsPlan:
    """How long to measure one concurrency: ``rounds`` rounds of ``window`` seconds on each endpoint at
    least, then more until auth/open is known to ± ``precision`` (95%), up to ``max_seconds`` on each."""

    window: float
    warmup: float
    rounds: int
    precision: float
    max_seconds: float
    load_processes: int
    requests_per_connection: int = 0
    wait_for_idle: float = 0.0


# Student's t, 97.5% quantile, for 1 to 30 degrees of freedom (1.96 beyond).
T_975 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13)
T_975 += (2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04)


def interval_half_width(values: list[float]) -> float:
    """Half the 95% confidence interval of the mean of ``values`` (Student's t; nan for fewer than 2)."""
    if len(values) < 2:
        return float("nan")
    t = T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.96
    return t * statistics.stdev(values) / len(values) ** 0.5


@dataclass
class Segment:
    """One timed window of one round, on one endpoint."""

    endpoint: str
    tally: TrafficTally
    cpu: CpuUse

    @property
    def serving_seconds(self) -> float:
        """CPU time the server and the database spent during the window."""
        return sum(self.cpu.per_pid_seconds.values()) + self.cpu.database_seconds


@dataclass
class Level:
    """All rounds at one concurrency: ``rounds[i]`` holds an ``open`` and an ``auth`` segment."""

    concurrency: int
    server_pids: list[int]
    busy_before: float
    rounds: list[dict[str, Segment]] = field(default_factory=list)

    def segments(self, endpoint: str | None = None) -> list[Segment]:
        return [segment for found in self.rounds for name, segment in found.items() if endpoint in (None, name)]

    def tally(self, endpoint: str) -> TrafficTally:
        merged = TrafficTally()
        for segment in self.segments(endpoint):
            merged.merge(segment.tally)
            merged.window_seconds += segment.tally.window_seconds
        return merged

    def calls_per_second(self, endpoint: str) -> float:
        return self.tally(endpoint).requests_per_second

    def serving_ms_per_call(self, endpoint: str) -> float:
        """Server and database CPU per successful call."""
        segments = self.segments(endpoint)
        calls = sum(segment.tally.succeeded() for segment in segments)
        return 1000 * sum(segment.serving_seconds for segment in segments) / max(1, calls)

    @property
    def ratio(self) -> float:
        """Throughput, auth/open: all authenticated calls over all open calls, in equal time."""
        return self.calls_per_second("auth") / (self.calls_per_second("open") or float("nan"))

    @property
    def ratio_half_width(self) -> float:
        found = [pair["auth"].tally.succeeded() / max(1, pair["open"].tally.succeeded()) for pair in self.rounds]
        return interval_half_width(found)

    @property
    def cpu_ratio(self) -> float:
        """What throughput auth/open would be if the server had its cores to itself: open's CPU per
        call over auth's (server and database)."""
        return self.serving_ms_per_call("open") / (self.serving_ms_per_call("auth") or float("nan"))

    @property
    def cpu_ratio_half_width(self) -> float:
        def per_call(segment: Segment) -> float:
            return segment.serving_seconds / max(1, segment.tally.succeeded())

        found = [per_call(pair["open"]) / (per_call(pair["auth"]) or float("nan")) for pair in self.rounds]
        return interval_half_width(found)

    def cores(self, what: str) -> float:
        """Cores busy during the windows: ``server``, ``generator``, ``database``, ``machine`` or ``other``."""
        segments = self.segments()
        seconds = {
            "server": sum(sum(segment.cpu.per_pid_seconds.values()) for segment in segments),
            "generator": sum(sum(segment.tally.generator_cpu_seconds) for segment in segments),
            "database": sum(segment.cpu.database_seconds for segment in segments),
            "machine": sum(segment.cpu.machine_busy_seconds for segment in segments),
        }
        seconds["other"] = max(0.0, seconds["machine"] - seconds["server"] - seconds["generator"] - seconds["database"])
        return seconds[what] / sum(segment.cpu.wall_seconds for segment in segments)

    @property
    def busiest_generator(self) -> float:
        return max(
            seconds / segment.tally.window_seconds
            for segment in self.segments()
            for seconds in segment.tally.generator_cpu_seconds
        )


def rounds_run(
    count: int, clients: list, server: LiveServer, database: BenchmarkDatabase, plan: RoundsPlan, server_pids: list[int]
) -> list[dict[str, Segment]]:
    """``count`` rounds, back to back in one run of the load generator."""
    pairs = [("open", "auth") if index % 2 == 0 else ("auth", "open") for index in range(count)]
    order = [endpoint for pair in pairs for endpoint in pair]
    plans = [
        TrafficPlan(
            server_url=server.url,
            warmup_seconds=plan.warmup,
            seconds=plan.window,
            refresh_every=0,
            requests_per_connection=plan.requests_per_connection,
            call=ENDPOINTS[endpoint],
        )
        for endpoint in order
    ]
    meters = [CpuMeter(server_pids, database_pid=database.server_pid()) for _ in plans]
    tallies = run_traffic_phases(clients, plans, processes=plan.load_processes, meters=meters)
    measured = zip(order, tallies, meters, strict=True)
    segments = [Segment(endpoint, tally, meter.use) for endpoint, tally, meter in measured]
    return [{found.endpoint: found for found in segments[index : index + 2]} for index in range(0, len(order), 2)]


def level_measure(
    concurrency: int, tokens: list, server: LiveServer, database: BenchmarkDatabase, plan: RoundsPlan
) -> Level:
    """Rounds at ``concurrency`` clients (one token each) until auth/open is known well enough."""
    busy = wait_for_idle_machine(busy_cores=OTHER_BUSY_CORES, timeout=plan.wait_for_idle)
    server_pids = [server.process.pid, *server.worker_pids()]
    level = Level(concurrency, server_pids, busy)
    most = max(plan.rounds, int(plan.max_seconds / plan.window))
    count = plan.rounds
    while count > 0:  # at most `most` rounds in all
        level.rounds += rounds_run(count, tokens[:concurrency], server, database, plan, server_pids)
        if level.ratio_half_width <= plan.precision:
            break
        count = min(BATCH_ROUNDS, most - len(level.rounds))
    return level
