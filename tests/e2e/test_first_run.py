"""The first run, as the README's quick start has a person do it: `bin/serve` in a terminal, on a fresh
SQLite database, offers to create the first user, then serves in the foreground with one banner."""

import os
import pty
import select
import signal
import subprocess
import time

import httpx2

from live.server import PROJECT_DIR, free_port


class Terminal:
    """A command on a pseudo-terminal (so it sees a person at a terminal), read with a deadline."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.controller, worker = pty.openpty()
        self.process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdin=worker, stdout=worker, stderr=worker, start_new_session=True
        )
        os.close(worker)
        self.output = ""

    def expect(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {text!r} in:\n{self.output}"
            ready, _, _ = select.select([self.controller], [], [], min(remaining, 1))
            if ready:
                try:
                    self.output += os.read(self.controller, 65536).decode(errors="replace")
                except OSError:  # the command ended
                    assert text in self.output, f"ended before {text!r}:\n{self.output}"

    def type(self, line: str) -> None:
        os.write(self.controller, (line + "\n").encode())

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        os.close(self.controller)


def test_bin_serve_in_a_terminal_offers_the_first_user_then_serves_in_the_foreground(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("DJANGO_SUPERUSER_PASSWORD", None)
    terminal = Terminal([str(PROJECT_DIR / "bin" / "serve"), f"127.0.0.1:{port}"], env)
    try:
        terminal.expect("There is no user yet. Create the first one now")
        terminal.type("")  # the default: yes
        terminal.expect("Username")
        terminal.type("founder")
        terminal.expect("Email address")
        terminal.type("founder@example.com")
        terminal.expect("Password:")
        terminal.type("a long first password 42")
        terminal.expect("Password (again):")
        terminal.type("a long first password 42")
        terminal.expect("Superuser created successfully.")
        terminal.expect(f"MCP endpoint  http://127.0.0.1:{port}/star/mcp")
        terminal.expect("Quit with CONTROL-C.")
        terminal.expect("Application startup complete")
        signed_in = httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        login = signed_in.get("/accounts/login/")
        token = login.cookies["csrftoken"]
        answer = signed_in.post(
            "/accounts/login/",
            data={"username": "founder", "password": "a long first password 42", "csrfmiddlewaretoken": token},
        )
        assert answer.status_code == 302  # the account made at the prompt signs in
        assert terminal.process.poll() is None  # still serving, in the foreground
    finally:
        terminal.stop()
    assert terminal.output.count("Watching for file changes") == 1
