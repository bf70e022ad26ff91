"""The product's MCP endpoint against the servers a user could run instead, side by side in one run.

On one machine, under the same uvicorn command (1 worker, keep-alive, log level warning):

- ``star``: the product's ``/star/mcp`` with a bearer token per client, started with the production
  command (``config.asgi:application``, production settings, stateless Streamable HTTP);
- ``sdk-stateless`` / ``sdk-stateful``: the MCP SDK's ``MCPServer`` alone (``benchmarks/peer_servers``),
  no Django request lifecycle and no authentication: the ceilings, in each transport mode;
- ``fastmcp``: the standalone ``fastmcp`` package with its cheapest bearer check (a static token),
  stateless, from a virtualenv of its own (``.venv-peers``, made on first use from
  ``benchmarks/requirements-peers.txt``).

Every server answers the same four requests: ``ping``, ``tools/list``, ``tools/call whoami`` and
``tools/call create_note`` (a row written through Django's ORM, to the same database). For each
database, number of clients and request, rounds visit every server in turn (the order rotating
from round to round, so that a drift of the machine falls on all alike), each a timed window after
a warm-up, with the same client processes and connections throughout. Reported: calls/s, p50 and
p99 latency, the server's CPU per call, its RSS after every round (and how it moved from the first
round to the last), and each ratio to a peer with the 95% interval of the rounds' ratios::

    .venv/bin/python -m benchmarks.peers                        # SQLite, then PostgreSQL; ~25 minutes
    .venv/bin/python -m benchmarks.peers --quick                # SQLite, 8 clients, one round; ~3 minutes
    .venv/bin/python -m benchmarks.peers --database postgresql --clients 8 --rounds 10

With PostgreSQL it then measures how the product scales with uvicorn workers (``--scale-workers``),
and the token endpoint's refreshes and registrations per second at 8 clients. Only 127.0.0.1 is
used. The goals (``GOALS``) are printed as met or not: numbers for reading, not a test.
"""

import argparse
import contextlib
import csv
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from benchmarks.auth import pinned
from benchmarks.auth_rounds import interval_half_width
from benchmarks.harness import (
    PASSWORD,
    BenchmarkDatabase,
    BenchmarkWorkdir,
    CpuMeter,
    benchmark_database,
    connect_agents,
    machine_summary,
    print_log_problems,
    python_summary,
    server_log_problems,
    started_server,
)
from benchmarks.peer_servers import PEER_TOKEN, PEER_USERNAME
from benchmarks.traffic import ToolCall, TrafficPlan, TrafficTally, run_traffic_phases
from live.paths import MCP_PATH, REDIRECT_URI
from live.person import Person
from live.server import PROJECT_DIR, free_port, process_group_stop, production_env

PEERS_VENV = PROJECT_DIR / ".venv-peers"
PEERS_REQUIREMENTS = PROJECT_DIR / "benchmarks" / "requirements-peers.txt"
NOTE = {"title": "benchmark note", "body": "written by benchmarks.peers"}
MESSAGES = ("ping", "tools/list", "whoami", "create_note")
SERVERS = ("star", "sdk-stateless", "sdk-stateful", "fastmcp")
SCOPE = "mcp profile notes:write"

# (message, peer, at least): star's calls/s over the peer's, at GOAL_CLIENTS clients.
GOAL_CLIENTS = 8
GOALS = (
    ("ping", "sdk-stateless", 0.90),
    ("tools/list", "sdk-stateless", 0.90),
    ("whoami", "sdk-stateless", 0.85),
    *((message, "fastmcp", 1.0) for message in MESSAGES),
)


def message_call(server: str, message: str) -> ToolCall:
    """What a client sends ``server`` for ``message``, and what the answer must hold."""
    path = MCP_PATH if server == "star" else "/mcp"
    bearer: bool | str = True if server == "star" else PEER_TOKEN if server == "fastmcp" else False
    common = {"path": path, "bearer": bearer, "stateful": server == "sdk-stateful"}
    if message in ("ping", "tools/list"):
        return ToolCall(method=message, **common)
    if message == "whoami":
        # The product answers the token's identity (ToolCall's default check); a peer its fixed one.
        return ToolCall(tool="whoami", expect=None if server == "star" else {"username": PEER_USERNAME}, **common)
    return ToolCall(tool="create_note", arguments=NOTE, expect={"title": NOTE["title"]}, **common)


# --- The peers' processes -----------------------------------------------------------------


def peers_python() -> Path:
    """The peers' virtualenv's Python, made (once) with ``benchmarks/requirements-peers.txt``."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / "requirements.txt"
    if not python.exists() or not stamp.exists() or stamp.read_text() != PEERS_REQUIREMENTS.read_text():
        print(f"Making {PEERS_VENV} for the fastmcp peer ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEERS_VENV)], check=True, timeout=300)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(PEERS_REQUIREMENTS)], check=True, timeout=900)
        stamp.write_text(PEERS_REQUIREMENTS.read_text())
    return python


class PeerServer:
    """A peer under the product's uvicorn command, on a free loopback port."""

    def __init__(self, name: str, application: str, python: Path, workdir: Path, env: dict[str, str]):
        self.name, self.application, self.python = name, application, python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        # fastmcp logs every request at INFO by default; the product runs at WARNING here too.
        self.env = {"FASTMCP_LOG_LEVEL": "WARNING", **env}
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60.0) -> "PeerServer":
        self.log = open(self.log_path, "w")
        command = [str(self.python), "-m", "uvicorn", self.application, "--host=127.0.0.1", f"--port={self.port}"]
        command += ["--workers=1", "--timeout-keep-alive=75", "--timeout-graceful-shutdown=10", "--log-level=warning"]
        self.process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx2.TransportError):
                httpx2.post(self.url + "/mcp", content=b"", timeout=2)  # any answer (a 4xx): it serves
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in {timeout:g} s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            process_group_stop(self.process)
            self.log.close()


@contextlib.contextmanager
def peers_started(names: list[str], workdir: Path, env: dict[str, str]) -> Iterator[dict[str, PeerServer]]:
    """The peers, with ``env``: the product's server's (its settings, its database)."""
    applications = {
        "sdk-stateless": ("benchmarks.peer_servers.sdk:stateless", Path(sys.executable)),
        "sdk-stateful": ("benchmarks.peer_servers.sdk:stateful", Path(sys.executable)),
        "fastmcp": ("benchmarks.peer_servers.fastmcp_peer:application", None),
    }
    started: dict[str, PeerServer] = {}
    try:
        for name in names:
            application, python = applications[name]
            peer = PeerServer(name, application, python or peers_python(), workdir, env)
            started[name] = peer.start()
        yield started
    finally:
        for peer in started.values():
            peer.stop()


def rss_kib(pid: int) -> int:
    """A process's resident memory now, in KiB (``VmRSS`` of proc(5))."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class WindowMeter:
    """One server's CPU time over a window, and its RSS at the window's end."""

    def __init__(self, pid: int):
        self.pid = pid
        self.cpu = CpuMeter([pid])
        self.rss_kib = 0

    def start(self) -> None:
        self.cpu.start()

    def stop(self) -> None:
        self.cpu.stop()
        self.rss_kib = rss_kib(self.pid)

    @property
    def cpu_seconds(self) -> float:
        return self.cpu.use.per_pid_seconds[self.pid]


# --- The measurements ---------------------------------------------------------------------


@dataclass
class Window:
    database: str
    clients: int
    message: str
    round: int
    server: str
    tally: TrafficTally
    cpu_seconds: float
    rss_kib: int

    @property
    def calls_per_second(self) -> float:
        return self.tally.succeeded() / self.tally.window_seconds


@dataclass
class Cell:
    """One server, one request, one number of clients, one database: its windows over the rounds."""

    windows: list[Window] = field(default_factory=list)

    @property
    def tally(self) -> TrafficTally:
        merged = TrafficTally(window_seconds=sum(window.tally.window_seconds for window in self.windows))
        for window in self.windows:
            merged.merge(window.tally)
        return merged

    @property
    def calls_per_second(self) -> float:
        return self.tally.requests_per_second

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * sum(window.cpu_seconds for window in self.windows) / max(1, self.tally.succeeded())


def ratio_of(cells: dict, key: tuple, peer: str) -> tuple[float, float]:
    """star over ``peer`` at ``key`` (database, clients, message): the mean of the rounds' ratios and
    half its 95% interval."""
    ours, theirs = cells[(*key, "star")].windows, cells[(*key, peer)].windows
    ratios = [a.calls_per_second / b.calls_per_second for a, b in zip(ours, theirs, strict=True) if b.tally.succeeded()]
    if not ratios:
        return float("nan"), float("nan")
    return statistics.fmean(ratios), interval_half_width(ratios)


def measure_cell_rounds(
    database: str,
    clients: int,
    message: str,
    servers: dict[str, tuple[str, int]],
    tokens: list,
    arguments: argparse.Namespace,
) -> list[Window]:
    """``arguments.rounds`` rounds over ``servers`` (name: (url, pid)) in rotating order, in one run
    of the same client processes and connections."""
    names = list(servers)
    order = [names[(start + offset) % len(names)] for start in range(arguments.rounds) for offset in range(len(names))]
    plans = [
        TrafficPlan(
            server_url=servers[name][0],
            warmup_seconds=arguments.warmup,
            seconds=arguments.seconds,
            refresh_every=0,
            requests_per_connection=0,
            call=message_call(name, message),
        )
        for name in order
    ]
    meters = [WindowMeter(servers[name][1]) for name in order]
    processes = min(arguments.load_processes, clients)
    tallies = run_traffic_phases(tokens[:clients], plans, processes=processes, meters=meters)
    return [
        Window(database, clients, message, index // len(names), name, tally, meter.cpu_seconds, meter.rss_kib)
        for index, (name, tally, meter) in enumerate(zip(order, tallies, meters, strict=True))
    ]


@dataclass
class DatabaseRun:
    vendor: str
    description: str
    windows: list[Window]
    log_problems: dict[str, list[str]]
    scale: list = field(default_factory=list)
    token_rates: list = field(default_factory=list)


def run_database(vendor: str, arguments: argparse.Namespace, workdir: Path) -> DatabaseRun:
    server_cores, load_cores = arguments.cores
    with benchmark_database(vendor) as database, contextlib.ExitStack() as stack:
        description = database.describe()
        print(f"{description}:", flush=True)
        (workdir / vendor / "var" / "static").mkdir(parents=True, exist_ok=True)
        with pinned(server_cores):
            star = stack.enter_context(
                started_server(workdir / vendor, workers=1, database=database, env=production_env())
            )
        star.create_users([PEER_USERNAME], PASSWORD)
        most = max(arguments.clients)
        tokens = connect_agents(star, tokens=most, users=4, agents=most, scope=SCOPE)
        peer_names = [name for name in arguments.servers if name != "star"]
        with pinned(server_cores):
            peers = stack.enter_context(peers_started(peer_names, workdir / vendor, star.env))
        stack.enter_context(pinned(load_cores))
        servers = {"star": (star.url, star.process.pid)} if "star" in arguments.servers else {}
        servers |= {name: (peer.url, peer.process.pid) for name, peer in peers.items()}
        windows: list[Window] = []
        for clients in arguments.clients:
            for message in arguments.messages:
                found = measure_cell_rounds(vendor, clients, message, servers, tokens, arguments)
                windows += found
                cells = cells_of(found)
                summary = ", ".join(
                    f"{name} {cells[(vendor, clients, message, name)].calls_per_second:.0f}/s" for name in servers
                )
                failed = sum(window.tally.failed for window in found)
                print(f"  {clients:>2} clients, {message:<11}: {summary}; {failed} failed", flush=True)
        problems = {"star": server_log_problems(star)}
        for name, peer in peers.items():
            problems[name] = [line for line in peer.log_path.read_text(errors="replace").splitlines() if line][-20:]
        run = DatabaseRun(vendor, description, windows, {name: lines for name, lines in problems.items() if lines})
        stack.close()
        if vendor == "postgresql" and arguments.scale_workers:
            run.scale = scale_measure(database, arguments, workdir / "scale")
    return run


# --- Scale: workers, and the token endpoint -------------------------------------------------


@dataclass
class ScaleRow:
    workers: int
    whoami_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int
    refreshes_per_second: float
    registrations_per_second: float
    registration_p50_ms: float


# What an MCP client registers (RFC 7591), as live.oauth_flow.client_registration sends it.
REGISTRATION = {
    "client_name": "Scale agent",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


def registrations_per_second(url: str, *, clients: int, seconds: float) -> tuple[float, float, int]:
    """``clients`` threads registering clients (RFC 7591) back to back: per second, p50 ms, failures."""
    latencies: list[float] = []
    failures = [0]
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def register() -> None:
        with httpx2.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                answer = http.post("/o/register/", json=REGISTRATION)
                with lock:
                    if answer.status_code == 201:
                        latencies.append(time.monotonic() - started)
                    else:
                        failures[0] += 1

    threads = [threading.Thread(target=register) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    elapsed = time.monotonic() - started
    latencies.sort()
    p50 = 1000 * latencies[len(latencies) // 2] if latencies else float("nan")
    return len(latencies) / elapsed, p50, failures[0]


def scale_measure(database: BenchmarkDatabase, arguments: argparse.Namespace, workdir: Path) -> list[ScaleRow]:
    """The product with 1, 2, 4 workers on PostgreSQL: whoami at 8 clients (a new connection every
    10 requests, as a proxy's keep-alive limit, so that connections spread over the workers), then
    refreshes and registrations per second at 8 clients."""
    from benchmarks.token_exchange import PUBLIC, steady_rates

    rows = []
    for workers in arguments.scale_workers:
        serverdir = workdir / f"workers-{workers}"
        (serverdir / "var" / "static").mkdir(parents=True, exist_ok=True)
        with started_server(serverdir, workers=workers, database=database, env=production_env()) as server:
            tokens = connect_agents(server, tokens=GOAL_CLIENTS, users=4, agents=GOAL_CLIENTS)
            plan = TrafficPlan(
                server_url=server.url,
                warmup_seconds=1.0,
                seconds=arguments.scale_seconds,
                refresh_every=0,
                requests_per_connection=10,
            )
            (tally,) = run_traffic_phases(tokens, [plan], processes=arguments.load_processes)
            usernames = [f"scale{workers}-{index}" for index in range(GOAL_CLIENTS)]
            server.create_users(usernames, PASSWORD)
            people = [Person(username, PASSWORD) for username in usernames]
            try:
                refresh = steady_rates(server, PUBLIC, people, seconds=arguments.scale_seconds)[1]
            finally:
                for person in people:
                    person.browser.close()
            registrations, registration_p50, _ = registrations_per_second(
                server.url, clients=GOAL_CLIENTS, seconds=arguments.scale_seconds
            )
            print_log_problems(server_log_problems(server), server.log_path)
        rows.append(
            ScaleRow(
                workers,
                tally.requests_per_second,
                tally.latency_ms(0.5),
                tally.latency_ms(0.99),
                tally.failed,
                refresh.per_second,
                registrations,
                registration_p50,
            )
        )
        print(
            f"  {workers} worker(s): whoami {rows[-1].whoami_per_second:.0f}/s, refreshes {refresh.per_second:.0f}/s,"
            f" registrations {registrations:.0f}/s",
            flush=True,
        )
    return rows


# --- Output ---------------------------------------------------------------------------------


def cells_of(windows: list[Window]) -> dict[tuple, Cell]:
    """The windows by (database, clients, message, server)."""
    cells: dict[tuple, Cell] = {}
    for window in windows:
        key = (window.database, window.clients, window.message, window.server)
        cells.setdefault(key, Cell()).windows.append(window)
    return cells


def runs_cells(runs: list[DatabaseRun]) -> dict[tuple, Cell]:
    return cells_of([window for run in runs for window in run.windows])


def print_tables(runs: list[DatabaseRun], arguments: argparse.Namespace) -> None:
    cells = runs_cells(runs)
    peers = [name for name in arguments.servers if name != "star"]
    for run in runs:
        print(f"\n{run.description}")
        print(
            f"{'clients':>7}  {'request':<11}  {'server':<13}  {'calls/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}"
            f"  {'CPU ms/call':>11}  {'RSS MiB first→last':>18}  {'failed':>6}  "
            + "  ".join(f"{'star/' + peer:>21}" for peer in peers)
        )
        for clients in arguments.clients:
            for message in arguments.messages:
                for server in arguments.servers:
                    cell = cells[(run.vendor, clients, message, server)]
                    tally = cell.tally
                    rss = [window.rss_kib / 1024 for window in cell.windows]
                    ratios = ""
                    if server == "star":
                        ratios = "  ".join(
                            "{:>12.3f} ± {:<6.3f}".format(*ratio_of(cells, (run.vendor, clients, message), peer))
                            for peer in peers
                        )
                    print(
                        f"{clients:>7}  {message:<11}  {server:<13}  {cell.calls_per_second:>8.1f}"
                        f"  {tally.latency_ms(0.5):>7.2f}  {tally.latency_ms(0.99):>7.2f}"
                        f"  {cell.cpu_ms_per_call:>11.3f}"
                        f"  {rss[0]:>8.1f} → {rss[-1]:<7.1f}  {tally.failed:>6}  {ratios}"
                    )
        for name, lines in run.log_problems.items():
            print(f"  {name}'s log, from its first warning:")
            for line in lines:
                print(f"    | {line}")
        for key, sample in {
            (cell_key, name): sample
            for cell_key, cell in cells.items()
            if cell_key[0] == run.vendor
            for name, sample in cell.tally.samples.items()
        }.items():
            print(f"  first failure at {key[0]}: {key[1]}: {sample}")


def goals_report(runs: list[DatabaseRun], arguments: argparse.Namespace) -> list[tuple]:
    """Each goal at ``GOAL_CLIENTS`` clients, per database: (database, message, peer, goal, ratio, ±, met)."""
    cells = runs_cells(runs)
    rows = []
    for run in runs:
        for message, peer, goal in GOALS:
            key = (run.vendor, GOAL_CLIENTS, message)
            if (*key, "star") not in cells or (*key, peer) not in cells:
                continue
            ratio, half = ratio_of(cells, key, peer)
            rows.append((run.vendor, message, peer, goal, ratio, half, ratio >= goal))
    return rows


def print_goals(rows: list[tuple]) -> None:
    if not rows:
        return
    print(f"\nGoals at {GOAL_CLIENTS} clients (star's calls/s over the peer's; mean of the rounds' ratios ± 95%):")
    for vendor, message, peer, goal, ratio, half, met in rows:
        verdict = "met" if met else "NOT met"
        sure = "" if not half == half else (" (the interval clears it)" if ratio - half >= goal else "")
        print(f"  {vendor:<10}  {message:<11}  vs {peer:<13}  ≥ {goal:.2f}: {ratio:.3f} ± {half:.3f}  {verdict}{sure}")


def print_scale(runs: list[DatabaseRun]) -> None:
    for run in runs:
        if not run.scale:
            continue
        cores = len(os.sched_getaffinity(0))
        print(f"\nScale on {run.description.split(' (')[0]}, a machine with {cores} cores (8 clients):")
        print(
            f"{'workers':>7}  {'whoami/s':>9}  {'p50 ms':>7}  {'p99 ms':>7}  {'failed':>6}  {'refreshes/s':>11}"
            f"  {'registrations/s':>15}  {'reg. p50 ms':>11}"
        )
        for row in run.scale:
            print(
                f"{row.workers:>7}  {row.whoami_per_second:>9.1f}  {row.p50_ms:>7.2f}  {row.p99_ms:>7.2f}"
                f"  {row.failed:>6}"
                f"  {row.refreshes_per_second:>11.1f}  {row.registrations_per_second:>15.1f}"
                f"  {row.registration_p50_ms:>11.1f}"
            )


def csv_write(runs: list[DatabaseRun], path: Path) -> None:
    """Beside the plot: every window (``<name>-windows.csv``), each cell's totals (``<name>.csv``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.stem + "-windows.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["database", "clients", "message", "round", "server", "seconds", "calls", "failed"]
            + ["cpu_seconds", "rss_kib"]
        )
        for run in runs:
            for w in run.windows:
                writer.writerow(
                    [w.database, w.clients, w.message, w.round, w.server, f"{w.tally.window_seconds:g}"]
                    + [w.tally.succeeded(), w.tally.failed, f"{w.cpu_seconds:.3f}", w.rss_kib]
                )
    cells = runs_cells(runs)
    with path.with_suffix(".csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["database", "clients", "message", "server", "calls_per_second", "p50_ms", "p99_ms", "cpu_ms_per_call"]
            + ["rss_mib_first", "rss_mib_last", "failed", "star_over_sdk_stateless", "star_over_fastmcp"]
        )
        for (vendor, clients, message, server), cell in cells.items():
            tally = cell.tally
            ratios = ["", ""]
            if server == "star":
                for index, peer in enumerate(("sdk-stateless", "fastmcp")):
                    if (vendor, clients, message, peer) in cells:
                        ratio, half = ratio_of(cells, (vendor, clients, message), peer)
                        ratios[index] = f"{ratio:.3f}±{half:.3f}"
            writer.writerow(
                [vendor, clients, message, server, f"{cell.calls_per_second:.1f}", f"{tally.latency_ms(0.5):.2f}"]
                + [f"{tally.latency_ms(0.99):.2f}", f"{cell.cpu_ms_per_call:.3f}"]
                + [f"{cell.windows[0].rss_kib / 1024:.1f}", f"{cell.windows[-1].rss_kib / 1024:.1f}", tally.failed]
                + ratios
            )
    with path.with_name(path.stem + "-scale.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["database", "workers", "whoami_per_second", "p50_ms", "p99_ms", "failed"])
        for run in runs:
            for row in run.scale:
                writer.writerow(
                    [run.vendor, row.workers, f"{row.whoami_per_second:.1f}", f"{row.p50_ms:.2f}", f"{row.p99_ms:.2f}"]
                    + [row.failed]
                )


def bars_plot(runs: list[DatabaseRun], path: Path, arguments: argparse.Namespace, *, title: str) -> None:
    """Calls/s per server per request, a panel per database and number of clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = runs_cells(runs)
    figure, axes = plt.subplots(
        len(runs), len(arguments.clients), figsize=(4.6 * len(arguments.clients), 3.8 * len(runs)), squeeze=False
    )
    width = 0.8 / len(arguments.servers)
    for row, run in zip(axes, runs, strict=True):
        for axis, clients in zip(row, arguments.clients, strict=True):
            for index, server in enumerate(arguments.servers):
                heights = [cells[(run.vendor, clients, name, server)].calls_per_second for name in arguments.messages]
                positions = [slot + (index - (len(arguments.servers) - 1) / 2) * width for slot in range(len(heights))]
                axis.bar(positions, heights, width, label=server)
            axis.set_xticks(range(len(arguments.messages)), arguments.messages, fontsize=8)
            axis.set_ylabel("calls per second")
            axis.set_title(f"{run.description.split(' (')[0]}, {clients} client(s)", fontsize=9)
            axis.grid(True, axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(f"The product's /star/mcp (with a token) and its peers, 1 uvicorn worker\n{title}", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- The command ----------------------------------------------------------------------------


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    cores = sorted(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients (default 1,8,32)")
    parser.add_argument("--messages", default=",".join(MESSAGES), help=f"default {','.join(MESSAGES)}")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"default {','.join(SERVERS)}")
    parser.add_argument("--rounds", type=int, default=4, help="rounds over the servers (default 4)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per window (default 2)")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds before each window (default 0.5)")
    parser.add_argument("--load-processes", type=int, default=max(1, min(4, len(cores) - 1)))
    parser.add_argument("--scale-workers", default="1,2,4", help="PostgreSQL: workers to scale over ('' for none)")
    parser.add_argument("--scale-seconds", type=float, default=5.0)
    parser.add_argument("--plot", type=Path, default=Path("benchmarks/results/peers.png"))
    parser.add_argument("--quick", action="store_true", help="SQLite, 8 clients, 1 round, no scale")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.database, arguments.clients, arguments.rounds, arguments.scale_workers = "sqlite", "8", 1, ""
    arguments.clients = [int(count) for count in arguments.clients.split(",")]
    arguments.messages = [message for message in arguments.messages.split(",") if message]
    arguments.servers = [server for server in arguments.servers.split(",") if server]
    arguments.scale_workers = [int(count) for count in arguments.scale_workers.split(",") if count]
    arguments.databases = ["sqlite", "postgresql"] if arguments.database == "both" else [arguments.database]
    # One core for the servers (each runs one worker), the rest for the load generator.
    arguments.cores = ({cores[0]}, set(cores[1:])) if len(cores) > 1 else (None, None)
    return arguments


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    if "fastmcp" in arguments.servers:
        peers_python()
    workdir = BenchmarkWorkdir("mcp-peers-")
    server_cores, load_cores = arguments.cores
    print(f"Machine:  {machine_summary()}")
    print(f"Python:   {python_summary()}")
    print(
        f"Servers:  {', '.join(arguments.servers)}; uvicorn, 1 worker each, on core(s) {sorted(server_cores or [])};"
        f" the load generator ({arguments.load_processes} processes) on {sorted(load_cores or [])}"
    )
    print(
        f"Rounds:   {arguments.rounds} per request and number of clients, each server in turn"
        f" ({arguments.warmup:g} s warm-up, {arguments.seconds:g} s timed), the order rotating\n",
        flush=True,
    )
    runs: list[DatabaseRun] = []
    with workdir.kept_on_failure():
        for vendor in arguments.databases:
            runs.append(run_database(vendor, arguments, workdir.path))
    print_tables(runs, arguments)
    goals = goals_report(runs, arguments)
    print_goals(goals)
    print_scale(runs)
    bars_plot(runs, arguments.plot, arguments, title=machine_summary())
    csv_write(runs, arguments.plot)
    print(f"\nPlot: {arguments.plot}; numbers: {arguments.plot.with_suffix('.csv')} and beside it")
    troubled = any(run.log_problems or any(w.tally.failed for w in run.windows) for run in runs)
    workdir.finish(troubled=troubled)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
