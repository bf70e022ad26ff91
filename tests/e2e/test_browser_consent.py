"""A person in a real browser (Debian's Chromium, driven by Playwright) against the live server:
sign in, read the consent page, untick `email`, allow; deny; revoke under Connected apps.
Screenshots of each page are saved under test-results/screenshots/."""

import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import expect

from live.paths import MCP_PATH
from live.server import free_port
from tests.authserver.helpers import pkce_pair
from tests.e2e.browser import axe_violations, browser_page, chromium, person_signs_in, person_signs_up, screenshot


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    with browser_page(browser, width=420, height=860, timeout_ms=15_000) as page:  # a phone-sized window
        yield page


@pytest.fixture
def person(running_server):
    return person_signs_up(running_server, "bea", email="bea@example.com", first_name="Bea", last_name="Browser")


class Agent:
    """A third-party agent: registered itself, listens on a loopback port for the redirect."""

    def __init__(self, server, page, name="SmartMail AI"):
        self.server = server
        self.callback = f"http://127.0.0.1:{free_port()}/callback"
        registration = httpx2.post(
            server.url + "/o/register/",
            json={
                "client_name": name,
                "redirect_uris": [self.callback],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
        )
        assert registration.status_code == 201, registration.text
        self.client_id = registration.json()["client_id"]
        # The agent's loopback listener, played by the browser itself.
        page.route(
            self.callback + "**", lambda route: route.fulfill(content_type="text/html", body="<p>Back in the agent</p>")
        )

    def authorization_url(self, scope="mcp profile email"):
        self.verifier, challenge = pkce_pair()
        self.state = secrets.token_urlsafe(16)
        return (
            self.server.url
            + "/o/authorize/?"
            + urlencode(
                {
                    "response_type": "code",
                    "client_id": self.client_id,
                    "redirect_uri": self.callback,
                    "scope": scope,
                    "state": self.state,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "resource": self.server.url + MCP_PATH,
                }
            )
        )

    def received(self, page) -> dict:
        page.wait_for_url(self.callback + "**")
        return {key: values[0] for key, values in parse_qs(urlsplit(page.url).query).items()}

    def redeem(self, code) -> dict:
        response = httpx2.post(
            self.server.url + "/o/token/",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.callback,
                "client_id": self.client_id,
                "code_verifier": self.verifier,
            },
        )
        assert response.status_code == 200, response.text
        return response.json()

    def whoami(self, access_token):
        async def call():
            headers = {"Authorization": f"Bearer {access_token}"}
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
                transport = streamable_http_client(self.server.url + MCP_PATH, http_client=http)
                async with Client(transport, mode="legacy") as client:
                    return await client.call_tool("whoami", {})

        # Playwright's sync API keeps an event loop on this thread; the SDK client gets its own.
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(anyio.run, call).result(timeout=60)


WHOAMI_SUMMARY = "Who you are on this site: your user id, username and name, and your email if you allowed it."


def sign_in(page, username):
    expect(page.get_by_role("heading", name="Sign in to Django MCP to continue to")).to_be_visible()
    assert axe_violations(page) == []
    person_signs_in(page, username, screenshot_name="login")


def test_person_unticks_email_and_the_agent_never_sees_it(running_server, page, person):
    agent = Agent(running_server, page)
    page.goto(agent.authorization_url())
    sign_in(page, person)

    expect(page.get_by_role("heading", name="Allow SmartMail AI to use your Django MCP account?")).to_be_visible()
    expect(page.get_by_text("registered itself with this site automatically")).to_be_visible()
    expect(page.get_by_text("It runs on this computer.")).to_be_visible()
    expect(page.locator("code", has_text="127.0.0.1")).to_be_visible()
    expect(page.get_by_label("Connect to this site as you")).to_be_disabled()
    expect(page.get_by_label("See your username and name")).to_be_checked()
    email = page.get_by_label("See your email address")
    expect(email).to_be_checked()
    assert axe_violations(page) == []
    screenshot(page, "consent")
    email.uncheck()
    page.get_by_role("button", name="Allow").click()

    params = agent.received(page)
    assert params["state"] == agent.state
    assert params["iss"] == running_server.url
    tokens = agent.redeem(params["code"])
    assert tokens["scope"] == "mcp profile"
    claims = agent.whoami(tokens["access_token"]).structured_content
    assert claims["username"] == person
    assert claims["name"] == "Bea Browser"
    assert "email" not in claims


def test_person_denies_and_the_agent_gets_access_denied(running_server, page, person):
    agent = Agent(running_server, page, name="Pushy Agent")
    page.goto(agent.authorization_url())
    sign_in(page, person)
    expect(page.get_by_role("heading", name="Allow Pushy Agent to use your Django MCP account?")).to_be_visible()
    page.get_by_role("button", name="Deny").click()

    assert agent.received(page) == {"error": "access_denied", "state": agent.state, "iss": running_server.url}


def test_person_revokes_a_connected_app_and_its_token_stops_working(running_server, page, person):
    agent = Agent(running_server, page, name="Revocable Agent")
    page.goto(agent.authorization_url(scope="mcp profile"))
    sign_in(page, person)
    page.get_by_role("button", name="Allow").click()
    tokens = agent.redeem(agent.received(page)["code"])
    assert agent.whoami(tokens["access_token"]).structured_content["username"] == person

    page.goto(running_server.url + "/accounts/connected-apps/")
    card = page.get_by_role("listitem").filter(has_text="Revocable Agent")
    expect(card.get_by_text("See your username and name")).to_be_visible()
    expect(card.locator(".app-tools li")).to_have_text(["Who am I"])
    expect(card.get_by_text("last used")).to_be_visible()
    screenshot(page, "connected-apps")
    assert axe_violations(page) == []
    card.get_by_role("link", name="Revoke access for Revocable Agent").click()
    # Asked once more; nothing happened yet.
    expect(page.get_by_role("heading", name="Revoke access for Revocable Agent?")).to_be_visible()
    assert axe_violations(page) == []
    assert agent.whoami(tokens["access_token"]).structured_content["username"] == person
    page.get_by_role("button", name="Revoke access").click()
    expect(page.get_by_role("status")).to_have_text("Revocable Agent can no longer access your account.")
    expect(page.get_by_text("Revocable Agent", exact=True)).to_have_count(0)

    response = httpx2.post(
        running_server.url + MCP_PATH,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_step_up_consent_asks_only_for_the_new_scope(running_server, page, person):
    agent = Agent(running_server, page, name="Note Taker")
    page.goto(agent.authorization_url(scope="mcp notes:read"))
    sign_in(page, person)
    page.get_by_role("button", name="Allow").click()
    agent.received(page)

    # The tool call that needed `notes:write` was refused; the agent asks for it on top of what it has.
    page.goto(agent.authorization_url(scope="mcp notes:read notes:write"))
    expect(page.get_by_role("heading", name="Allow Note Taker to use your Django MCP account?")).to_be_visible()
    expect(page.get_by_label("Add notes for you")).to_be_checked()
    expect(page.get_by_label("Read your notes")).to_have_count(0)
    expect(page.get_by_label("Connect to this site as you")).to_have_count(0)
    # What it keeps from before is said, not asked again.
    expect(page.locator("#already-allowed li")).to_have_text(
        ["Connect to this site as you", "Read your notes (List my notes, Search my notes)"]
    )
    screenshot(page, "step-up-consent")
    page.get_by_role("button", name="Allow").click()
    assert agent.redeem(agent.received(page)["code"])["scope"] == "mcp notes:read notes:write"


def test_person_sees_the_tools_and_ticks_the_offered_email_by_keyboard_alone(running_server, page, person):
    """The consent page works without a mouse: Tab to the offered `email` box, Space to tick it,
    Tab to Allow, Enter. The agent asked for `profile` only; whoami then shows the email."""
    agent = Agent(running_server, page, name="Keyboard Agent")
    page.goto(agent.authorization_url(scope="mcp profile"))
    sign_in(page, person)

    expect(page.locator("#asked-scopes .tools li")).to_have_text(["Who am I: " + WHOAMI_SUMMARY])
    offered = page.get_by_label("See your email address")
    expect(offered).not_to_be_checked()
    expect(page.get_by_text("Who am I can also show your email")).to_be_visible()
    expect(page.get_by_text("access ends after 30 days without use")).to_be_visible()
    assert axe_violations(page) == []

    for _ in range(40):  # bounded: the page has a handful of focusable controls
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "scope-email":
            break
    page.keyboard.press("Space")
    expect(offered).to_be_checked()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "allow":
            break
    # What the browser is sent to (Chromium follows a keyboard-submitted form's redirect twice, and a
    # wait for the page to load sees the second, which the test's stand-in listener does not answer).
    with page.expect_request(lambda request: request.url.startswith(agent.callback)) as sent:
        page.keyboard.press("Enter")
    params = {key: values[0] for key, values in parse_qs(urlsplit(sent.value.url).query).items()}
    assert params["state"] == agent.state
    tokens = agent.redeem(params["code"])
    assert tokens["scope"] == "mcp profile email"
    assert agent.whoami(tokens["access_token"]).structured_content["email"] == "bea@example.com"


def test_person_cancels_signing_in_and_the_agent_gets_access_denied(running_server, page):
    agent = Agent(running_server, page, name="Cancelled Agent")
    page.goto(agent.authorization_url())
    expect(page.get_by_role("heading", name="Sign in to Django MCP to continue to Cancelled Agent")).to_be_visible()
    page.get_by_role("link", name="Cancel and go back to Cancelled Agent").click()
    assert agent.received(page) == {
        "error": "access_denied",
        "error_description": "The person cancelled signing in.",
        "state": agent.state,
        "iss": running_server.url,
    }


def test_home_page_and_not_you_sign_out_pass_axe(running_server, page, person):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=running_server.url)
    page.goto(running_server.url + "/")
    expect(page.locator("#mcp-url")).to_have_text(running_server.url + MCP_PATH)
    assert axe_violations(page) == []
    screenshot(page, "home")
    page.get_by_role("button", name="Copy the MCP endpoint URL").click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == running_server.url + MCP_PATH
    page.get_by_text("VS Code", exact=True).click()  # the snippet opens
    page.get_by_role("button", name="Copy the VS Code snippet").click()
    assert f'"url": "{running_server.url}{MCP_PATH}"' in page.evaluate("navigator.clipboard.readText()")

    agent = Agent(running_server, page, name="Shared Laptop Agent")
    page.goto(agent.authorization_url(scope="mcp"))
    sign_in(page, person)
    expect(page.get_by_text(f"Signed in to Django MCP as {person}.")).to_be_visible()
    page.get_by_role("button", name="Not you? Sign out").click()
    # Signed out, and back at the sign-in page for the same request.
    expect(page.get_by_role("heading", name="Sign in to Django MCP to continue to Shared Laptop Agent")).to_be_visible()
