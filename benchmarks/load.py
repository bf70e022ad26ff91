"""How throughput grows with uvicorn worker processes ("Running in production" in README.md).

Starts the production command with 1, 2 and 4 workers in turn, each on a fresh database, connects
agents by the real OAuth flow, then drives the MCP endpoint for a fixed time: every client calls
the ``whoami`` tool back to back and refreshes its token pair every few calls. Prints requests per
second, latency, errors and the speed-up against 1 worker, with where the machine's CPU time went::

    .venv/bin/python -m benchmarks.load                          # SQLite
    .venv/bin/python -m benchmarks.load --database postgresql    # a throwaway PostgreSQL cluster

Only 127.0.0.1 is used. The numbers are for reading, not for passing or failing.
"""

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import (
    BenchmarkDatabase,
    BenchmarkWorkdir,
    CpuMeter,
    CpuUse,
    benchmark_database,
    connect_agents,
    machine_summary,
    print_log_problems,
    python_summary,
    server_log_problems,
    started_server,
    wait_for_idle_machine,
)
from benchmarks.traffic import TrafficPlan, TrafficTally, run_traffic
from live.paths import MCP_PATH

# A generating process busier than this share of a core may be what limits the numbers.
GENERATOR_BUSY_SHARE = 0.8
# Cores busy with neither the server, the generator nor the database above this disturb the numbers.
OTHER_BUSY_CORES = 0.25


@dataclass
class WorkerRun:
    workers: int
    tally: TrafficTally
    server_pids: list[int]  # the supervisor first, then the workers (with 1 worker uvicorn is one process)
    cpu: CpuUse
    log_problems: list[str]
    log_path: Path


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run, in turn (default 1,2,4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed window per worker count")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed load before each window")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients, one token pair each")
    parser.add_argument("--refresh-every", type=int, default=20, help="calls between a client's refreshes (0: never)")
    parser.add_argument(
        "--requests-per-connection",
        type=int,
        default=10,
        help="requests before a client closes its connection and opens another, as a proxy's keep-alive limit"
        " does (0: keep it; connections opened at once may all land on one worker)",
    )
    parser.add_argument(
        "--load-processes",
        type=int,
        default=min(4, cores),
        help=f"processes generating the load (default: cores, at most 4; here {min(4, cores)})",
    )
    parser.add_argument(
        "--wait-for-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each worker count, wait up to this long for other processes to leave the CPU idle",
    )
    parser.add_argument("--users", type=int, default=4, help="people who connect the agents")
    parser.add_argument("--agents", type=int, default=8, help="registered clients")
    arguments = parser.parse_args(argv)
    arguments.workers = [int(count) for count in arguments.workers.split(",")]
    return arguments


def run_with_workers(
    workers: int, arguments: argparse.Namespace, database: BenchmarkDatabase, workdir: Path
) -> WorkerRun:
    with started_server(workdir / f"workers-{workers}", workers=workers, database=database) as server:
        tokens = connect_agents(server, tokens=arguments.concurrency, users=arguments.users, agents=arguments.agents)
        plan = TrafficPlan(
            server_url=server.url,
            warmup_seconds=arguments.warmup,
            seconds=arguments.seconds,
            refresh_every=arguments.refresh_every,
            requests_per_connection=arguments.requests_per_connection,
        )
        server_pids = [server.process.pid, *server.worker_pids()]
        meter = CpuMeter(server_pids, database_pid=database.server_pid())
        tally = run_traffic(tokens, plan, processes=arguments.load_processes, meter=meter)
    return WorkerRun(workers, tally, server_pids, meter.use, server_log_problems(server), server.log_path)


def generator_cores(run: WorkerRun) -> float:
    return sum(run.tally.generator_cpu_seconds) / run.tally.window_seconds


def other_cores(run: WorkerRun) -> float:
    """Busy cores the server, the load generator and the database do not account for."""
    cpu = run.cpu
    return max(0.0, cpu.machine_busy_cores - cpu.watched_cores - generator_cores(run) - cpu.database_cores)


def print_header(arguments: argparse.Namespace, database: BenchmarkDatabase) -> None:
    print(f"Machine:  {machine_summary()}")
    print(f"Python:   {python_summary()}")
    print(f"Database: {database.describe()}")
    print(
        f"Load:     {arguments.concurrency} concurrent clients in {arguments.load_processes} processes, each calling"
        f" whoami on {MCP_PATH} back to back, refreshing its token every {arguments.refresh_every} calls and opening"
        f" a new connection every {arguments.requests_per_connection} requests;"
        f" {arguments.warmup:g} s warm-up, then {arguments.seconds:g} s timed, per worker count\n",
        flush=True,
    )


def print_table(runs: list[WorkerRun]) -> None:
    baseline = runs[0].tally.requests_per_second
    print(f"{'':>76}  {'cores busy during the window':-^40}")
    print(
        f"{'workers':>7}  {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'http errors':>11}  {'transport errors':>16}"
        f"  {f'vs {runs[0].workers} worker':>11}  {'server':>7}  {'load gen':>8}  {'database':>8}  {'other':>7}"
    )
    for run in runs:
        tally, cpu = run.tally, run.cpu
        print(
            f"{run.workers:>7}  {tally.requests_per_second:>8.1f}  {tally.latency_ms(0.50):>7.1f}"
            f"  {tally.latency_ms(0.99):>7.1f}  {sum(tally.http_errors.values()):>11}"
            f"  {sum(tally.transport_errors.values()):>16}  {tally.requests_per_second / baseline:>10.2f}x"
            f"  {cpu.watched_cores:>7.2f}  {generator_cores(run):>8.2f}  {cpu.database_cores:>8.2f}"
            f"  {other_cores(run):>7.2f}"
        )
    print("(req/s and latency: successful whoami calls and token refreshes; errors: failed requests of either)")


def print_details(run: WorkerRun) -> None:
    tally, cpu = run.tally, run.cpu
    print(f"\n{run.workers} worker{'s' if run.workers > 1 else ''}:")
    for kind, label in (("whoami", "whoami calls"), ("refresh", "token refreshes")):
        count = tally.succeeded(kind)
        p50, p99 = tally.latency_ms(0.5, kind), tally.latency_ms(0.99, kind)
        latency = f", p50 {p50:.1f} ms, p99 {p99:.1f} ms" if count else ""
        print(f"  {count:,} {label} ({count / tally.window_seconds:.1f}/s{latency})")
    if len(run.server_pids) == 1:
        print(f"  server CPU, cores: {cpu.cores(run.server_pids[0]):.2f} (one process: uvicorn serves 1 worker itself)")
    else:
        workers_cpu = " ".join(f"{cpu.cores(pid):.2f}" for pid in run.server_pids[1:])
        print(f"  server CPU, cores: supervisor {cpu.cores(run.server_pids[0]):.2f}, workers {workers_cpu}")
    generators = " ".join(f"{seconds / tally.window_seconds:.2f}" for seconds in tally.generator_cpu_seconds)
    print(f"  load generator CPU per process, cores: {generators}")
    failures = [
        *(f"{kind} HTTP {status} x{count}" for (kind, status), count in sorted(tally.http_errors.items())),
        *(f"{kind} {name} x{count}" for (kind, name), count in sorted(tally.transport_errors.items())),
        *(f"{kind} wrong answer x{count}" for kind, count in sorted(tally.wrong_answers.items())),
    ]
    if tally.lost_clients:
        failures.append(f"{tally.lost_clients} clients lost their refresh token and stopped")
    print(f"  failures: {', '.join(failures) if failures else 'none'}")
    for key, sample in tally.samples.items():
        print(f"    first {key}: {sample}")
    print_log_problems(run.log_problems, run.log_path)


def print_notes(runs: list[WorkerRun], cores: int, busy_before: float) -> None:
    busiest = max(
        (seconds / run.tally.window_seconds for run in runs for seconds in run.tally.generator_cpu_seconds), default=0
    )
    generated = sum(run.tally.succeeded() for run in runs)
    per_request_ms = 1000 * sum(sum(run.tally.generator_cpu_seconds) for run in runs) / max(1, generated)
    processes = max(len(run.tally.generator_cpu_seconds) for run in runs)
    print(
        f"\nLoad generator: {per_request_ms:.2f} ms of CPU per request, so its {processes} processes could send about"
        f" {processes * 1000 / max(per_request_ms, 1e-9):,.0f} req/s with a core each; the busiest used"
        f" {busiest:.2f} of a core.",
        end=" ",
    )
    if busiest > GENERATOR_BUSY_SHARE:
        print("That is close to a full core: the generator may limit these numbers; try more --load-processes.")
    else:
        print("It was not what limited the numbers (on a saturated machine it still takes its CPU from the server).")
    disturbed = max(max(other_cores(run) for run in runs), busy_before)
    if disturbed > OTHER_BUSY_CORES:
        print(
            f"Other processes kept up to {disturbed:.2f} cores busy (before the start, or in column 'other'):"
            " they took CPU from the server, so these numbers are lower and noisier than on a quiet machine."
        )
    for run in runs:
        shares = [run.cpu.cores(pid) for pid in run.server_pids[1:]]
        if len(shares) > 1 and min(shares) < 0.5 * sum(shares) / len(shares):
            listed = " ".join(f"{share:.2f}" for share in shares)
            print(
                f"With {run.workers} workers the load was uneven (worker CPU {listed} cores):"
                " a connection stays with the worker that accepted it; see --requests-per-connection."
            )
    saturated = [run.workers for run in runs if run.cpu.machine_busy_cores > 0.9 * cores]
    if saturated:
        print(
            f"All {cores} cores were busy with {', '.join(map(str, saturated))} worker(s): from there on, more workers"
            " share the same cores with the load generator (and the database), so the speed-up measures the"
            " machine as much as the server; a machine with more cores than workers shows the server's own scaling."
        )


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    cores = os.cpu_count() or 1
    workdir = BenchmarkWorkdir("mcp-load-")
    runs: list[WorkerRun] = []
    busy_before = 0.0
    with workdir.kept_on_failure(), benchmark_database(arguments.database) as database:
        print_header(arguments, database)
        for workers in arguments.workers:
            busy = wait_for_idle_machine(busy_cores=OTHER_BUSY_CORES, timeout=arguments.wait_for_idle)
            busy_before = max(busy_before, busy)
            run = run_with_workers(workers, arguments, database, workdir.path)
            runs.append(run)
            print(
                f"  {workers} worker(s): {busy:.2f} cores busy before the start;"
                f" {run.tally.requests_per_second:.1f} req/s, {run.tally.failed} failed",
                flush=True,
            )
    print()
    print_table(runs)
    for run in runs:
        print_details(run)
    print_notes(runs, cores, busy_before)
    troubled = any(run.tally.failed or run.tally.lost_clients or run.log_problems for run in runs)
    workdir.finish(troubled=troubled)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
