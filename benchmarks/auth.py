"""What token verification costs the MCP endpoint: tools/call throughput and latency with our bearer
authentication against the same endpoint without any, for 1, 8 and 32 concurrent clients, on SQLite
and on PostgreSQL; and what onboarding a new agent costs the server.

The server is the production command (uvicorn, production settings) serving ``benchmarks.asgi``:
the product, whose ``/star/mcp`` checks each client's token, plus ``/open/mcp``, the same MCP stack
without authentication (the ceiling). Both answer the same trivial tool, ``echo``, so the two differ
in the token check alone. Each concurrency runs rounds of an open and an authenticated window in turn
(``benchmarks/auth_rounds.py``), for equal time each, until auth/open is known to ±0.015 (95%) or
three minutes on each endpoint are up; throughput is the total over the rounds. Writes a plot of
throughput against concurrency, and every window's numbers to a CSV file beside it::

    .venv/bin/python -m benchmarks.auth                              # SQLite, then PostgreSQL
    .venv/bin/python -m benchmarks.auth --database sqlite --quick    # two minutes
    .venv/bin/python -m benchmarks.auth --database sqlite --concurrency 8 --max-seconds 900

A full run takes 10 to 30 minutes per database: on a quiet machine the interval narrows quickly; on
a VM whose CPU speed wanders by ±10% from one second to the next it takes the whole three minutes
on each endpoint, and ±0.015 at one concurrency can take 10 to 15 (the last command: half an hour).
Only 127.0.0.1 is used. The numbers are for reading, not for passing or failing.
"""

import argparse
import contextlib
import csv
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.auth_rounds import ENDPOINTS, OPEN_MCP_PATH, OTHER_BUSY_CORES, Level, RoundsPlan, level_measure
from benchmarks.harness import (
    BenchmarkWorkdir,
    benchmark_database,
    connect_agents,
    machine_summary,
    print_log_problems,
    python_summary,
    server_log_problems,
    started_server,
)
from benchmarks.onboarding import OnboardingReport, format_onboarding, onboarding_cost
from benchmarks.plots import throughput_plot
from live.oauth_flow import MCP_PATH
from live.server import production_env

APPLICATION = "benchmarks.asgi:application"
# A generating process busier than this share of a core may be what limits the numbers.
GENERATOR_BUSY_SHARE = 0.8
# Fewer rounds than this say too little about the noise to tell how long a narrower interval takes.
MIN_ROUNDS_TO_EXTRAPOLATE = 10


def clients(count: int) -> str:
    return f"{count} client{'s' if count != 1 else ''}"


@dataclass
class DatabaseRun:
    vendor: str
    description: str
    onboarding: OnboardingReport
    levels: list[Level]
    log_problems: list[str]
    log_path: Path
    token_exchange_rates: object = None  # benchmarks.token_exchange's, once it exists


# How long a run takes: the full default, and --quick (each can still be given on its own).
RUN_LENGTHS = {
    "full": {"seconds": 30.0, "rounds": 10, "max_seconds": 180.0, "warmup": 0.5, "onboardings": 10},
    "quick": {"seconds": 4.0, "rounds": 2, "max_seconds": 4.0, "warmup": 0.5, "onboardings": 3},
}


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    cores = len(os.sched_getaffinity(0))
    full = RUN_LENGTHS["full"]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--concurrency", default="1,8,32", help="concurrent clients, one token each (default 1,8,32)")
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"timed seconds on each endpoint at each concurrency, at least (default {full['seconds']:g})",
    )
    parser.add_argument(
        "--rounds", type=int, help=f"rounds those seconds are cut into, at least (default {full['rounds']})"
    )
    parser.add_argument(
        "--precision",
        type=float,
        default=0.015,
        help="add rounds until auth/open is known to ± this, with 95%% confidence (default 0.015) ...",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        help=f"... or until this many timed seconds on each endpoint (default {full['max_seconds']:g})",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        help=f"untimed load before each window, while the last window's requests finish (default {full['warmup']:g})",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=cores > 1,
        help="the server's workers on cores of their own, the load generator on the others (default: when there"
        " are cores left for it)",
    )
    parser.add_argument(
        "--requests-per-connection",
        type=int,
        default=0,
        help="requests before a client opens a new connection (default 0: keep it, to time requests, not TCP)",
    )
    parser.add_argument(
        "--load-processes",
        type=int,
        default=min(4, cores),
        help=f"processes generating the load, at most one per client (default: cores, at most 4; here {min(4, cores)})",
    )
    parser.add_argument(
        "--onboardings", type=int, help=f"agents onboarded one after the other (default {full['onboardings']})"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path("benchmarks/results/auth-overhead.png"),
        help="PNG to write; every window's numbers go to a CSV file beside it",
    )
    parser.add_argument(
        "--wait-for-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each concurrency, wait up to this long for other processes to leave the CPU idle",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 2 rounds of 2 s, no more whatever the precision"
    )
    arguments = parser.parse_args(argv)
    for name, value in RUN_LENGTHS["quick" if arguments.quick else "full"].items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    arguments.concurrency = [int(count) for count in arguments.concurrency.split(",")]
    arguments.databases = ["sqlite", "postgresql"] if arguments.database == "both" else [arguments.database]
    return arguments


def rounds_plan(arguments: argparse.Namespace) -> RoundsPlan:
    return RoundsPlan(
        window=arguments.seconds / arguments.rounds,
        warmup=arguments.warmup,
        rounds=arguments.rounds,
        precision=arguments.precision,
        max_seconds=max(arguments.seconds, arguments.max_seconds),
        load_processes=arguments.load_processes,
        requests_per_connection=arguments.requests_per_connection,
        wait_for_idle=arguments.wait_for_idle,
    )


def core_split(arguments: argparse.Namespace) -> tuple[set[int] | None, set[int] | None]:
    """The cores for the server's workers and those for the load generator (None, None: not pinned)."""
    cores = sorted(os.sched_getaffinity(0))
    if not arguments.pin or len(cores) <= arguments.workers:
        return None, None
    return set(cores[: arguments.workers]), set(cores[arguments.workers :])


@contextlib.contextmanager
def pinned(cores: set[int] | None) -> Iterator[None]:
    """This process, and the processes it starts meanwhile, on ``cores`` (None: anywhere)."""
    if cores is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# The token endpoint's section (benchmarks.token_exchange): seconds per measurement, clients at once.
TOKEN_EXCHANGE_SECONDS = {"full": 5.0, "quick": 2.0}
TOKEN_EXCHANGE_CLIENTS = 4


def measure_token_exchange(server, arguments):
    """The token endpoint's rates, from ``benchmarks.token_exchange`` once it exists (None before)."""
    try:
        from benchmarks.token_exchange import token_exchange_rates
    except ImportError:
        return None
    seconds = TOKEN_EXCHANGE_SECONDS["quick" if arguments.quick else "full"]
    return token_exchange_rates(server, seconds=seconds, concurrency=TOKEN_EXCHANGE_CLIENTS)


def run_database(vendor: str, arguments: argparse.Namespace, workdir: Path) -> DatabaseRun:
    server_cores, load_cores = core_split(arguments)
    with benchmark_database(vendor) as database, contextlib.ExitStack() as stack:
        description = database.describe()
        print(f"{description}:", flush=True)
        serverdir = workdir / vendor
        # Production settings (DEBUG off: no query log); an empty STATIC_ROOT, as collectstatic would
        # leave it, keeps the server from warning about it (it serves no static file here).
        (serverdir / "var" / "static").mkdir(parents=True, exist_ok=True)
        env = production_env()
        starting = started_server(
            serverdir, workers=arguments.workers, database=database, application=APPLICATION, env=env
        )
        with pinned(server_cores):
            server = stack.enter_context(starting)
        stack.enter_context(pinned(load_cores))
        onboarding = onboarding_cost(server, repetitions=arguments.onboardings)
        print(f"  onboarded {len(onboarding.runs)} agents", flush=True)
        most = max(arguments.concurrency)
        tokens = connect_agents(server, tokens=most, users=4, agents=most)
        levels = []
        for concurrency in arguments.concurrency:
            level = level_measure(concurrency, tokens, server, database, rounds_plan(arguments))
            levels.append(level)
            errors = sum(level.tally(endpoint).failed for endpoint in ENDPOINTS)
            print(
                f"  {clients(concurrency)}: {level.busy_before:.2f} cores busy before; {len(level.rounds)} rounds;"
                f" auth/open {level.ratio:.3f} ± {level.ratio_half_width:.3f}, {errors} failed",
                flush=True,
            )
        # --- Token endpoint (benchmarks.token_exchange): measured here, printed in main ---
        rates = measure_token_exchange(server, arguments)
    return DatabaseRun(vendor, description, onboarding, levels, server_log_problems(server), server.log_path, rates)


def print_header(arguments: argparse.Namespace) -> None:
    plan = rounds_plan(arguments)
    every = arguments.requests_per_connection
    connections = f"a new connection every {every} requests" if every else "keep-alive connections"
    cache = os.environ.get("MCP_TOKEN_CACHE_SECONDS", "the settings' default")
    server_cores, load_cores = core_split(arguments)
    cores = (
        f"server on core(s) {sorted(server_cores)}, load generator on {sorted(load_cores)}"
        if server_cores
        else "processes not pinned to cores"
    )
    print(f"Machine:  {machine_summary()}")
    print(f"Python:   {python_summary()}")
    print(
        f"Server:   uvicorn, {arguments.workers} worker(s), production settings, {APPLICATION};"
        f" MCP_TOKEN_CACHE_SECONDS: {cache}; {cores}"
    )
    print(
        f"Load:     {', '.join(map(str, arguments.concurrency))} concurrent clients in up to"
        f" {arguments.load_processes} processes, each calling tools/call echo back to back: on {OPEN_MCP_PATH}"
        f" without a token (open) and on {MCP_PATH} with a token of its own (auth); {connections}."
        f" Rounds of {plan.window:g} s on each, in turn, each after {plan.warmup:g} s of warm-up: {plan.rounds} rounds,"
        f" then more until auth/open is known to ±{plan.precision:g} or {plan.max_seconds:g} s on each are up\n",
        flush=True,
    )


def print_table(run: DatabaseRun) -> None:
    print(f"\n{run.description}")
    print(f"{'':>7}  {'tools/call per s':-^19}  {'':>15}  {'p50 ms':-^15}  {'p99 ms':-^15}  {'errors':-^11}")
    print(
        f"{'clients':>7}  {'open':>9}  {'auth':>8}  {'auth/open 95%':>15}  {'open':>7}  {'auth':>7}  {'open':>7}"
        f"  {'auth':>7}  {'open':>5}  {'auth':>4}"
    )
    for level in run.levels:
        open_, auth = level.tally("open"), level.tally("auth")
        print(
            f"{level.concurrency:>7}  {open_.requests_per_second:>9.1f}  {auth.requests_per_second:>8.1f}"
            f"  {level.ratio:>7.3f} ± {level.ratio_half_width:.3f}  {open_.latency_ms(0.5):>7.2f}"
            f"  {auth.latency_ms(0.5):>7.2f}  {open_.latency_ms(0.99):>7.2f}  {auth.latency_ms(0.99):>7.2f}"
            f"  {open_.failed:>5}  {auth.failed:>4}"
        )
    print(f"\n{'':>7}  {'CPU ms per call':-^34}  {'cores busy during the windows':-^54}")
    print(
        f"{'clients':>7}  {'open':>6}  {'auth':>6}  {'open/auth 95%':>18}  {'server':>7}  {'load gen':>8}"
        f"  {'busiest gen':>11}  {'database':>8}  {'other':>6}  {'all':>5}"
    )
    for level in run.levels:
        print(
            f"{level.concurrency:>7}  {level.serving_ms_per_call('open'):>6.2f}"
            f"  {level.serving_ms_per_call('auth'):>6.2f}"
            f"  {level.cpu_ratio:>10.3f} ± {level.cpu_ratio_half_width:.3f}  {level.cores('server'):>7.2f}"
            f"  {level.cores('generator'):>8.2f}  {level.busiest_generator:>11.2f}  {level.cores('database'):>8.2f}"
            f"  {level.cores('other'):>6.2f}  {level.cores('machine'):>5.2f}"
        )
    failures = {}
    for level in run.levels:
        for endpoint in ENDPOINTS:
            for key, sample in level.tally(endpoint).samples.items():
                failures.setdefault(f"{endpoint} {key}", sample)
    for key, sample in failures.items():
        print(f"  first {key}: {sample}")
    print_log_problems(run.log_problems, run.log_path)


def print_notes(runs: list[DatabaseRun], cores: int, precision: float) -> None:
    levels = [level for run in runs for level in run.levels]
    busiest = max(level.busiest_generator for level in levels)
    calls = sum(level.tally(endpoint).succeeded() for level in levels for endpoint in ENDPOINTS)
    generated = sum(sum(segment.tally.generator_cpu_seconds) for level in levels for segment in level.segments())
    print(
        f"\nLoad generator: {1000 * generated / max(1, calls):.2f} ms of CPU per call; the busiest process used"
        f" {busiest:.2f} of a core.",
        end=" ",
    )
    if busiest > GENERATOR_BUSY_SHARE:
        print("That is close to a full core: the generator may limit these numbers; try more --load-processes.")
    else:
        print("It was not what limited the numbers, but on a saturated machine it takes its CPU from the server.")
    saturated = sorted({level.concurrency for level in levels if level.cores("machine") > 0.9 * cores})
    if saturated:
        print(
            f"All {cores} cores were busy at {', '.join(map(str, saturated))} clients: the server shared them with the"
            " load generator (and the database, and other processes), so throughput there is the machine's. The"
            " generator's CPU per call, the same for both endpoints, then counts as if it were the server's, which"
            " pulls auth/open towards 1: there, the CPU per call's open/auth is the server's own figure."
        )
    disturbed = max(max(level.cores("other"), level.busy_before) for level in levels)
    if disturbed > OTHER_BUSY_CORES:
        print(
            f"Other processes kept up to {disturbed:.2f} cores busy (before a level, or in column 'other'): the"
            " rounds interleave open and auth so that this falls on both, but it widens the confidence intervals."
        )
    for run in runs:
        for level in run.levels:
            if not level.ratio_half_width > precision or len(level.rounds) < MIN_ROUNDS_TO_EXTRAPOLATE:
                continue
            timed = level.tally("open").window_seconds
            needed = timed * (level.ratio_half_width / precision) ** 2
            print(
                f"{run.vendor}, {clients(level.concurrency)}: auth/open is known to ±{level.ratio_half_width:.3f} only"
                f" after {timed:g} s on each endpoint (the machine's speed, and what else runs on it, vary from one"
                " second to the next)."
                f" ±{precision:g} would take about {needed:.0f} s on each: --database {run.vendor}"
                f" --concurrency {level.concurrency} --max-seconds {needed:.0f}"
            )
    print(
        "auth/open: all authenticated calls over all open calls, in equal time. CPU ms per call: the server's"
        " (and the database's) CPU time per call; open/auth of those is what auth/open would be if the server had"
        " its cores to itself. ± is half the 95% confidence interval, from the rounds' own ratios (Student's t)."
    )


def rounds_csv_write(runs: list[DatabaseRun], path: Path) -> None:
    """Every timed window, for a closer look at the noise (seconds are CPU seconds but for ``seconds``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["database", "clients", "round", "endpoint", "seconds", "calls", "failed", "p50_ms", "p99_ms"]
            + ["server_cpu_seconds", "database_cpu_seconds", "generator_cpu_seconds", "machine_busy_seconds"]
        )
        for run in runs:
            for level in run.levels:
                for index, pair in enumerate(level.rounds):
                    for endpoint, segment in pair.items():
                        tally, cpu = segment.tally, segment.cpu
                        writer.writerow(
                            [run.vendor, level.concurrency, index, endpoint, f"{tally.window_seconds:g}"]
                            + [tally.succeeded(), tally.failed, f"{tally.latency_ms(0.5):.3f}"]
                            + [f"{tally.latency_ms(0.99):.3f}", f"{sum(cpu.per_pid_seconds.values()):.2f}"]
                            + [f"{cpu.database_seconds:.2f}", f"{sum(tally.generator_cpu_seconds):.3f}"]
                            + [f"{cpu.machine_busy_seconds:.2f}"]
                        )


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    cores = os.cpu_count() or 1
    workdir = BenchmarkWorkdir("mcp-auth-")
    print_header(arguments)
    runs: list[DatabaseRun] = []
    with workdir.kept_on_failure():
        for vendor in arguments.databases:
            runs.append(run_database(vendor, arguments, workdir.path))
    for run in runs:
        print_table(run)
        print()
        print(format_onboarding(run.onboarding))
        # --- Token endpoint (benchmarks.token_exchange), measured by run_database --------------
        if run.token_exchange_rates is not None:
            from benchmarks.token_exchange import format_token_exchange_rates

            print()
            print(format_token_exchange_rates(run.token_exchange_rates))
    print_notes(runs, cores, arguments.precision)
    throughput_plot(runs, arguments.plot, title=machine_summary())
    rounds_csv_write(runs, arguments.plot.with_suffix(".csv"))
    print(f"\nPlot: {arguments.plot}; every window's numbers: {arguments.plot.with_suffix('.csv')}")
    troubled = any(
        run.log_problems or any(level.tally(endpoint).failed for level in run.levels for endpoint in ENDPOINTS)
        for run in runs
    )
    workdir.finish(troubled=troubled)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
