"""A real browser (Debian's Chromium, driven by Playwright) and a person using it: one place for the
browser tests (``test_browser_consent``, ``test_mcp_inspector``)."""

import contextlib
import re
import secrets

from playwright.sync_api import expect, sync_playwright

from live.server import PROJECT_DIR

CHROMIUM = "/usr/bin/chromium"
# Chromium's own background traffic would hit this machine's closed network; keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
# Any URL that is not on this machine: aborted, so a page cannot reach the internet.
NOT_LOOPBACK = re.compile(r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost)(?:[:/]|$))[a-z]+://")
SCREENSHOTS = PROJECT_DIR / "test-results" / "screenshots"
# axe-core, from tests/interop/axe (installed by bin/test from its lock file).
AXE = PROJECT_DIR / "tests" / "interop" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "a browser-typed password"


@contextlib.contextmanager
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browser_page(browser, *, width: int, height: int, timeout_ms: int):
    """A fresh window (its own cookies) that reaches only this machine."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(timeout_ms)
    context.route(NOT_LOOPBACK, lambda route: route.abort())
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def axe_violations(page) -> list[dict]:
    """What axe-core finds wrong with the page as it is now (its default rules: WCAG 2 A/AA and best
    practices), as {rule, impact, where} per violation."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run(document)).violations.map(
            (v) => ({rule: v.id, impact: v.impact, where: v.nodes.map((n) => n.target.join(" "))}))"""
    )


def person_signs_up(server, prefix: str, **names) -> str:
    """A new person on ``server`` (their username starts with ``prefix``), with :data:`PASSWORD`."""
    username = prefix + secrets.token_hex(3)
    server.create_user(username, PASSWORD, **names)
    return username


def person_signs_in(page, username: str, *, screenshot_name: str | None = None) -> None:
    """On the sign-in page, the person types their username and password and signs in."""
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    if screenshot_name:
        screenshot(page, screenshot_name)
    page.get_by_role("button", name="Sign in").click()
