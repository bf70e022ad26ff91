"""A throwaway PostgreSQL server from Debian's packages, on 127.0.0.1, for the tests and benchmarks.

``bin/test`` runs the suite a second time against one of these::

    python -m live.postgres_server run -- python -m pytest ...

which starts a fresh cluster on a free port, runs the command with ``DATABASE_URL`` pointing at it,
and removes the cluster afterwards. Tests that stop the database on purpose start their own.

The cluster trusts connections from loopback (it listens nowhere else) and skips fsync: it holds
test data only. PostgreSQL refuses to run as root, so as root it runs as Debian's ``postgres`` user.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from live.server import free_port


def postgres_bin_dir() -> Path:
    """Where Debian's ``postgresql`` package put ``initdb`` and ``pg_ctl`` (the newest version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql (bin/test does it)")
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self, *, port: int | None = None):
        self.port = port or free_port()
        self.bin = postgres_bin_dir()
        # Not under pytest's tmp dirs: those are private to the current user, and the server may run as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="mcp-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout, cwd=self.root)

    def start(self) -> "PostgresServer":
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off -c max_connections=300"
        )
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)
        return self

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends open sessions (what an outage looks like to clients)."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode)

    def remove(self) -> None:
        try:
            self.stop(mode="immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        return create_database(self.url(), name)


def _database_admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the PostgreSQL server of ``server_url``; its URL."""
    with psycopg.connect(_database_admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(_database_admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until_accepting(url: str, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[:2] != ["run", "--"]:
        print("usage: python -m live.postgres_server run -- COMMAND...", file=sys.stderr)
        return 2
    server = PostgresServer().start()
    try:
        url = server.create_database("mcp")
        print(f"PostgreSQL on 127.0.0.1:{server.port} ({server.root})", flush=True)
        return subprocess.run(argv[2:], env={**os.environ, "DATABASE_URL": url}).returncode
    finally:
        server.remove()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
