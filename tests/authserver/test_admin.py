"""Operators manage users, clients and tokens in the Django admin."""

import json

import pytest
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from authserver.models import Application, AuditEvent
from tests.authserver.helpers import AGENT, authorize_url, connect, pkce_pair
from tests.factories import make_access_token, make_client, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/admin/auth/user/",
        "/admin/authserver/application/",
        "/admin/authserver/accesstokenrecord/",
        "/admin/authserver/refreshtokenrecord/",
        "/admin/authserver/grantrecord/",
    ],
)
def test_admin_lists_users_clients_and_tokens(operator, path):
    make_access_token(make_user("alice"), make_client(name="Listed agent"))
    response = operator.get(path)
    assert response.status_code == 200


def test_admin_shows_the_client(operator):
    app = make_client(name="Listed agent")
    response = operator.get(f"/admin/authserver/application/{app.pk}/change/")
    assert response.status_code == 200
    assert b"Listed agent" in response.content


def test_admin_login_is_not_the_product_login(client):
    # People sign in at /accounts/login/; the admin keeps its own page for staff.
    assert client.get("/accounts/login/").templates[0].name == "authserver/login.html"


# --- Clients: how they came, whose, trusted or not, in use or not -------------------------------


def headers(response) -> list[str]:
    """The column titles of a change list, without the action checkbox."""
    return [str(header["text"]) for header in response.context["result_headers"] if "checkbox" not in header["text"]]


def rows(response) -> dict:
    return {row.name: row for row in response.context["cl"].result_list}


def test_client_list_shows_source_owner_trust_activity_and_active_tokens(operator, alice):
    busy = make_client(name="Busy agent", registration_source="dcr", user=alice)
    make_access_token(alice, busy)
    make_access_token(alice, busy)
    make_access_token(alice, busy, expires_in=-10)  # expired: not active
    make_client(name="Idle agent")

    response = operator.get("/admin/authserver/application/")
    # Seven columns, readable at 1280 px (the client ID is searched and shown on the client's page).
    assert headers(response) == [
        "name",
        "registration source",
        "user (owner or service)",
        "first-party",
        "active",
        "last used",
        "active tokens",
    ]
    assert rows(response)["Busy agent"].live_access == 2
    assert rows(response)["Idle agent"].live_access == 0
    assert b"Dynamic Client Registration" in response.content and b"alice" in response.content
    actions = {name for name, _label in response.context["action_form"].fields["action"].choices}
    assert {"revoke_all_tokens", "mark_first_party", "mark_third_party", "disable"} <= actions


def test_registration_access_tokens_are_not_counted_as_active_tokens(operator, client):
    # DOT keeps the RFC 7592 management token in the access-token table; it is not a use of the client.
    client.post("/o/register/", json.dumps(AGENT), content_type="application/json")
    response = operator.get("/admin/authserver/application/")
    row = rows(response)[AGENT["client_name"]]
    assert row.live_access + row.live_refresh == 0


def act(operator, action, *clients):
    return operator.post(
        "/admin/authserver/application/",
        {"action": action, "_selected_action": [client.pk for client in clients]},
        follow=True,
    )


def test_revoke_all_tokens_signs_everyone_out_of_the_client(operator, client, alice):
    agent = make_client(name="Leaky agent")
    client.force_login(alice)
    tokens = connect(client, agent)

    assert b"Revoked 1 live token(s) of 1 client(s)." in act(operator, "revoke_all_tokens", agent).content
    assert not get_access_token_model().objects.filter(application=agent).exists()
    assert not get_refresh_token_model().objects.filter(application=agent, revoked__isnull=True).exists()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": agent.client_id}
    assert client.post("/o/token/", refresh).status_code == 400


def test_mark_first_party_skips_consent_and_is_recorded(operator, client, alice):
    agent = make_client(name="Our own app")
    assert b"1 client(s) are now first-party." in act(operator, "mark_first_party", agent).content
    client.force_login(alice)
    response = client.get(authorize_url(agent, pkce_pair()[1]))
    assert response.status_code == 302  # straight back with a code, no consent page
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CLIENT_UPDATED, client_id=agent.client_id)
    assert event.detail == {"first_party": True} and event.username == "root"


def test_disable_refuses_the_client_and_revokes_its_tokens(operator, client, alice):
    agent = make_client(name="Rogue agent")
    make_access_token(alice, agent)
    assert b"Disabled 1 client(s)." in act(operator, "disable", agent).content

    agent.refresh_from_db()
    assert agent.is_active is False
    assert not get_access_token_model().objects.filter(application=agent).exists()
    # It can no longer start an authorization: an error page, never a redirect to it.
    client.force_login(alice)
    refused = client.get(authorize_url(agent, pkce_pair()[1]))
    assert refused.status_code in (400, 401) and "Location" not in refused
    kinds = set(AuditEvent.objects.filter(client_id=agent.client_id).values_list("kind", flat=True))
    assert {AuditEvent.Kind.CLIENT_UPDATED, AuditEvent.Kind.TOKEN_REVOKED} <= kinds


# --- Tokens: who, which client, what for, until when; never the token --------------------------


@pytest.mark.parametrize(
    "path, columns",
    [
        (
            "/admin/authserver/accesstokenrecord/",
            ["kind", "user", "application", "scope", "resource", "expires", "created"],
        ),
        ("/admin/authserver/refreshtokenrecord/", ["user", "application", "created", "revoked", "token family"]),
    ],
)
def test_token_lists_show_who_and_what_but_never_a_token(operator, client, alice, path, columns):
    agent = make_client(name="Listed agent")
    client.force_login(alice)
    tokens = connect(client, agent)

    response = operator.get(path)
    assert headers(response) == columns
    assert b"alice" in response.content and b"Listed agent" in response.content
    row = response.context["cl"].result_list[0]
    detail = operator.get(f"{path}{row.pk}/change/")
    for page in (response, detail):
        assert tokens["access_token"].encode() not in page.content
        assert tokens["refresh_token"].encode() not in page.content
        assert row.token_checksum.encode() not in page.content


def test_token_lists_filter_and_search_by_user_and_client(operator, alice):
    bob = make_user("bob")
    first, second = make_client(name="First agent"), make_client(name="Second agent")
    make_access_token(alice, first)
    make_access_token(bob, second)
    path = "/admin/authserver/accesstokenrecord/"

    by_user = operator.get(path, {"user__id__exact": bob.pk})
    assert [token.user for token in by_user.context["cl"].result_list] == [bob]
    by_client = operator.get(path, {"application__id__exact": first.pk})
    assert [token.application for token in by_client.context["cl"].result_list] == [first]
    searched = operator.get(path, {"q": "Second agent"})
    assert [token.user for token in searched.context["cl"].result_list] == [bob]
    paths = {getattr(spec, "field_path", None) for spec in by_user.context["cl"].filter_specs}
    assert {"user", "application"} <= paths


# --- The audit trail: read-only -----------------------------------------------------------------


def test_audit_trail_is_listed_and_read_only(operator, client):
    client.post("/accounts/login/", {"username": "mallory", "password": "guess"}, REMOTE_ADDR="203.0.113.7")
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_FAILED)

    listing = operator.get("/admin/authserver/auditevent/", {"kind__exact": "login.failed"})
    assert headers(listing) == ["time", "kind", "username", "client name", "client ID", "IP address", "detail"]
    assert b"mallory" in listing.content and b"203.0.113.7" in listing.content
    assert operator.get("/admin/authserver/auditevent/add/").status_code == 403
    assert operator.get(f"/admin/authserver/auditevent/{event.pk}/delete/").status_code == 403
    view = operator.get(f"/admin/authserver/auditevent/{event.pk}/change/")
    assert view.status_code == 200 and b'name="_save"' not in view.content


# --- Operators' walk through the admin ----------------------------------------------------------


def every_admin_page(operator):
    """Each registered model's change list, add page (when adding is allowed) and first object's page."""
    from django.contrib import admin

    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        yield base
        yield base + "?q=agent"
        yield base + "add/"  # 403 where adding is not allowed; never a 500
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            yield f"{base}{first.pk}/change/"
            yield f"{base}{first.pk}/delete/"


def test_no_admin_page_answers_a_server_error(operator, client, alice):
    """Every change list, add, change and delete page of every app, for a superuser, with real rows."""
    client.force_login(alice)
    connect(client, make_client(name="Walked agent"))
    client.post("/o/register/", json.dumps(AGENT), content_type="application/json")
    client.post("/accounts/login/", {"username": "mallory", "password": "guess"}, REMOTE_ADDR="203.0.113.7")
    pages = list(every_admin_page(operator))
    assert len(pages) > 40
    answers = {path: operator.get(path).status_code for path in pages}
    assert {path: status for path, status in answers.items() if status >= 500} == {}
    assert answers["/admin/authserver/application/"] == 200


def test_a_self_registered_client_can_be_deleted_with_its_tokens_and_the_deletion_is_audited(operator, client):
    registered = client.post("/o/register/", json.dumps(AGENT), content_type="application/json").json()
    agent = Application.objects.get(client_id=registered["client_id"])
    confirm = operator.get(f"/admin/authserver/application/{agent.pk}/delete/")
    assert confirm.status_code == 200
    assert b"permission to delete" not in confirm.content and b"Yes, I\xe2\x80\x99m sure" in confirm.content
    deleted = operator.post(f"/admin/authserver/application/{agent.pk}/delete/", {"post": "yes"}, follow=True)
    assert deleted.status_code == 200
    assert not Application.objects.filter(pk=agent.pk).exists()
    assert not get_access_token_model().objects.filter(application_id=agent.pk).exists()  # its registration token
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CLIENT_DELETED, client_id=agent.client_id)
    assert event.username == "root"


def test_client_page_has_no_broken_view_on_site_link(operator):
    agent = make_client(name="Linked agent")
    page = operator.get(f"/admin/authserver/application/{agent.pk}/change/")
    assert b"View on site" not in page.content


def test_never_used_and_idle_filters_and_the_prune_action(operator, alice):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(days=200)
    never = make_client(name="Never used agent", registration_source="dcr")
    idle = make_client(name="Idle agent", registration_source="dcr", last_used=long_ago)
    busy = make_client(name="Busy agent", registration_source="dcr", last_used=timezone.now())
    Application.objects.filter(pk__in=[never.pk, idle.pk]).update(created=long_ago)

    listed = operator.get("/admin/authserver/application/", {"use": "never"})
    assert [row.name for row in listed.context["cl"].result_list] == ["Never used agent"]
    listed = operator.get("/admin/authserver/application/", {"use": "idle"})
    assert [row.name for row in listed.context["cl"].result_list] == ["Idle agent"]

    pruned = act(operator, "prune", never, idle, busy)
    assert "Pruned 2 of 3 selected client(s)." in [str(m) for m in pruned.context["messages"]]
    assert list(Application.objects.values_list("name", flat=True)) == ["Busy agent"]
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CLIENT_PRUNED).count() == 2


def test_copies_filter_groups_registrations_of_one_app(operator):
    for _ in range(3):
        make_client(name="Chatty Agent", registration_source="dcr")
    make_client(name="Lonely Agent", registration_source="dcr")
    listed = operator.get("/admin/authserver/application/", {"copies": "yes"})
    assert [row.name for row in listed.context["cl"].result_list] == ["Chatty Agent"] * 3


def test_first_party_is_called_first_party_in_the_filter_too(operator):
    listed = operator.get("/admin/authserver/application/")
    titles = [str(spec.title) for spec in listed.context["cl"].filter_specs]
    assert "first-party" in titles and "skip authorization" not in titles


def test_clients_tokens_consent_and_audit_are_one_admin_section(operator):
    index = operator.get("/admin/")
    sections = {app["name"]: [model["name"] for model in app["models"]] for app in index.context["app_list"]}
    assert "Django OAuth Toolkit" not in sections
    assert set(sections["Authorization server"]) >= {
        "Clients",
        "Access or registration tokens",
        "Refresh tokens",
        "Pending authorization codes",
        "Consent grants",
        "Audit events",
        "Trusted identity providers",
        "Assertion audiences",
    }


def test_registration_tokens_are_labelled_and_tokens_are_read_only(operator, client, alice):
    client.post("/o/register/", json.dumps(AGENT), content_type="application/json")
    client.force_login(alice)
    connect(client, make_client(name="Listed agent"))
    listing = operator.get("/admin/authserver/accesstokenrecord/")
    html = listing.content.decode()
    assert "registration token" in html and "the client itself" in html and ">never<" in html
    assert "9999" not in html
    only_registration = operator.get("/admin/authserver/accesstokenrecord/", {"kind": "registration"})
    assert len(only_registration.context["cl"].result_list) == 1
    token = get_access_token_model().objects.exclude(user=None).first()
    page = operator.get(f"/admin/authserver/accesstokenrecord/{token.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content and b'name="scope"' not in page.content


def test_a_public_client_page_speaks_of_no_secret_and_only_oauth_2_1_grants(operator):
    public = make_client(name="Public agent", client_type=Application.CLIENT_PUBLIC)
    page = operator.get(f"/admin/authserver/application/{public.pk}/change/").content.decode()
    assert "secret" not in page.lower()
    grant_types = [
        value
        for value, _label in operator.get("/admin/authserver/application/add/")
        .context["adminform"]
        .form.fields["authorization_grant_type"]
        .choices
        if value
    ]
    assert grant_types == ["authorization-code", "client-credentials"]


def test_audit_event_pages_are_titled_in_words(operator, client):
    client.post("/accounts/login/", {"username": "mallory", "password": "guess"}, REMOTE_ADDR="203.0.113.7")
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_FAILED)
    page = operator.get(f"/admin/authserver/auditevent/{event.pk}/change/").content.decode()
    assert "Login failed, " in page and "login.failed" not in page.split("<h2>")[0]


def test_operator_creates_a_service_client_in_the_admin_with_its_own_service_user(operator, client):
    from authserver.models import Application, AuditEvent
    from tests.authserver.helpers import basic_auth

    assert operator.get("/admin/authserver/application/add/").status_code == 200
    secret, client_id = "an-operator-chosen-secret-" + "z" * 20, "nightly-export"
    answer = operator.post(
        "/admin/authserver/application/add/",
        {
            "client_id": client_id,
            "client_secret": secret,
            "hash_client_secret": "on",
            "name": "Nightly export",
            "client_type": "confidential",
            "authorization_grant_type": "client-credentials",
            "token_endpoint_auth_method": "client_secret_basic",
            "allowed_scope": "mcp profile",
            "algorithm": "",
            "redirect_uris": "",
            "post_logout_redirect_uris": "",
            "allowed_origins": "",
            "jwks": "{}",
            "client_metadata": "{}",
            "is_active": "on",
        },
    )
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    service = Application.objects.get(name="Nightly export")
    assert service.is_service and service.user.username == "service-nightly-export"
    listed = operator.get("/admin/authserver/application/?q=Nightly")
    assert "service-nightly-export (service)" in listed.content.decode()
    # The secret shown on the add page is the one that works; only its hash is stored.
    assert secret not in service.client_secret
    token = client.post("/o/token/", {"grant_type": "client_credentials"}, **basic_auth(service.client_id, secret))
    assert token.status_code == 200
    issued = AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_ISSUED).latest("pk")
    assert issued.username == "service-nightly-export" and issued.detail["acting_as"] == "service"


def test_operator_trusts_an_identity_provider_and_a_pasted_private_key_is_refused(operator):
    from authserver.models import TrustedIdentityProvider
    from live.keys import KeyPair

    key = KeyPair.make("ES256")
    fields = {"name": "Acme Okta", "issuer": "https://acme.okta.example", "jwks_uri": "", "match_by": "sub"}
    inline = {"links-TOTAL_FORMS": "0", "links-INITIAL_FORMS": "0", "links-MIN_NUM_FORMS": "0"}
    leaked = {**key.public_jwk, "d": "private-part"}
    refused = operator.post(
        "/admin/authserver/trustedidentityprovider/add/", {**fields, **inline, "jwks": json.dumps({"keys": [leaked]})}
    )
    assert refused.status_code == 200 and "private key" in refused.content.decode()
    added = operator.post(
        "/admin/authserver/trustedidentityprovider/add/",
        {**fields, **inline, "jwks": json.dumps(key.jwks), "is_active": "on"},
    )
    assert added.status_code == 302
    assert TrustedIdentityProvider.objects.get().jwks == key.jwks
