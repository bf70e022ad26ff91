"""The real server, started as a person would: ``python manage.py runserver`` on a free loopback port,
or as production runs it: uvicorn with several worker processes ("Running in production" in README.md).

Each server gets a database of its own: a SQLite file, or, when the suite runs on PostgreSQL
(``DATABASE_URL=postgres://...``, see ``live/postgres_server.py``), a new database on that server.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx2

PROJECT_DIR = Path(__file__).resolve().parents[1]
PRODUCT_APPLICATION = "config.asgi:application"  # what the production command serves


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(**overrides: str) -> dict[str, str]:
    """What an operator sets in production (README.md, "Running in production"): DEBUG off, and a
    secret key and an OpenID Connect signing key of its own (generated here, kept nowhere)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "OIDC_RSA_PRIVATE_KEY": pem.decode(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        **overrides,
    }


def suite_uses_postgresql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def serving_wait(
    process: subprocess.Popen, url: str, *, log_path: Path, timeout: float, headers: dict[str, str] | None = None
) -> None:
    """Return once the server ``process`` started answers its RFC 8414 metadata at ``url`` (``headers``
    go with that probe, e.g. behind TLS); RuntimeError, with its log, if it exits or takes longer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            if (
                httpx2.get(url + "/.well-known/oauth-authorization-server", headers=headers, timeout=2).status_code
                == 200
            ):
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not start in {timeout}s:\n{log_path.read_text()}")


class LiveServer:
    """One server on a fresh database of its own (unless ``env`` names one).

    ``workers=None`` runs ``manage.py runserver``; ``workers=N`` runs the production command,
    uvicorn with N worker processes, serving ``application`` (a benchmark serves its own).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        workers: int | None = None,
        application: str = PRODUCT_APPLICATION,
    ):
        if application != PRODUCT_APPLICATION and workers is None:
            raise ValueError(f"runserver serves {PRODUCT_APPLICATION} only; give workers to serve another")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.application = application
        self.own_database = None
        database_url = (env or {}).get("DATABASE_URL")
        if database_url is None and suite_uses_postgresql():
            from live.postgres_server import create_database

            self.own_database = f"live_{uuid.uuid4().hex[:12]}"
            database_url = create_database(os.environ["DATABASE_URL"], self.own_database)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url or f"sqlite:///{workdir / 'db.sqlite3'}",
            "DJANGO_VAR_DIR": str(workdir / "var"),
            "DJANGO_LOG_LEVEL": "WARNING",
            "UVICORN_LOG_LEVEL": "warning",
            # The suite registers many agents and asks for many tokens from 127.0.0.1; the limits have their own tests.
            "REGISTRATION_RATE_LIMIT": "10000",
            "TOKEN_RATE_LIMIT_PER_ADDRESS": "1000000",
            "TOKEN_RATE_LIMIT_PER_CLIENT": "1000000",
            **(env or {}),
        }
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def create_user(self, username: str, password: str, *, email: str = "", first_name: str = "", last_name: str = ""):
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({username!r}, email={email!r}, password={password!r}, "
            f"first_name={first_name!r}, last_name={last_name!r})",
        )

    def create_users(self, usernames: list[str], password: str) -> None:
        """People with accounts, in one go, sharing one password hash (hashing each takes a while)."""
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.auth.hashers import make_password\n"
            "User = get_user_model()\n"
            f"hashed = make_password({password!r})\n"
            f"people = [User(username=name, password=hashed, first_name=name.title()) for name in {usernames!r}]\n"
            "User.objects.bulk_create(people)\n",
        )

    def start(self, *, timeout: float = 60.0, headers: dict[str, str] | None = None) -> "LiveServer":
        """Start, and return once the server answers (``headers`` go with that probe, e.g. behind TLS)."""
        self.manage("migrate", "--noinput", "-v", "0")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            serving_wait(self.process, self.url, log_path=self.log_path, timeout=timeout, headers=headers)
        except RuntimeError:
            self.stop()
            raise
        return self

    def command(self) -> list[str]:
        if self.workers is None:
            return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]
        # The production command of README.md "Running in production", on loopback.
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.application,
            "--host=127.0.0.1",
            f"--port={self.port}",
            f"--workers={self.workers}",
            "--timeout-keep-alive=75",
            "--timeout-graceful-shutdown=10",
            f"--log-level={self.env['UVICORN_LOG_LEVEL']}",
        ]

    def worker_pids(self) -> list[int]:
        """The worker processes of a ``workers=N`` server (its supervisor's children)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        workers = []
        for child in map(int, children):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"multiprocessing.resource_tracker" not in cmdline:
                workers.append(child)
        return workers

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if getattr(self, "log", None):
            self.log.close()
        if self.own_database:
            from live.postgres_server import drop_database

            drop_database(os.environ["DATABASE_URL"], self.own_database)
            self.own_database = None


def process_group_stop(process: subprocess.Popen, *, stop_signal: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started (a reloader's
    child, npx's node): ``stop_signal`` to the group, SIGKILL if it is still there after ``timeout``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, stop_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
