"""Production settings (README.md, "Running in production"): Django's and django-oauth-toolkit's
deployment checks pass, secrets are required, and HTTPS is enforced behind a TLS-terminating proxy."""

import os
import subprocess
import sys

import httpx2
import pytest

from live.server import PROJECT_DIR, LiveServer, free_port, production_env
from tests.authserver.test_registration import AGENT

SITE = "https://mcp.example.com"


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deployment_checks_pass_with_no_warning_under_production_settings():
    # `--deploy` adds Django's security checks and django-oauth-toolkit's RFC 9700 configuration check.
    done = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(SITE_URL=SITE, DJANGO_ALLOWED_HOSTS="")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_deployment_checks_fail_for_a_site_served_over_plain_http():
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(SITE_URL="http://mcp.example.com"))
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):  # HSTS, redirect, cookies
        assert warning in done.stderr


def test_deployment_checks_fail_for_a_guessable_secret_key():
    done = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(SITE_URL=SITE, DJANGO_SECRET_KEY="x" * 60)
    )
    assert done.returncode != 0
    assert "security.W009" in done.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "OIDC_RSA_PRIVATE_KEY"])
def test_production_refuses_to_start_without_its_own_secrets(missing):
    env = production_env(SITE_URL=SITE)
    env[missing] = ""
    done = manage("check", env=env)
    assert done.returncode != 0
    assert f"{missing}" in done.stderr and "must be set when DJANGO_DEBUG is off" in done.stderr


BEHIND_TLS = {"X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    """The production command behind a (pretend) TLS proxy on loopback: uvicorn trusts
    X-Forwarded-Proto from 127.0.0.1, as it would from a proxy named in --forwarded-allow-ips."""
    port = free_port()
    server = LiveServer(
        tmp_path_factory.mktemp("production"),
        port=port,
        workers=2,
        env=production_env(SITE_URL=f"https://localhost:{port}"),
    )
    server.manage("collectstatic", "--noinput", "-v", "0")
    yield server.start(headers=BEHIND_TLS)
    server.stop()


def test_plain_http_is_redirected_to_https(production_server):
    response = httpx2.get(production_server.url + "/accounts/login/")
    assert response.status_code == 301
    assert response.headers["location"] == f"https://127.0.0.1:{production_server.port}/accounts/login/"


def test_pages_over_https_carry_hsts_and_set_only_secure_cookies(production_server):
    response = httpx2.get(production_server.url + "/accounts/login/", headers=BEHIND_TLS)
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all("; Secure" in cookie for cookie in cookies)


def test_the_published_issuer_is_the_https_site_url(production_server):
    metadata = httpx2.get(production_server.url + "/.well-known/oauth-authorization-server", headers=BEHIND_TLS).json()
    assert metadata["issuer"] == f"https://localhost:{production_server.port}"
    assert metadata["token_endpoint"].startswith("https://")


def test_the_admin_stylesheet_is_served_without_debug(production_server):
    # DEBUG off: static files come from STATIC_ROOT (collectstatic), served by the ASGI app.
    response = httpx2.get(production_server.url + "/static/admin/css/base.css", headers=BEHIND_TLS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_an_unknown_page_is_a_plain_404_without_debug_details(production_server):
    response = httpx2.get(production_server.url + "/no/such/page/", headers=BEHIND_TLS)
    assert response.status_code == 404
    assert "Traceback" not in response.text and "URLconf" not in response.text


def test_behind_the_proxy_the_callers_address_is_the_forwarded_one(production_server):
    # What the rate limits, the sign-in lockout and the audit trail count by (uvicorn --forwarded-allow-ips).
    response = httpx2.post(
        production_server.url + "/o/register/",
        json={**AGENT, "client_name": "forwarded"},
        headers={**BEHIND_TLS, "X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 201
    recorded = production_server.manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from authserver.models import AuditEvent; print(AuditEvent.objects.get(client_name='forwarded').ip)",
    )
    assert recorded.strip() == "203.0.113.9"
