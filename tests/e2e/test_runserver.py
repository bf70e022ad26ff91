"""``python manage.py runserver`` serves the whole product, with Django's autoreloader."""

import os
import signal
import subprocess
import sys
import time

import httpx2
import uvicorn

from live.paths import MCP_PATH
from live.server import PROJECT_DIR, LiveServer


def test_runserver_with_autoreload_serves_django_and_the_mcp_endpoint(tmp_path):
    server = LiveServer(tmp_path)
    server.manage("migrate", "--noinput", "-v", "0")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{server.port}"],
        cwd=PROJECT_DIR,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the reloader runs the server in a child process
    )
    try:
        deadline, metadata = time.monotonic() + 60, None
        while time.monotonic() < deadline and metadata is None:
            try:
                metadata = httpx2.get(server.url + "/.well-known/oauth-authorization-server", timeout=2)
            except httpx2.TransportError:
                time.sleep(0.2)
        assert metadata is not None and metadata.status_code == 200
        assert metadata.json()["issuer"] == server.url
        assert httpx2.post(server.url + MCP_PATH, json={}, timeout=5).status_code == 401
        assert httpx2.get(server.url + "/accounts/login/", timeout=5).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            output = process.communicate(timeout=15)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output = process.communicate(timeout=5)[0].decode()
    # One honest banner, once: ASGI on uvicorn, development only, and where a person goes next.
    assert output.count("Watching for file changes") == 1
    assert output.count(f"Serving the site's ASGI application on uvicorn {uvicorn.__version__} at {server.url}/") == 1
    assert "for development only" in output
    assert f"MCP endpoint  {server.url}{MCP_PATH}" in output
    assert f"Sign in       {server.url}/accounts/login/" in output
    assert f"Admin         {server.url}/admin/" in output
    assert "WSGI" not in output and "Starting development server" not in output


def test_runserver_reports_a_port_in_use(tmp_path, running_server):
    server = LiveServer(tmp_path, port=running_server.port)
    server.manage("migrate", "--noinput", "-v", "0")
    done = subprocess.run(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{server.port}", "--noreload"],
        cwd=PROJECT_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "already in use" in (done.stdout + done.stderr)
