"""Consent: who is asked, what they are asked, what is remembered, and that the form cannot be bent."""

import pytest
from django.core.management import call_command
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_grant_model

from authserver.dot.views import authorize as authorize_module
from authserver.models import Application, ConsentGrant
from live.paths import MCP_PATH
from tests.authserver.helpers import (
    ISSUER,
    authorize_url,
    consent_answer,
    exchange_code,
    pkce_pair,
    redirect_params,
    stored_access_token,
)
from tests.factories import REDIRECT_URI, make_client, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    """A third-party agent that registered itself (RFC 7591)."""
    return make_client(name="SmartMail AI", registration_source=Application.RegistrationSource.DCR)


def ask(client, app, scope="mcp profile email", **params):
    verifier, challenge = pkce_pair()
    return client.get(authorize_url(app, challenge, scope=scope, **params)), verifier


def allow(client, page, **answer):
    return client.post(page.wsgi_request.get_full_path(), consent_answer(page, **answer))


def token_for(client, app, response, verifier) -> dict:
    return exchange_code(client, app, redirect_params(response)["code"], verifier).json()


# --- Who is asked ---------------------------------------------------------------------------


def test_third_party_client_gets_the_consent_page_on_first_use(signed_in, agent):
    page, _ = ask(signed_in, agent)
    assert page.status_code == 200
    assert [scope.name for scope in page.context["asked_scopes"]] == ["mcp", "profile", "email"]


def test_first_party_client_skips_the_consent_page_and_gets_what_it_asked_for(signed_in):
    official = make_client(name="Official mail app", skip_authorization=True)
    response, verifier = ask(signed_in, official)
    assert response.status_code == 302
    assert token_for(signed_in, official, response, verifier)["scope"] == "mcp profile email"
    # It still shows under the person's connected apps, so they can revoke it.
    assert ConsentGrant.objects.get(application=official).scopes == ["mcp", "profile", "email"]


def test_remembered_consent_goes_straight_through_the_second_time(signed_in, agent):
    page, _ = ask(signed_in, agent)
    redirect_params(allow(signed_in, page))
    again, verifier = ask(signed_in, agent)
    assert again.status_code == 302
    assert redirect_params(again)["iss"] == ISSUER
    assert token_for(signed_in, agent, again, verifier)["scope"] == "mcp profile email"


def test_asking_for_more_shows_only_the_new_scopes(signed_in, agent):
    page, _ = ask(signed_in, agent, scope="mcp profile")
    allow(signed_in, page)
    more, _ = ask(signed_in, agent, scope="mcp profile email")
    assert more.status_code == 200
    assert [scope.name for scope in more.context["asked_scopes"]] == ["email"]
    assert [scope.name for scope in more.context["already_allowed"]] == ["mcp", "profile"]
    assert b'value="profile"' not in more.content
    assert b"See your email address" in more.content


def test_consent_to_a_broad_scope_covers_the_narrower_ones_it_includes(signed_in, agent):
    page, _ = ask(signed_in, agent, scope="mcp notes")
    assert b"Read your notes and add new ones" in page.content
    allow(signed_in, page)
    # `notes` covers `notes:read` and `notes:write` (the registry says so): nothing new to ask.
    narrower, verifier = ask(signed_in, agent, scope="mcp notes:read notes:write")
    assert narrower.status_code == 302
    assert token_for(signed_in, agent, narrower, verifier)["scope"] == "mcp notes:read notes:write"


def test_consent_to_a_narrow_scope_does_not_cover_the_broad_one(signed_in, agent):
    page, _ = ask(signed_in, agent, scope="mcp notes:read")
    allow(signed_in, page)
    broader, _ = ask(signed_in, agent, scope="mcp notes")
    assert broader.status_code == 200
    assert [scope.name for scope in broader.context["asked_scopes"]] == ["notes"]


def test_a_different_client_with_the_same_name_is_asked_again(signed_in, agent):
    page, _ = ask(signed_in, agent)
    allow(signed_in, page)
    impostor = make_client(name="SmartMail AI", registration_source=Application.RegistrationSource.DCR)
    page, _ = ask(signed_in, impostor)
    assert page.status_code == 200


def test_prompt_none_from_a_third_party_without_consent_answers_consent_required(signed_in, agent):
    response, _ = ask(signed_in, agent, prompt="none")
    assert redirect_params(response) == {
        "error": "consent_required",
        "error_description": "The user has not allowed this yet.",
        "state": "state-123",
        "iss": ISSUER,
    }
    assert not get_grant_model().objects.exists()


def test_prompt_none_with_remembered_consent_gets_a_code(signed_in, agent):
    page, _ = ask(signed_in, agent)
    allow(signed_in, page)
    response, _ = ask(signed_in, agent, prompt="none")
    assert "code" in redirect_params(response)


def test_prompt_consent_asks_again_even_when_remembered(signed_in, agent):
    page, _ = ask(signed_in, agent)
    allow(signed_in, page)
    again, _ = ask(signed_in, agent, prompt="consent")
    assert again.status_code == 200


def test_approval_prompt_auto_does_not_bypass_consent(signed_in, agent):
    page, verifier = ask(signed_in, agent, scope="mcp")
    token_for(signed_in, agent, allow(signed_in, page), verifier)
    ConsentGrant.objects.all().delete()
    again, _ = ask(signed_in, agent, scope="mcp", approval_prompt="auto")
    assert again.status_code == 200


# --- What is granted ------------------------------------------------------------------------


def test_unticked_scope_is_absent_from_the_token_and_the_grant(signed_in, agent):
    page, verifier = ask(signed_in, agent)
    body = token_for(signed_in, agent, allow(signed_in, page, untick=("email",)), verifier)
    assert body["scope"] == "mcp profile"
    assert ConsentGrant.objects.get(application=agent).scopes == ["mcp", "profile"]


def test_the_base_scope_cannot_be_unticked(signed_in, agent):
    page, verifier = ask(signed_in, agent)
    answer = consent_answer(page, untick=("profile", "email"))
    answer["scopes"] = []  # nothing ticked, not even a forged "mcp" removal can drop it
    body = token_for(signed_in, agent, signed_in.post(page.wsgi_request.get_full_path(), answer), verifier)
    assert body["scope"] == "mcp"


def test_unticking_everything_optional_when_no_base_scope_was_asked_is_a_denial(signed_in, agent):
    page, _ = ask(signed_in, agent, scope="profile")
    response = allow(signed_in, page, untick=("profile",))
    assert redirect_params(response)["error"] == "access_denied"


def test_deny_redirects_with_access_denied_state_and_iss(signed_in, agent):
    page, _ = ask(signed_in, agent)
    response = allow(signed_in, page, allow=False)
    assert redirect_params(response) == {"error": "access_denied", "state": "state-123", "iss": ISSUER}
    assert not ConsentGrant.objects.exists()


# --- The page -------------------------------------------------------------------------------


def test_consent_page_says_who_asks_how_it_registered_and_where_it_goes(signed_in, agent):
    page, _ = ask(signed_in, agent)
    html = page.content.decode()
    assert "SmartMail AI" in html
    assert "registered itself" in html
    assert "127.0.0.1" in html and "It runs on this computer" in html
    assert "See your email address" in html and "Needed to connect at all" in html
    assert 'for="scope-email"' in html and 'id="scope-email"' in html


def test_consent_page_names_the_host_of_a_web_redirect(signed_in):
    app = make_client(name="Web agent", redirect_uris="https://agent.example.com/cb")
    page, _ = ask(signed_in, app, redirect_uri="https://agent.example.com/cb")
    assert page.context["redirect_host"] == "agent.example.com"
    assert b"It runs on this computer" not in page.content


def test_client_name_is_escaped(signed_in):
    app = make_client(name="<script>alert(1)</script>", registration_source=Application.RegistrationSource.DCR)
    page, _ = ask(signed_in, app)
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.content


@pytest.mark.parametrize("path", ["/accounts/login/", "consent"])
def test_login_and_consent_pages_cannot_be_framed(signed_in, agent, path):
    response = ask(signed_in, agent)[0] if path == "consent" else Client().get(path)
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"


# --- Tampering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("client_id", "another-client"),
        ("redirect_uri", "https://evil.example.com/cb"),
        ("redirect_uri", REDIRECT_URI + "x"),
        ("scope", "mcp profile email openid"),
        ("code_challenge", "A" * 43),
        ("state", "forged"),
        ("consent_request", "garbage"),
    ],
)
def test_tampered_consent_form_is_refused_without_redirect_or_code(signed_in, agent, field, value):
    page, _ = ask(signed_in, agent)
    answer = consent_answer(page)
    answer[field] = value
    response = signed_in.post(page.wsgi_request.get_full_path(), answer)
    assert response.status_code == 400
    assert "Location" not in response
    assert b"changed or has expired" in response.content
    assert not get_grant_model().objects.exists()


def test_consent_form_signed_for_another_user_is_refused(client, agent):
    bob = make_user("bob")
    client.force_login(bob)
    page, _ = ask(client, agent)
    answer = consent_answer(page)
    client.force_login(make_user("mallory"))
    response = client.post(page.wsgi_request.get_full_path(), answer)
    assert response.status_code == 400


def test_expired_consent_form_is_refused(signed_in, agent, monkeypatch):
    page, _ = ask(signed_in, agent)
    monkeypatch.setattr(authorize_module, "CONSENT_MAX_AGE", -1)
    response = signed_in.post(page.wsgi_request.get_full_path(), consent_answer(page))
    assert response.status_code == 400


def test_consent_form_without_csrf_token_is_refused(alice, agent):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page, _ = ask(browser, agent)
    response = browser.post(page.wsgi_request.get_full_path(), consent_answer(page))
    assert response.status_code == 403
    assert not get_grant_model().objects.exists()


# --- Who owns a client ----------------------------------------------------------------------


def test_registered_client_is_bound_to_the_first_person_who_authorizes_it_and_never_rebound(client, agent):
    alice, bob = make_user("alice"), make_user("bob")
    for person in (alice, bob):
        client.force_login(person)
        page, _ = ask(client, agent)
        allow(client, page)
    agent.refresh_from_db()
    assert agent.user == alice


def test_operator_made_clients_are_not_bound_to_people(signed_in):
    app = make_client(name="Manual")
    page, _ = ask(signed_in, app)
    allow(signed_in, page)
    app.refresh_from_db()
    assert app.user is None


# --- Connected apps -------------------------------------------------------------------------


def test_connected_apps_lists_what_was_granted_and_when_it_was_last_used(signed_in, agent):
    page, verifier = ask(signed_in, agent)
    token_for(signed_in, agent, allow(signed_in, page, untick=("email",)), verifier)
    listing = signed_in.get("/accounts/connected-apps/")
    html = listing.content.decode()
    assert "SmartMail AI" in html
    assert "See your username and name" in html
    assert "See your email address" not in html
    assert "last used" in html
    assert ConsentGrant.objects.get().last_used is not None


def test_revoke_forgets_the_consent_and_revokes_every_token(signed_in, agent):
    page, verifier = ask(signed_in, agent)
    body = token_for(signed_in, agent, allow(signed_in, page), verifier)
    grant = ConsentGrant.objects.get()
    response = signed_in.post(f"/accounts/connected-apps/{grant.pk}/revoke/")
    assert response.status_code == 302
    assert not ConsentGrant.objects.exists()
    with pytest.raises(get_access_token_model().DoesNotExist):
        stored_access_token(body["access_token"])
    refreshed = signed_in.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": agent.client_id},
    )
    assert refreshed.json()["error"] == "invalid_grant"
    # Next time, the person is asked again.
    assert ask(signed_in, agent)[0].status_code == 200


def test_a_person_cannot_revoke_someone_elses_app(client, agent):
    client.force_login(make_user("bob"))
    page, _ = ask(client, agent)
    allow(client, page)
    grant = ConsentGrant.objects.get()
    client.force_login(make_user("mallory"))
    assert client.post(f"/accounts/connected-apps/{grant.pk}/revoke/").status_code == 404
    assert ConsentGrant.objects.filter(pk=grant.pk).exists()


def test_connected_apps_requires_sign_in(client):
    response = client.get("/accounts/connected-apps/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- Operators ------------------------------------------------------------------------------


def test_management_command_creates_a_first_party_client(capsys):
    call_command("create_client", "Official mail app", "--redirect-uri", "https://mail.example.com/cb", "--first-party")
    out = capsys.readouterr().out
    client = Application.objects.get(name="Official mail app")
    assert f"client_id: {client.client_id}" in out
    assert client.is_first_party and client.client_type == "public"


def test_management_command_refuses_a_plain_http_redirect_to_a_remote_host():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="redirect_uris"):
        call_command("create_client", "Bad", "--redirect-uri", "http://mail.example.com/cb")


def test_admin_marks_a_client_first_party(client, agent):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "x"))
    response = client.post(
        "/admin/authserver/application/", {"action": "mark_first_party", "_selected_action": [agent.pk]}
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.is_first_party


def test_remembered_consent_keeps_the_resource_the_client_named(signed_in, agent):
    resource = "http://testserver" + MCP_PATH
    page, _ = ask(signed_in, agent, resource=resource)
    allow(signed_in, page)
    again, verifier = ask(signed_in, agent, resource=resource)
    body = token_for(signed_in, agent, again, verifier)
    row = stored_access_token(body["access_token"])
    assert row.resource == [resource]


# --- What the page tells the person: tools, optional scopes, what is new --------------------


def test_optional_email_is_offered_unticked_though_the_client_asked_only_for_profile(signed_in, agent):
    page, verifier = ask(signed_in, agent, scope="mcp profile")
    assert [item.name for item in page.context["optional_scopes"]] == ["email"]
    html = page.content.decode()
    assert "Who am I can also show your email" in html
    assert '<input type="checkbox" id="scope-email" name="scopes" value="email" aria-describedby' in html
    assert 'value="email" checked' not in html
    # Left unticked: the token does not carry it.
    assert token_for(signed_in, agent, allow(signed_in, page), verifier)["scope"] == "mcp profile"


def test_rfc6749_3_3_ticking_an_offered_optional_scope_issues_it_and_says_so_in_the_token_response(signed_in, agent):
    page, verifier = ask(signed_in, agent, scope="mcp profile")
    body = token_for(signed_in, agent, allow(signed_in, page, tick=("email",)), verifier)
    assert body["scope"] == "mcp profile email"
    assert ConsentGrant.objects.get().scopes == ["mcp", "profile", "email"]


def test_a_scope_the_page_did_not_offer_cannot_be_added_by_posting_it(signed_in, agent):
    page, verifier = ask(signed_in, agent, scope="mcp profile")
    forged = allow(signed_in, page, tick=("email", "notes", "openid"))
    assert token_for(signed_in, agent, forged, verifier)["scope"] == "mcp profile email"


def test_each_scope_lists_the_tools_it_unlocks_marking_those_that_change_data(signed_in, agent):
    page, _ = ask(signed_in, agent, scope="mcp profile notes:read notes:write")
    tools = {item.name: [tool.title for tool in item.tools] for item in page.context["asked_scopes"]}
    assert tools == {
        "mcp": [],
        "profile": ["Who am I"],
        "notes:read": ["List my notes", "Search my notes"],
        "notes:write": ["Add a note"],
    }
    html = page.content.decode()
    write_block = html[html.index('id="scope-notes:write"') :]
    assert "Add a note</strong>: Add a note with this title and text to your notes." in write_block
    assert html.count("can change your data") == 1  # Add a note; the read-only tools are not marked


def test_consent_names_the_site_the_account_and_how_long_access_lasts(signed_in, agent):
    page, _ = ask(signed_in, agent, scope="mcp profile notes:read")
    html = page.content.decode()
    assert "to use your Django MCP account?" in html
    assert "Signed in to Django MCP as <strong>alice</strong>" in html
    assert "Not you? Sign out" in html
    assert "access ends after 30 days without use" in html
    assert html.count("Untick anything you do not want to allow.") == 1


def test_not_you_sign_out_comes_back_to_the_same_request_after_signing_in(signed_in, agent):
    page, _ = ask(signed_in, agent)
    request_path = page.wsgi_request.get_full_path()
    response = signed_in.post("/accounts/logout/", {"next": page.context["sign_out_next"]})
    assert response.status_code == 302 and response["Location"] == request_path
    assert signed_in.get(request_path)["Location"].startswith("/accounts/login/")


@pytest.fixture
def deploy_adds(monkeypatch):
    """A deploy that adds tools (``authserver.capabilities`` sources as mcpapp registers them)."""
    from authserver import capabilities

    def add(*added):
        monkeypatch.setattr(capabilities, "_sources", [*capabilities._sources, lambda: list(added)])

    return add


def test_a_new_tool_that_changes_data_under_a_granted_scope_asks_again_naming_it(signed_in, agent, deploy_adds):
    from authserver.capabilities import Capability

    page, _ = ask(signed_in, agent, scope="mcp notes:read notes:write")
    redirect_params(allow(signed_in, page))
    deploy_adds(Capability("delete_note", "Delete a note", "Delete one of your notes.", ("notes:write",)))

    again, verifier = ask(signed_in, agent, scope="mcp notes:read notes:write")
    assert again.status_code == 200
    assert [tool.name for tool in again.context["new_tools"]] == ["delete_note"]
    assert "New since you last allowed it" in again.content.decode()
    assert "Delete a note" in again.content.decode()
    token_for(signed_in, agent, allow(signed_in, again), verifier)
    # Seen now: the next authorization goes straight through.
    assert ask(signed_in, agent, scope="mcp notes:read notes:write")[0].status_code == 302


def test_a_new_read_only_tool_under_a_granted_scope_asks_nothing(signed_in, agent, deploy_adds):
    from authserver.capabilities import Capability

    page, _ = ask(signed_in, agent, scope="mcp notes:read")
    redirect_params(allow(signed_in, page))
    deploy_adds(Capability("count_notes", "Count my notes", "", ("notes:read",), changes_data=False))
    assert ask(signed_in, agent, scope="mcp notes:read")[0].status_code == 302


def test_connected_apps_shows_the_tools_each_app_can_call_today(signed_in, agent):
    page, _ = ask(signed_in, agent, scope="mcp notes:read")
    redirect_params(allow(signed_in, page))
    html = signed_in.get("/accounts/connected-apps/").content.decode()
    assert "Tools it can use today:" in html
    assert "List my notes" in html and "Search my notes" in html
    assert "Add a note" not in html and "Who am I" not in html


def test_copies_of_one_app_show_as_one_entry_with_one_revoke(signed_in):
    def register_copy():
        return make_client(
            name="Chatty Agent",
            registration_source=Application.RegistrationSource.DCR,
            client_metadata={"software_id": "chatty"},
        )

    copies = [register_copy() for _ in range(3)]
    for copy in copies:
        redirect_params(allow(signed_in, ask(signed_in, copy, scope="mcp")[0]))
    other = make_client(name="Chatty Agent", registration_source=Application.RegistrationSource.DCR)
    redirect_params(allow(signed_in, ask(signed_in, other, scope="mcp")[0]))  # no software id: another app

    listing = signed_in.get("/accounts/connected-apps/")
    assert [len(app.grants) for app in listing.context["apps"]] == [1, 3]
    assert "registered 3 times (shown as one)" in listing.content.decode()
    confirm = signed_in.get(f"/accounts/connected-apps/{listing.context['apps'][1].pk}/revoke/")
    assert "Revoke access for <bdi>Chatty Agent</bdi>?" in confirm.content.decode()
    assert ConsentGrant.objects.count() == 4  # asking changed nothing
    signed_in.post(f"/accounts/connected-apps/{listing.context['apps'][1].pk}/revoke/")
    assert list(ConsentGrant.objects.values_list("application", flat=True)) == [other.pk]
