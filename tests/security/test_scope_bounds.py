"""What scopes a client may get, as an attacker (or a careless operator) tries to get more: a client made
only to introspect asking for client-credentials tokens, service clients with no scopes listed or no
service user, a consent page offering what the client may not have, a refresh after an operator narrowed
the client (RFC 6749 §3.3: a default or invalid_scope, never every scope; §4.4; §6)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from oauth2_provider.models import get_access_token_model

from authserver import checks as authserver_checks
from authserver.models import Application, TrustedIdentityProvider
from authserver.service_clients import service_client_create, service_user_create
from tests.authserver.helpers import (
    authorize_url,
    basic_auth,
    connect,
    consent_answer,
    exchange_code,
    pkce_pair,
    redirect_params,
    refresh,
    stored_access_token,
)
from tests.factories import RESOURCE_SERVER_SECRET, make_access_token, make_client, make_resource_server, make_user
from tests.security.helpers import assert_json_error

pytestmark = pytest.mark.django_db

SECRET = "a-service-secret-long-enough-to-be-stored-with-a-fast-hash"


def client_credentials(client, client_id: str, secret: str, **data):
    return client.post("/o/token/", {"grant_type": "client_credentials", **data}, **basic_auth(client_id, secret))


def stored_service_row(*, allowed_scope: str, user=..., name="Legacy job") -> Application:
    """A client-credentials row as it may already be stored (made before today's rules, or edited in
    the database): saved without ``full_clean``."""
    return Application.objects.create(
        name=name,
        redirect_uris="",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=SECRET,
        allowed_scope=allowed_scope,
        user=service_user_create(name=name) if user is ... else user,
    )


def assert_no_token_issued(answer, error: str) -> None:
    assert_json_error(answer, 400, error)
    assert "access_token" not in answer.json()
    assert not get_access_token_model().objects.exists()


# --- Client credentials: an operator's list, a service user, or nothing --------------------------


def test_rfc6749_s4_4_a_client_that_only_introspects_gets_no_client_credentials_token(client):
    resource_server = make_resource_server(name="MCP gateway")
    for scope in ({}, {"scope": "mcp"}, {"scope": "mcp profile email notes"}):
        answer = client_credentials(client, resource_server.client_id, RESOURCE_SERVER_SECRET, **scope)
        assert_no_token_issued(answer, "unauthorized_client")
    # It still does what it was made for: ask what a token is (RFC 7662).
    token = make_access_token(make_user("alice"), make_client(), scope="mcp")
    introspected = client.post(
        "/o/introspect/", {"token": token}, **basic_auth(resource_server.client_id, RESOURCE_SERVER_SECRET)
    )
    assert introspected.status_code == 200 and introspected.json()["active"] is True


def test_rfc6749_s3_3_a_service_client_with_no_scopes_listed_gets_no_token_never_every_scope(client):
    legacy = stored_service_row(allowed_scope="")
    for scope in ({}, {"scope": "mcp"}):
        assert_no_token_issued(client_credentials(client, legacy.client_id, SECRET, **scope), "unauthorized_client")


def test_rfc6749_s4_4_a_client_credentials_token_always_acts_as_a_service_user(client):
    orphan = stored_service_row(allowed_scope="mcp", user=None, name="Orphan job")
    assert_no_token_issued(client_credentials(client, orphan.client_id, SECRET), "unauthorized_client")


def test_rfc6749_s3_3_a_service_client_listing_only_scopes_this_site_lacks_gets_invalid_scope_not_an_empty_token(
    client,
):
    # Its scopes belonged to an app the site no longer runs: nothing it may get is left.
    stale = stored_service_row(allowed_scope="reports:read", name="Stale job")
    assert_no_token_issued(client_credentials(client, stale.client_id, SECRET), "invalid_scope")


def test_rfc6749_s3_3_create_service_client_refuses_scopes_this_site_does_not_have():
    refusals = {
        ("mcp", "reprots"): "allowed_scope: Not scopes of this site: reprots.",
        ("",): "allowed_scope: Name the scopes this service client may get.",
        (" ",): "allowed_scope: Name the scopes this service client may get.",
    }
    for scopes, refusal in refusals.items():
        arguments = [argument for scope in scopes for argument in ("--scope", scope)]
        with pytest.raises(CommandError) as refused:
            call_command("create_service_client", "Typo job", *arguments, stdout=io.StringIO())
        assert str(refused.value) == refusal
    assert not Application.objects.filter(name="Typo job").exists()


ADMIN_FORM = {
    "client_secret": "an-operator-chosen-secret-" + "z" * 20,
    "hash_client_secret": "on",
    "client_type": "confidential",
    "authorization_grant_type": "client-credentials",
    "token_endpoint_auth_method": "client_secret_basic",
    "algorithm": "",
    "redirect_uris": "",
    "post_logout_redirect_uris": "",
    "allowed_origins": "",
    "jwks": "{}",
    "client_metadata": "{}",
    "is_active": "on",
}


def test_rfc6749_s4_4_an_introspecting_client_with_scopes_listed_acts_as_its_own_service_user(operator, client):
    answer = operator.post(
        "/admin/authserver/application/add/",
        {**ADMIN_FORM, "client_id": "gateway", "name": "Gateway", "may_introspect": "on", "allowed_scope": "mcp"},
    )
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    gateway = Application.objects.get(client_id="gateway")
    assert gateway.user is not None and gateway.user.username == "service-gateway"
    body = client_credentials(client, "gateway", ADMIN_FORM["client_secret"]).json()
    assert body["scope"] == "mcp"  # no scope asked: exactly what the operator listed
    assert stored_access_token(body["access_token"]).user == gateway.user
    asked_more = client_credentials(client, "gateway", ADMIN_FORM["client_secret"], scope="mcp email")
    assert_json_error(asked_more, 400, "invalid_scope")


def test_rfc6749_s3_3_the_admin_refuses_a_service_client_with_a_scope_this_site_does_not_have(operator):
    page = operator.post(
        "/admin/authserver/application/add/",
        {**ADMIN_FORM, "client_id": "typo", "name": "Typo", "allowed_scope": "mcp profle"},
    )
    assert page.status_code == 200
    assert "Not scopes of this site: profle." in page.content.decode()
    assert not Application.objects.filter(client_id="typo").exists()


def test_rfc6749_s3_3_manage_py_check_names_stored_service_clients_that_get_no_tokens():
    stored_service_row(allowed_scope="", name="No scopes job")
    stored_service_row(allowed_scope="mcp", user=None, name="No user job")
    stored_service_row(allowed_scope="mcp reports:read", name="Stale scope job")
    make_resource_server(name="Only introspects")  # needs no scopes: not warned about
    presenter = stored_service_row(allowed_scope="", user=None, name="Presents assertions")
    provider = TrustedIdentityProvider.objects.create(name="Acme", issuer="https://idp.example", jwks={"keys": []})
    provider.clients.add(presenter)  # its IdP's assertions bound its scopes: not warned about either
    service_client_create(name="Healthy job", scopes=["mcp"])
    found = authserver_checks.check_service_clients(databases=["default"])
    assert {warning.id for warning in found} == {"authserver.W014"}
    messages = "\n".join(warning.msg for warning in found)
    assert "No scopes job" in messages and "no scopes" in messages
    assert "No user job" in messages and "no service user" in messages
    assert "Stale scope job" in messages and "reports:read" in messages
    assert not {"Only introspects", "Presents assertions", "Healthy job"} & set(messages.split("'"))
    assert len(found) == 3
    assert authserver_checks.check_service_clients(databases=None) == []  # a plain `check` reads no database


# --- Consent: offer only what the client may get ----------------------------------------------------


def test_rfc6749_s3_3_the_consent_page_offers_no_optional_scope_the_client_may_not_get(signed_in):
    limited = make_client(name="Limited agent", allowed_scope="mcp profile")
    verifier, challenge = pkce_pair()
    url = authorize_url(limited, challenge, scope="mcp profile")
    page = signed_in.get(url)
    assert page.status_code == 200
    assert page.context["optional_scopes"] == []
    html = page.content.decode()
    assert 'value="email"' not in html and "can also show your email" not in html
    # A person who ticks it anyway (a forged post) gets what was asked, not an invalid_scope error.
    answer = signed_in.post(url, consent_answer(page, tick=("email",)))
    params = redirect_params(answer)
    assert "error" not in params, params
    assert exchange_code(signed_in, limited, params["code"], verifier).json()["scope"] == "mcp profile"


def test_rfc6749_s3_3_a_client_that_may_get_email_is_still_offered_it_unticked(signed_in):
    # The other side of the rule above: the optional scope is offered where the client may get it.
    allowed = make_client(name="Allowed agent", allowed_scope="mcp profile email")
    _verifier, challenge = pkce_pair()
    page = signed_in.get(authorize_url(allowed, challenge, scope="mcp profile"))
    assert [item.name for item in page.context["optional_scopes"]] == ["email"]
    limited = make_client(name="Limited agent", allowed_scope="mcp profile")
    page = signed_in.get(authorize_url(limited, challenge, scope="mcp profile"))
    assert page.context["optional_scopes"] == []


# --- Refresh: the operator's limit holds on the next refresh --------------------------------------------


def test_rfc6749_s6_a_refresh_after_an_operator_narrowed_the_client_gets_only_what_it_may_still_get(signed_in):
    agent = make_client(name="Agent")
    tokens = connect(signed_in, agent, scope="mcp profile email")
    assert tokens["scope"] == "mcp profile email"
    agent.allowed_scope = "mcp profile"  # the operator takes email away
    agent.save()
    # Asking for what was granted but is no longer allowed: invalid_scope (RFC 6749 §6, §5.2).
    assert_json_error(
        signed_in.post(
            "/o/token/",
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": agent.client_id,
                "scope": "mcp profile email",
            },
        ),
        400,
        "invalid_scope",
    )
    renewed = refresh(signed_in, agent, tokens["refresh_token"]).json()
    assert renewed["scope"] == "mcp profile"
    assert stored_access_token(renewed["access_token"]).scope == "mcp profile"
    # Narrowed to nothing it was granted: no token at all, not one for no scope.
    agent.allowed_scope = "notes"
    agent.save()
    assert_json_error(refresh(signed_in, agent, renewed["refresh_token"]), 400, "invalid_scope")
