"""What every benchmark needs around its load: a database, the real server, connected agents,
and an account of the machine and of where its CPU time went.

The server is the production command (uvicorn with N workers) started by the end-to-end tests'
``LiveServer``; agents get their tokens by the real OAuth flow (RFC 7591 registration, sign-in,
consent, PKCE code exchange), up front, so that timed traffic only uses them.
"""

import contextlib
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from live.oauth_flow import client_register, tokens_obtain
from live.person import Person
from live.server import PRODUCT_APPLICATION, LiveServer

# Nothing listens here: the person's browser stops at the redirect and hands the code over.
PASSWORD = "load test password 42"

SERVER_ENV = {
    "DJANGO_LOG_LEVEL": "WARNING",
    "UVICORN_LOG_LEVEL": "warning",
    # Every agent registers and asks for its tokens from 127.0.0.1; the limits have their own tests.
    "REGISTRATION_RATE_LIMIT": "100000",
    "TOKEN_RATE_LIMIT_PER_ADDRESS": "0",
    "TOKEN_RATE_LIMIT_PER_CLIENT": "0",
}


# --- The database -------------------------------------------------------------------------


class BenchmarkDatabase:
    """Where each benchmarked server keeps its data: a SQLite file of its own, or a new database on
    a throwaway PostgreSQL cluster (``live/postgres_server.py``) shared by the servers of one run."""

    def __init__(self, vendor: str, postgres=None):
        self.vendor = vendor
        self.postgres = postgres

    def server_env(self, workdir: Path) -> dict[str, str]:
        """``DATABASE_URL`` for a fresh, empty database for one server."""
        if self.postgres is None:
            return {"DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}"}
        return {"DATABASE_URL": self.postgres.create_database(f"load_{uuid.uuid4().hex[:12]}")}

    def server_pid(self) -> int | None:
        """The PostgreSQL postmaster, parent of every backend; None for SQLite."""
        if self.postgres is None:
            return None
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])

    def describe(self) -> str:
        if self.postgres is None:
            return f"SQLite {sqlite3.sqlite_version} (WAL, a file per server)"
        import psycopg

        with psycopg.connect(self.postgres.url(), connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"PostgreSQL {version} on 127.0.0.1:{self.postgres.port} (fsync off, a database per server)"


@contextlib.contextmanager
def benchmark_database(vendor: str) -> Iterator[BenchmarkDatabase]:
    """``sqlite`` or ``postgresql``; a PostgreSQL cluster is removed on the way out."""
    if vendor == "sqlite":
        yield BenchmarkDatabase(vendor)
        return
    from live.postgres_server import PostgresServer

    postgres = PostgresServer().start()
    try:
        yield BenchmarkDatabase(vendor, postgres)
    finally:
        postgres.remove()


# --- The server ---------------------------------------------------------------------------


class BenchmarkWorkdir:
    """A new temporary directory for one benchmark run's servers (databases, logs): named on the way
    out when the run fails or its servers had problems, so their logs can be read; removed otherwise."""

    def __init__(self, prefix: str):
        self.path = Path(tempfile.mkdtemp(prefix=prefix))

    @contextlib.contextmanager
    def kept_on_failure(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            print(f"\nServer logs kept in {self.path}", file=sys.stderr)
            raise

    def finish(self, *, troubled: bool) -> None:
        if troubled:
            print(f"\nServer logs kept in {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def started_server(
    workdir: Path,
    *,
    workers: int,
    database: BenchmarkDatabase,
    application: str = PRODUCT_APPLICATION,
    env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """The production command with ``workers`` worker processes, on a free loopback port and a fresh
    database, stopped on the way out; ``application`` is the ASGI app it serves (the product's unless
    a benchmark brings its own, e.g. ``benchmarks.asgi:application``), ``env`` more settings.
    Its output is in ``server.log_path``."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**SERVER_ENV, **(env or {}), **database.server_env(workdir)}
    server = LiveServer(workdir, workers=workers, env=env, application=application)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def print_log_problems(problems: list[str], log_path) -> None:
    if problems:
        print(f"  server log ({log_path}), from its first warning or traceback:")
        for line in problems:
            print(f"    | {line}")


def server_log_problems(server: LiveServer, *, limit: int = 60) -> list[str]:
    """The last ``limit`` lines of the server's log from its first warning or traceback on."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if any(mark in line for mark in ("Traceback", "ERROR", "WARNING", "Error", "CRITICAL")):
            return lines[index:][-limit:]
    return []


# --- Connected agents ---------------------------------------------------------------------


@dataclass
class AgentToken:
    """What an MCP client holds once a person connected it: its tokens, and whom they act for."""

    client_id: str
    username: str
    access_token: str
    refresh_token: str


def agent_token(server_url: str, client_id: str, person: Person, *, scope: str = "mcp profile") -> AgentToken:
    """The person connects the agent: consent to ``scope``, then the agent's PKCE code exchange."""
    tokens = tokens_obtain(server_url, person, client_id, scope=scope)
    return AgentToken(client_id, person.username, tokens["access_token"], tokens["refresh_token"])


def connect_agents(
    server: LiveServer, *, tokens: int, users: int, agents: int, scope: str = "mcp profile"
) -> list[AgentToken]:
    """``tokens`` independent token pairs for ``scope``: ``agents`` registered clients connected by
    ``users`` people, pairs assigned round-robin (a pair asked again gets a token pair of its own,
    without consent)."""
    usernames = [f"load{index}" for index in range(users)]
    server.create_users(usernames, PASSWORD)
    client_ids = [client_register(server.url, name=f"Load agent {index}") for index in range(agents)]
    people = [Person(username, PASSWORD) for username in usernames]
    try:
        return [
            agent_token(server.url, client_ids[index % agents], people[index % users], scope=scope)
            for index in range(tokens)
        ]
    finally:
        for person in people:
            person.browser.close()


# --- The machine and its CPU time ---------------------------------------------------------


def machine_summary() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0))
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} cores ({usable} usable by this process), {system}"


def python_summary() -> str:
    return f"Python {platform.python_version()} ({platform.python_implementation()})"


_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of proc(5)


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle so far (``/proc/stat``; guest time is inside user time)."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / _TICKS


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants so far, those already gone included
    (a reaped child's time is added to its parent's ``cutime``/``cstime``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    own = sum(int(value) for value in fields[11:15]) / _TICKS  # utime, stime, cutime, cstime
    return own + sum(process_tree_cpu_seconds(int(child)) for child in children)


@dataclass
class CpuUse:
    wall_seconds: float
    per_pid_seconds: dict[int, float]
    database_seconds: float  # a database server's processes (0 for SQLite, which runs inside the server's)
    machine_busy_seconds: float

    def cores(self, pid: int) -> float:
        return self.per_pid_seconds[pid] / self.wall_seconds

    @property
    def watched_cores(self) -> float:
        return sum(self.per_pid_seconds.values()) / self.wall_seconds

    @property
    def database_cores(self) -> float:
        return self.database_seconds / self.wall_seconds

    @property
    def machine_busy_cores(self) -> float:
        return self.machine_busy_seconds / self.wall_seconds


class CpuMeter:
    """CPU time between ``start`` and ``stop`` of some processes (the server's), of a database
    server's process tree, and of the whole machine."""

    def __init__(self, pids: list[int], *, database_pid: int | None = None):
        self.pids = pids
        self.database_pid = database_pid
        self.use: CpuUse | None = None

    def _sample(self) -> tuple[float, dict[int, float], float, float]:
        database = process_tree_cpu_seconds(self.database_pid) if self.database_pid else 0.0
        return time.monotonic(), {pid: process_cpu_seconds(pid) for pid in self.pids}, database, machine_busy_seconds()

    def start(self) -> None:
        self._started = self._sample()

    def stop(self) -> None:
        (wall0, pids0, database0, busy0), (wall1, pids1, database1, busy1) = self._started, self._sample()
        per_pid = {pid: pids1[pid] - pids0[pid] for pid in self.pids}
        self.use = CpuUse(wall1 - wall0, per_pid, database1 - database0, busy1 - busy0)


def machine_busy_cores(seconds: float = 2.0) -> float:
    """How many cores the machine keeps busy over ``seconds`` (before a benchmark: other people's work)."""
    started, busy = time.monotonic(), machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - busy) / (time.monotonic() - started)


def wait_for_idle_machine(*, busy_cores: float, timeout: float) -> float:
    """Wait, at most ``timeout`` seconds, until fewer than ``busy_cores`` cores are busy; the last reading."""
    deadline = time.monotonic() + timeout
    busy = machine_busy_cores()
    while busy >= busy_cores and time.monotonic() < deadline:
        busy = machine_busy_cores()
    return busy
