"""Signing in: the project's own page, a new session key, and a lockout after repeated failures."""

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def sign_in(client, username, password, address="203.0.113.7"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_signing_in_rotates_the_session_key(client):
    make_user("alice")
    client.get("/accounts/login/")
    session = client.session
    session["before"] = "sign-in"
    session.save()
    before = session.session_key
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    assert client.session.session_key != before


def test_wrong_password_shows_the_form_again_with_a_message(client):
    make_user("alice")
    response = sign_in(client, "alice", "wrong")
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_an_account_is_locked_at_an_address_after_repeated_failures_even_with_the_right_password(client):
    make_user("alice")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "alice", "wrong").status_code == 200
    locked = sign_in(client, "alice", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    # From her own address, the owner is not locked out by someone else's wrong passwords.
    assert sign_in(Client(), "alice", PASSWORD, address="198.51.100.9").status_code == 302


def test_an_address_is_locked_after_many_failures_across_accounts(client, settings):
    settings.AXES_FAILURE_LIMIT = 2  # an address is locked at ten times that, for any usernames
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]  # fast
    make_user("victim")
    for number in range(10 * settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"guess{number}", "wrong")
    assert sign_in(client, "victim", PASSWORD).status_code == 429
    # Someone else elsewhere can still sign in.
    assert sign_in(Client(), "victim", PASSWORD, address="198.51.100.9").status_code == 302


def test_a_successful_sign_in_resets_the_count(client):
    make_user("alice")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    assert sign_in(client, "alice", "wrong").status_code == 200


# --- Sent by an app -------------------------------------------------------------------------


def sent_by_app(client, app):
    """Follow an app's authorization request to the sign-in page, as a browser not signed in would."""
    from tests.authserver.helpers import authorize_url, pkce_pair

    _verifier, challenge = pkce_pair()
    to_login = client.get(authorize_url(app, challenge))
    assert to_login.status_code == 302
    return client.get(to_login["Location"])


def test_sign_in_page_names_the_site_and_the_app_that_sent_the_person(client):
    from tests.factories import make_client

    page = sent_by_app(client, make_client(name="Inbox Helper"))
    html = page.content.decode()
    assert "Sign in to Django MCP to continue to" in html and "<bdi>Inbox Helper</bdi>" in html
    assert "Cancel and go back to <bdi>Inbox Helper</bdi>" in html


def test_sign_in_page_without_an_app_names_only_the_site(client):
    html = client.get("/accounts/login/").content.decode()
    assert "<h1>Sign in to Django MCP</h1>" in html
    assert "Cancel and go back" not in html


def test_rfc6749_4_1_2_1_cancel_answers_the_app_access_denied_with_state_and_iss(client):
    from tests.authserver.helpers import ISSUER, redirect_params
    from tests.factories import REDIRECT_URI, make_client

    page = sent_by_app(client, make_client(name="Inbox Helper"))
    cancelled = client.get(page.context["cancel_url"])
    assert cancelled["Location"].startswith(REDIRECT_URI + "?")
    assert redirect_params(cancelled) == {
        "error": "access_denied",
        "error_description": "The person cancelled signing in.",
        "state": "state-123",
        "iss": ISSUER,
    }


def test_rfc9700_4_1_cancel_never_redirects_to_a_uri_the_client_did_not_register(client):
    from tests.factories import make_client

    app = make_client(name="Inbox Helper")
    query = f"response_type=code&client_id={app.client_id}&redirect_uri=https://evil.example/cb&state=s"
    response = client.get("/o/authorize/cancel/?" + query)
    assert response.status_code == 400
    assert "Location" not in response
