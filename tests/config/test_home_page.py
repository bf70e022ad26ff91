"""The home page: what this server is and how to connect a client to it, built from the real public URL."""

import json

import pytest
from django.test import override_settings

from tests.authserver.helpers import site_url_settings
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_home_page_gives_the_mcp_url_and_snippets_for_the_clients_people_use(client):
    page = client.get("/")
    html = page.content.decode()
    url = "http://testserver/star/mcp"
    assert f'<code id="mcp-url">{url}</code>' in html
    assert 'data-copy="mcp-url"' in html
    snippets = {snippet.client: snippet.text for snippet in page.context["mcp_snippets"]}
    assert snippets["Claude Code"] == f"claude mcp add --transport http django-mcp {url}"
    assert json.loads(snippets["VS Code"]) == {"servers": {"django-mcp": {"type": "http", "url": url}}}
    assert json.loads(snippets["Cursor"]) == {"mcpServers": {"django-mcp": {"url": url}}}
    assert snippets["MCP Inspector"].endswith(f"--transport http --server-url {url}")
    assert 'href="/accounts/login/"' in html
    assert "Connected apps" not in html and "/admin/" not in html


def test_home_page_snippets_name_the_public_url_when_the_site_sets_one(client):
    with override_settings(**site_url_settings("https://mcp.example.com")):
        page = client.get("/", HTTP_HOST="mcp.example.com")
    assert page.context["mcp_url"] == "https://mcp.example.com/star/mcp"
    assert "https://mcp.example.com/star/mcp" in page.context["mcp_snippets"][0].text


def test_home_page_links_connected_apps_when_signed_in_and_the_admin_for_staff(client):
    client.force_login(make_user("pat"))
    html = client.get("/").content.decode()
    assert 'href="/accounts/connected-apps/"' in html and 'href="/admin/"' not in html
    staff = make_user("sam")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    assert 'href="/admin/"' in client.get("/").content.decode()
