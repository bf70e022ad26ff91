"""The real server, started as a person would: ``python manage.py runserver`` on a free loopback port."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

PROJECT_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """One server process on a fresh SQLite file database, with one user created up front."""

    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "DJANGO_VAR_DIR": str(workdir / "var"),
            "DJANGO_LOG_LEVEL": "WARNING",
            "UVICORN_LOG_LEVEL": "warning",
            # The suite registers many agents from 127.0.0.1; the limit itself has its own tests.
            "REGISTRATION_RATE_LIMIT": "10000",
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

    def start(self, *, timeout: float = 60.0) -> "LiveServer":
        self.manage("migrate", "--noinput", "-v", "0")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx2.get(self.url + "/.well-known/oauth-authorization-server", timeout=2).status_code == 200:
                    return self
            except httpx2.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if getattr(self, "log", None):
            self.log.close()
